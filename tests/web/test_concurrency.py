"""CPU-bound work runs off the event loop: while one plan is busy, the server answers other requests."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the web app needs uvicorn: pip install -e '.[dev]'")
httpx = pytest.importorskip("httpx")

SMALL = {"cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "llama3-8b",
         "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 8192}}


def test_a_busy_plan_does_not_stall_the_server(serve_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan held busy (blocked until released) does not stop the catalog from answering meanwhile."""
    from supercluster.web import app as web_app

    entered, release = threading.Event(), threading.Event()
    real_plan = web_app.plan

    def busy_plan(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(timeout=30)  # holds its worker thread as a long computation would
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(web_app, "plan", busy_plan)
    with serve_app(web_app.create_app()) as url:
        slow: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: slow.update(r=httpx.post(f"{url}/api/plan", json={"scenario": SMALL},
                                                                          timeout=60)))
        worker.start()
        try:
            assert entered.wait(timeout=30), "the plan never started"
            quick = httpx.get(f"{url}/api/catalog/models", timeout=20)  # answered while the plan is held
            assert quick.status_code == 200 and "llama3-8b" in quick.json()
            assert worker.is_alive()  # the plan is still held: the answer did not wait for it
        finally:
            release.set()
            worker.join(timeout=60)
        assert slow["r"].status_code == 200, slow["r"].text
