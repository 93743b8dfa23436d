"""Search over parallel configurations."""

from .plan import best_step, plan
from .rank import SearchReport, rank
from .run_report import RunReport
from .space import divisors, enumerate_space

__all__ = ["RunReport", "SearchReport", "best_step", "divisors", "enumerate_space", "plan", "rank"]
