"""Published runs against predictions, with the tolerance gate."""

from .runs import DEFAULT_FILE, Row, ValidationResult, run_to_scenario, validate_file

__all__ = ["DEFAULT_FILE", "Row", "ValidationResult", "run_to_scenario", "validate_file"]
