"""`supercluster report`: one self-contained HTML page of a scenario's run, its output path checked before any
work, and never a file of the user's overwritten."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from supercluster import load_scenario
from supercluster.errors import InputError
from supercluster.report import html as report_html
from supercluster.units import format_duration

SCENARIO: dict[str, Any] = {
    "name": "report-test",
    "description": "llama3-8b on 64 H100 with a two-stage pipeline",
    "cluster": {"base": "llama3-16k", "num_gpus": 64},
    "model": "llama3-8b",
    "facility": "memphis-colossus",
    "training": {"tokens": 1.0e12, "global_batch": 256},
    "parallelism": {"pp": 2},
    "claims": [
        {"claim": "sixty-four GPUs in the run", "metric": "num_gpus", "low": 64, "high": 64, "unit": "GPUs",
         "source": "a test's own statement of the GPU count"},
        {"claim": "an MFU near forty percent", "metric": "mfu", "low": 0.35, "high": 0.45,
         "source": "a test's guess at the MFU"},
    ],
}
SECTIONS = ("Scenario and parallelism", "Step time", "Memory per GPU", "Pipeline schedule", "Scaling with GPU count",
            "Fabric", "Power, water, carbon and cost", "Goodput", "Public claims", "Model and assumptions", "Sources")
FIGURES = ("step-time", "memory", "pipeline", "scaling", "step-power", "power", "water", "capex", "goodput")


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(scenario_file: Path) -> report_html.ReportData:
    """What the page of the test scenario shows, built in process."""
    return report_html.build_report(load_scenario(scenario_file))


@pytest.fixture(scope="module")
def page(cli, scenario_file: Path) -> tuple[Path, str]:
    """`supercluster report` of the test scenario, written once for the module: its path and its text."""
    out = scenario_file.parent / "report.html"
    result = cli("report", str(scenario_file), "-o", str(out))
    assert result.code == 0, result.err
    assert result.out.strip() == f"report: {out}"
    return out, out.read_text(encoding="utf-8")


def test_the_page_is_written_and_self_contained(page: tuple[Path, str]) -> None:
    """One HTML page that needs no network: no script, style or link loaded from a URL, Plotly's JavaScript
    embedded once, and every figure drawn by it."""
    _, text = page
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    tags = re.findall(r"<(?:script|link|style|img|iframe)\b[^>]*>", text)
    assert tags and not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t)]
    assert not re.search(r"<link\b", text)
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()[:200]) == 1
    for name in FIGURES:
        assert f'id="fig-{name}"' in text, name
    assert text.count("Plotly.newPlot(") == len(FIGURES)


def test_the_page_shows_every_section_and_the_key_figures(page: tuple[Path, str],
                                                          data: report_html.ReportData) -> None:
    """Each section's heading; the step time as the report prints it; the chosen parallelism; every claim with
    its verdict; every cited source, the estimates flagged; every GPU count of the sweep."""
    _, text = page
    run = data.run
    for title in SECTIONS:
        assert f"<h2>{html.escape(title)}</h2>" in text, title
    assert f"Step time {format_duration(run.step.step_time_s)}" in text
    assert html.escape(report_html.parallelism_text(run.step.parallelism)) in text
    assert SCENARIO["description"] in text
    assert run.claims and len(run.claims) == len(SCENARIO["claims"])
    for c in run.claims:
        assert html.escape(c.claim) in text and html.escape(c.source) in text
        assert f">{c.verdict}</td>" in text
    assert run.provenance
    for p in run.provenance:
        assert html.escape(p.source) in text, p.name
    estimates = sum(p.estimate for p in run.provenance)
    assert estimates > 0 and text.count('class="estimate"') >= estimates
    for assumption in run.model.assumptions:
        assert html.escape(assumption) in text
    for gpus in (16, 32, 64, 128, 256):
        assert f"<td>{gpus:,}</td>" in text
    assert run.step.pipeline is not None and run.step.pipeline.stages == 2


@pytest.mark.parametrize(("target", "fragments"), [
    ("missing-folder/report.html", ("-o", "does not exist")),
    ("report.txt", ("-o", "expected a .html file")),
    ("", ("-o",)),
])
def test_a_bad_output_path_is_refused_before_any_work(cli, tmp_path: Path, target: str,
                                                      fragments: tuple[str, ...]) -> None:
    """A path that cannot be the page is one located line and exit 2, before the scenario is even read (here it
    does not exist)."""
    out = str(tmp_path / target) if target else ""
    cli("report", str(tmp_path / "no-such-scenario.yaml"), "-o", out).one_error_line(*fragments)
    assert list(tmp_path.iterdir()) == []


def test_a_users_file_is_never_overwritten(cli, tmp_path: Path) -> None:
    """An existing file supercluster did not write is left as it is (exit 2, one line)."""
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>", encoding="utf-8")
    cli("report", str(tmp_path / "no-such-scenario.yaml"), "-o", str(mine)).one_error_line(
        "-o", "not written by supercluster")
    assert mine.read_text(encoding="utf-8") == "<p>my notes</p>"


def test_set_overrides_and_its_own_page_is_replaced(cli, page: tuple[Path, str], scenario_file: Path,
                                                    tmp_path: Path) -> None:
    """--set changes the scenario the page reports; a page supercluster wrote is replaced."""
    out = tmp_path / "again.html"
    shutil.copyfile(page[0], out)
    result = cli("report", str(scenario_file), "-o", str(out), "--set", "cluster.num_gpus=128")
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8")
    assert "128 x H100" in text and "64 x H100" not in text
    assert "<td>512</td>" in text  # the sweep goes to 4 x 128


def test_figures_without_kaleido_say_what_to_install(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--format png / svg without kaleido: one line naming what to install, before any work; nothing written."""
    monkeypatch.setattr(report_html, "_kaleido_installed", lambda: False)
    for fmt in ("png", "svg"):
        cli("report", str(tmp_path / "no-such-scenario.yaml"), "-o", str(tmp_path / "figures"), "--format",
            fmt).one_error_line("--format", "pip install kaleido", "apt-get install chromium")
    cli("report", "x.yaml", "-o", str(tmp_path / "r.html"), "--format", "pdf").one_error_line("--format", "pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_figure_folder_keeps_the_users_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder holding a figure file of the same name that supercluster did not write is refused; a file in place
    of the folder too; a new folder or one marked as supercluster's is accepted."""
    monkeypatch.setattr(report_html, "_kaleido_installed", lambda: True)
    folder = tmp_path / "slides"
    assert report_html.check_report_target(str(folder), "png") == folder
    folder.mkdir()
    (folder / "memory.png").write_bytes(b"mine")
    with pytest.raises(InputError, match="memory.png, not written by supercluster"):
        report_html.check_report_target(str(folder), "png")
    assert report_html.check_report_target(str(folder), "svg") == folder
    (folder / ".supercluster-report").write_text("supercluster report\n", encoding="utf-8")
    assert report_html.check_report_target(str(folder), "png") == folder
    with pytest.raises(InputError, match="is a file"):
        report_html.check_report_target(str(folder / "memory.png"), "png")


def test_figure_files_and_a_browserless_kaleido(data: report_html.ReportData, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """--format png writes one file per figure in a folder marked as supercluster's; kaleido failing (no Chromium)
    is one line saying what to install."""
    import plotly.graph_objects as go

    def fake_write(fig: Any, path: str, **kwargs: Any) -> None:
        Path(path).write_bytes(b"png")

    monkeypatch.setattr(go.Figure, "write_image", fake_write)
    monkeypatch.setattr(report_html, "_kaleido_installed", lambda: True)
    written = report_html.write_figures(data, tmp_path / "figs", "png")
    assert [p.name for p in written] == [f"{n}.png" for n in report_html.FIGURE_NAMES]
    assert report_html.check_report_target(str(tmp_path / "figs"), "png") == tmp_path / "figs"

    def no_browser(fig: Any, path: str, **kwargs: Any) -> None:
        raise RuntimeError("Kaleido requires Google Chrome to be installed.\nmore detail")

    monkeypatch.setattr(go.Figure, "write_image", no_browser)
    with pytest.raises(InputError) as err:
        report_html.write_figures(data, tmp_path / "svg", "svg")
    assert "\n" not in str(err.value) and "apt-get install chromium" in str(err.value)


def test_a_pipeline_too_big_to_draw_is_described(data: report_html.ReportData) -> None:
    """A pipeline of more blocks than MAX_DRAWN_BLOCKS gets its figures in a table and no drawing."""
    p = data.run.step.pipeline
    assert p is not None
    big = p.model_copy(update={"microbatches": report_html.MAX_DRAWN_BLOCKS})
    run = data.run.model_copy(update={"step": data.run.step.model_copy(update={"pipeline": big})})
    huge = report_html.ReportData(run=run, scaling=data.scaling)
    assert report_html.pipeline_figure(huge.run) is None
    text = report_html.render_html(huge)
    assert 'id="fig-pipeline"' not in text and "described, not drawn" in text
    assert f"<td>{report_html.MAX_DRAWN_BLOCKS:,}</td>" in text
