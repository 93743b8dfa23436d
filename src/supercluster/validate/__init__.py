"""Published runs and collective measurements against predictions, with the tolerance gate."""

from .collectives import (
    DEFAULT_COLLECTIVES_FILE,
    CollectiveRow,
    CollectiveValidationResult,
    validate_collectives,
    validation_kind,
)
from .runs import DEFAULT_FILE, HELDOUT_FILE, Row, ValidationResult, run_to_scenario, validate_file

__all__ = [
    "DEFAULT_COLLECTIVES_FILE",
    "DEFAULT_FILE",
    "HELDOUT_FILE",
    "CollectiveRow",
    "CollectiveValidationResult",
    "Row",
    "ValidationResult",
    "run_to_scenario",
    "validate_collectives",
    "validate_file",
    "validation_kind",
]
