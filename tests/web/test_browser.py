"""The page in a real browser (Playwright driving Debian's Chromium): change the GPU count, see MFU change."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web app needs fastapi: pip install -e '.[dev]'")
uvicorn = pytest.importorskip("uvicorn", reason="the web app needs uvicorn: pip install -e '.[dev]'")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="needs Playwright for Python: pip install -e '.[dev]' (or pip install playwright)")

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is not used
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"needs a browser at {CHROMIUM}: sudo apt-get install -y chromium", allow_module_level=True)

from supercluster.web import create_app  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread, for the module's tests."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_changing_the_gpu_count_changes_mfu(base_url: str, tmp_path: Path) -> None:
    """The page plans the default catalog scenario, and a new GPU count re-plans it: the MFU figure changes, the
    breakdown plot is drawn, no request leaves the machine; a screenshot is saved."""
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda r: None if r.url.startswith(base_url) else outside.append(r.url))
            page.goto(base_url + "/")
            mfu = page.locator("#mfu")
            sync_api.expect(mfu).to_contain_text("%", timeout=20_000)
            before = mfu.inner_text()
            page.fill("#num_gpus", "1024")
            page.dispatch_event("#num_gpus", "change")
            sync_api.expect(mfu).not_to_have_text(before, timeout=20_000)
            sync_api.expect(page.locator("#config")).to_contain_text("1024 ×")
            assert page.locator("#fig-breakdown .main-svg").count() > 0
            assert page.locator("#error").inner_text() == ""
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 0
    assert outside == []
