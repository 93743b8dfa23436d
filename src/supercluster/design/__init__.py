"""Design search (issue 17): a space of clusters under a budget, a power cap and a deadline, each design planned,
costed and ranked on a Pareto front."""
