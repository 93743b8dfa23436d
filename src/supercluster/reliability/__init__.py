"""Failures, checkpoints, restarts and the goodput left after them (rates from published tables, Young/Daly,
a seeded vectorised Monte Carlo of whole runs)."""
