"""Search over parallel configurations."""

from .plan import plan
from .rank import SearchReport, rank
from .space import divisors, enumerate_space

__all__ = ["SearchReport", "divisors", "enumerate_space", "plan", "rank"]
