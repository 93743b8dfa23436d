"""schemathesis against the app's own OpenAPI schema: requests generated from every operation's schema (valid and
not) never get a 5xx — bad input is a 4xx with a located message, never a stack trace. (Its pytest plugin is off,
`-p no:schemathesis` in pyproject: the operations are parametrised here and each runs a Hypothesis search.)"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from supercluster.web.app import create_app  # noqa: E402

SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", create_app())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def test_the_schema_has_the_operations() -> None:
    assert len(OPERATIONS) >= 10 and any(op.path == "/api/plan" for op in OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_no_request_gets_a_server_error(operation) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(case) -> None:
        case.call_and_validate(checks=(not_a_server_error,))

    check()
