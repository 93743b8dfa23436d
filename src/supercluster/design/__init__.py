"""Design search (issue 17): a space of clusters under a budget, a power cap and a deadline, each design planned,
costed and ranked on a Pareto front."""

from .rows import DesignRow
from .run import BestDesign, DesignResult, Increment, run_design
from .spec import Constraints, Design, load_design

__all__ = ["BestDesign", "Constraints", "Design", "DesignResult", "DesignRow", "Increment", "load_design",
           "run_design"]
