"""The network: where parallel groups sit and what their collectives cost."""

from .collectives import all_gather_s, all_reduce_s, all_to_all_s, reduce_scatter_s, send_recv_s
from .placement import Link, all_to_all_link, group_link

__all__ = [
    "Link",
    "all_gather_s",
    "all_reduce_s",
    "all_to_all_s",
    "all_to_all_link",
    "group_link",
    "reduce_scatter_s",
    "send_recv_s",
]
