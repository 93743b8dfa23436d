"""Search over parallel configurations."""

from .plan import plan
from .space import divisors, enumerate_space

__all__ = ["divisors", "enumerate_space", "plan"]
