"""The event-driven simulator of one training iteration (issue 15): a task graph from the same workload, placement
and collective costs as the analytic step model, executed on GPU streams and network links."""
