"""supercluster: a digital twin of AI training superclusters.

The public API: load a scenario, plan it (best parallelism and its run report), validate against published runs.
"""

from .errors import (
    CatalogNameError,
    FileFormatError,
    InfeasibleError,
    InputError,
    SpecError,
    SuperclusterError,
)
from .perf import StepReport
from .search import RunReport, plan
from .spec import Scenario, build_scenario, load_scenario
from .validate import ValidationResult, validate_file

__version__ = "0.1.0"

__all__ = [
    "CatalogNameError",
    "FileFormatError",
    "InfeasibleError",
    "InputError",
    "RunReport",
    "Scenario",
    "SpecError",
    "StepReport",
    "SuperclusterError",
    "ValidationResult",
    "__version__",
    "build_scenario",
    "load_scenario",
    "plan",
    "validate_file",
]
