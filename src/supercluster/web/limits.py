"""The bounds every web request's work stays within (documented in the API's description and in README).

A request over a bound is refused before any work with a 4xx and one located line: a body over
``MAX_BODY_BYTES`` with 413, any other bound with 422. The command line has none of these bounds (its user owns
the machine); the web app may be reached by others, so one request cannot hold a worker for long.
"""

from __future__ import annotations

from ..errors import InputError

MAX_BODY_BYTES = 256 * 2**10  #: a request body (a scenario is a few hundred bytes; a pasted one a few kB)
MAX_GPUS = 131_072  #: GPUs in a scenario or a collective's group (Memphis, 100,000 GPUs, fits; plans in ~1 s)
MAX_TOP = 100  #: configurations a search lists (the whole space is timed once either way; bounded by MAX_GPUS)
MAX_RUNS = 10_000  #: Monte Carlo runs of a reliability request (the CLI's default is 1,000)
# Not bounded separately, because MAX_GPUS bounds them: the search space (its size follows the GPU count's divisors:
# deepseek-v3 on 131,072 GPUs is 228,240 configurations, planned in 1.2 s on one core) and the report's GPU-count
# sweep (the library's fixed five points, search.scaling.SCALING_FACTORS; 5.7 s for that scenario's whole report).
# A sweep of many scenarios (`supercluster sweep`) has no route: it writes files.


def check_gpus(num_gpus: int, *, field: str) -> None:
    """Refuse more GPUs than a web request may plan."""
    if num_gpus > MAX_GPUS:
        raise InputError(f"expected at most {MAX_GPUS:,} GPUs in a web request (the server's bound; the command "
                         f"line has none), got {num_gpus:,}", field=field)


def check_range(value: int, low: int, high: int, *, field: str, what: str) -> None:
    """Refuse a count outside [low, high]."""
    if not low <= value <= high:
        raise InputError(f"expected {low:,} to {high:,} {what}, got {value:,}", field=field)
