"""Design search (issue 17): a space of clusters under a budget, a power cap and a deadline, each design planned,
costed and ranked on a Pareto front."""

from .rows import DesignRow, WorkloadFigures
from .run import BestDesign, DesignResult, Increment, run_design
from .spec import Constraints, Design, Workload, load_design

__all__ = ["BestDesign", "Constraints", "Design", "DesignResult", "DesignRow", "Increment", "Workload",
           "WorkloadFigures", "load_design", "run_design"]
