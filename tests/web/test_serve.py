"""`supercluster serve`: loopback by default, a bad port refused with one line."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the web app needs uvicorn: pip install -e '.[dev]'")


def test_serve_binds_to_loopback_by_default(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --host the app listens on 127.0.0.1:8000 only."""
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    result = cli("serve")
    assert result.code == 0, result.err
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8000)


def test_serve_refuses_a_bad_port(cli) -> None:
    """A port outside 0..65535 is one located error line, exit 2."""
    cli("serve", "--port", "70000").one_error_line("--port", "65535")
