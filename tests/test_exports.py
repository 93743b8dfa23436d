"""The public API of the package is pinned: adding or removing a name is a deliberate change to this file."""

from __future__ import annotations

import importlib
import inspect

import pytest

import supercluster

EXPECTED_ALL = {
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
}


def test_all_is_pinned() -> None:
    """supercluster.__all__ is exactly the pinned set of names, without duplicates."""
    assert set(supercluster.__all__) == EXPECTED_ALL
    assert len(supercluster.__all__) == len(set(supercluster.__all__))


@pytest.mark.parametrize("name", sorted(EXPECTED_ALL))
def test_every_public_name_imports(name: str) -> None:
    """Each public name is an attribute of a freshly imported package and `from supercluster import NAME` works."""
    module = importlib.import_module("supercluster")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from supercluster import {name}", namespace)
    assert namespace[name] is getattr(module, name)


def test_star_import_gives_exactly_all() -> None:
    """`from supercluster import *` binds exactly the names of __all__."""
    namespace: dict[str, object] = {}
    exec("from supercluster import *", namespace)
    assert set(namespace) - {"__builtins__"} == EXPECTED_ALL


def test_error_hierarchy() -> None:
    """The exported errors form the documented hierarchy, every one a SuperclusterError with exit code 2."""
    from supercluster import (
        CatalogNameError,
        FileFormatError,
        InfeasibleError,
        InputError,
        SpecError,
        SuperclusterError,
    )

    for cls in (SpecError, CatalogNameError, FileFormatError):
        assert issubclass(cls, InputError)
    for cls in (InputError, InfeasibleError):
        assert issubclass(cls, SuperclusterError)
    assert not issubclass(InfeasibleError, InputError)
    assert SuperclusterError.exit_code == 2 and InputError("x").exit_code == 2


def test_public_functions_are_callable() -> None:
    """The exported functions are functions and the version is a dotted string."""
    for name in ("build_scenario", "load_scenario", "plan", "validate_file"):
        assert inspect.isfunction(getattr(supercluster, name)), name
    assert isinstance(supercluster.__version__, str) and supercluster.__version__.count(".") >= 1
