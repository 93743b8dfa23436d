"""The page in a real browser (Playwright driving Debian's Chromium): change the GPU count, see MFU change."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web app needs fastapi: pip install -e '.[dev]'")
uvicorn = pytest.importorskip("uvicorn", reason="the web app needs uvicorn: pip install -e '.[dev]'")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="needs Playwright for Python: pip install -e '.[dev]' (or pip install playwright)")

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is not used
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"needs a browser at {CHROMIUM}: sudo apt-get install -y chromium", allow_module_level=True)

from supercluster.web import create_app  # noqa: E402


@pytest.fixture(scope="module")
def base_url(serve_app: Callable[[Any], Any]) -> Iterator[str]:
    """The app on a free loopback port for the module's tests."""
    with serve_app(create_app()) as url:
        yield url


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


def test_the_report_renders_its_plots_offline(base_url: str, tmp_path: Path) -> None:
    """The HTML report (POST /api/report), opened with every network request refused, draws its plots: it needs
    nothing but itself."""
    import httpx

    scenario = {"cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "llama3-8b", "facility": "generic-air-cooled",
                "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 8192}}
    html = httpx.post(f"{base_url}/api/report", json={"scenario": scenario}, timeout=60).text
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    requested: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True)
            context.route("**/*", lambda route: (requested.append(route.request.url), route.abort())
                          if not route.request.url.startswith("file:") else route.continue_())
            page = context.new_page()
            page.goto(report.as_uri())
            sync_api.expect(page.locator(".main-svg").first).to_be_visible(timeout=20_000)
            assert page.locator(".js-plotly-plot").count() >= 3
        finally:
            browser.close()
    assert requested == []
