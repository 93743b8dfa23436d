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

SCENARIO = {"cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "llama3-8b", "facility": "generic-air-cooled",
            "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 8192}}


@pytest.fixture(scope="module")
def base_url(serve_app: Callable[[Any], Any]) -> Iterator[str]:
    """The app on a free loopback port for the module's tests."""
    with serve_app(create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for the module's tests."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    """The app's page, loaded and planned (MFU shown); ``page.outside`` collects requests to any other origin."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.outside = []
    page.on("request", lambda r: None if r.url.startswith(base_url) else page.outside.append(r.url))
    page.goto(base_url + "/")
    sync_api.expect(page.locator("#mfu")).to_contain_text("%", timeout=20_000)
    yield page
    context.close()


def test_changing_the_gpu_count_changes_mfu(page: Any, tmp_path: Path) -> None:
    """A new GPU count re-plans the scenario: the MFU figure changes, the breakdown plot is drawn, no request leaves
    the machine; a screenshot is saved."""
    mfu = page.locator("#mfu")
    before = mfu.inner_text()
    page.fill("#num_gpus", "1024")
    page.dispatch_event("#num_gpus", "change")
    sync_api.expect(mfu).not_to_have_text(before, timeout=20_000)
    sync_api.expect(page.locator("#config")).to_contain_text("1024 ×")
    assert page.locator("#fig-breakdown .main-svg").count() > 0
    assert page.locator("#error").inner_text() == ""
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 0
    assert page.outside == []


def test_a_pasted_scenario_replaces_the_pick(page: Any) -> None:
    """A pasted YAML scenario is planned in place of the catalog pick; a malformed one shows its located line."""
    page.fill("#pasted", "cluster: {base: llama3-16k, num_gpus: 128}\nmodel: llama3-70b\n"
                         "training: {tokens: 1e12, global_batch: 256, seq_len: 8192}\n")
    page.click("#use-pasted")
    sync_api.expect(page.locator("#config")).to_contain_text("128 × ", timeout=20_000)
    sync_api.expect(page.locator("#config")).to_contain_text("llama3-70b")
    assert page.locator("#num_gpus").input_value() == "128"
    page.fill("#pasted", "cluster: [unclosed")
    page.click("#use-pasted")
    sync_api.expect(page.locator("#error")).to_contain_text("malformed YAML", timeout=20_000)


def test_the_full_report_opens_in_a_new_tab(page: Any) -> None:
    """'Open the full report' shows the scenario's HTML report, its plots drawn."""
    with page.expect_popup() as popup:
        page.click("#open-report")
    sync_api.expect(popup.value.locator(".main-svg").first).to_be_visible(timeout=30_000)


def test_the_report_renders_its_plots_offline(browser: Any, base_url: str, tmp_path: Path) -> None:
    """The HTML report (POST /api/report), opened with every network request refused, draws its plots: it needs
    nothing but itself."""
    import httpx

    html = httpx.post(f"{base_url}/api/report", json={"scenario": SCENARIO}, timeout=60).text
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    requested: list[str] = []
    context = browser.new_context(offline=True)
    try:
        context.route("**/*", lambda route: (requested.append(route.request.url), route.abort())
                      if not route.request.url.startswith("file:") else route.continue_())
        page = context.new_page()
        page.goto(report.as_uri())
        sync_api.expect(page.locator(".main-svg").first).to_be_visible(timeout=20_000)
        assert page.locator(".js-plotly-plot").count() >= 3
    finally:
        context.close()
    assert requested == []
