"""Sweeps: a grid of scenario variants, each planned, one row per point in DuckDB (and Parquet); local and Ray
backends agree; an interrupted sweep resumes with no lost and no duplicated rows; bad input is one located line."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from supercluster.search.runner import run_sweep
from supercluster.search.sweep import FIELD_PREFIX, load_sweep

BASE = {"name": "s", "cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "llama3-8b",
        "training": {"tokens": 1.0e12, "global_batch": 256}}


def write(tmp: Path, grid: dict[str, Any] | None = None, file: str = "sweep.yaml", **extra: Any) -> Path:
    body: dict[str, Any] = {"name": "t", "scenario": BASE, **extra}
    if grid is not None:
        body["grid"] = grid
    f = tmp / file
    f.write_text(yaml.safe_dump(body), encoding="utf-8")
    return f


@contextlib.contextmanager
def _watchdog(proc: subprocess.Popen[str], seconds: float) -> Iterator[None]:
    """Kill ``proc`` after ``seconds`` whatever the test is waiting for (a line that never comes, an exit), so that a
    stalled sweep fails the test instead of hanging it; the test then sees end of output, or a kill exit code."""
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _read_until(proc: subprocess.Popen[str], prefix: str) -> bool:
    """Read the process's stderr up to a line starting with ``prefix``; False at end of output (it exited or the
    watchdog killed it)."""
    assert proc.stderr is not None
    return any(line.startswith(prefix) for line in proc.stderr)


def rows(path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT * FROM results ORDER BY point").fetchall()
    finally:
        con.close()


def test_grid_rows_hold_the_headline_figures(tmp_path: Path) -> None:
    f = write(tmp_path, {"cluster.num_gpus": [64, 128], "model": ["llama3-8b", "llama3-70b"]},
              points=[{"cluster.num_gpus": 96, "parallelism.tp": 3}])
    sw = load_sweep(f)
    assert len(sw.points) == 5 and sw.fields == ["cluster.num_gpus", "model", "parallelism.tp"]
    run = run_sweep(sw, tmp_path / "out.duckdb", workers=1)
    assert [r["point"] for r in run.rows] == [0, 1, 2, 3, 4]
    ok = [r for r in run.rows if r["status"] == "ok"]
    assert len(ok) == 4
    for r in ok:
        assert 0 < r["mfu"] < 1 and r["step_time_s"] > 0 and r["time_to_train_s"] > 0
        assert r["goodput"] is not None and 0 < r["goodput"] <= 1
        assert json.loads(r[FIELD_PREFIX + "cluster.num_gpus"]) == r["num_gpus"]
    assert run.rows[1]["model"] == "llama3-70b" and json.loads(run.rows[1][FIELD_PREFIX + "model"]) == "llama3-70b"
    bad = run.rows[4]  # tp 3 divides neither the 32 heads nor the 8-GPU domain: recorded, not raised
    assert bad["status"] == "invalid" and "parallelism.tp" in bad["error"]
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{run.parquet}'").fetchall() == [(5,)]
    con.close()
    meta = dict(duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True)
                .execute("SELECT key, value FROM meta").fetchall())
    assert meta["complete"] == "true"
    again = run_sweep(sw, tmp_path / "out.duckdb", workers=1)  # nothing left to do
    assert again.computed == 0 and again.resumed == 5 and again.rows == run.rows


def test_local_pool_and_ray_give_identical_rows(tmp_path: Path) -> None:
    """The same small grid on a process pool and on a real local Ray runtime."""
    pytest.importorskip("ray")
    sw = load_sweep(write(tmp_path, {"cluster.num_gpus": [64, 128], "model": ["llama3-8b", "llama3-70b"]}))
    local = run_sweep(sw, tmp_path / "local.duckdb", backend="local", workers=2)
    ray_run = run_sweep(sw, tmp_path / "ray.duckdb", backend="ray", workers=2)
    assert ray_run.backend == "ray" and local.rows == ray_run.rows
    assert rows(tmp_path / "local.duckdb") == rows(tmp_path / "ray.duckdb")


def test_killed_sweep_resumes_without_lost_or_duplicated_rows(tmp_path: Path) -> None:
    """SIGKILL the sweep after a few points, run the same command again: every point once, the same rows as an
    uninterrupted run."""
    f = write(tmp_path, {"cluster.num_gpus": [64, 128, 256], "training.global_batch": [256, 512],
                         "model": ["llama3-8b", "llama3-70b"]})
    exe = [sys.executable, "-m", "supercluster.cli", "sweep", str(f), "--workers", "1"]
    out = tmp_path / "killed.duckdb"
    proc = subprocess.Popen([*exe, "--out", str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "COLUMNS": "100"})
    with _watchdog(proc, seconds=120):
        assert _read_until(proc, "t: 5/12 points"), "the sweep ended or stalled before 5 points"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = rows(out)
    assert 5 <= len(partial) < 12
    meta = dict(duckdb.connect(str(out), read_only=True).execute("SELECT key, value FROM meta").fetchall())
    assert meta["complete"] == "false" and not out.with_suffix(".parquet").exists()
    done = subprocess.run([*exe, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = rows(out)
    points = [r[0] for r in resumed]
    assert points == list(range(12))
    reference = run_sweep(load_sweep(f), tmp_path / "reference.duckdb", workers=1)
    assert resumed == rows(tmp_path / "reference.duckdb") and len(reference.rows) == 12


def test_plot_writes_a_png(tmp_path: Path, cli) -> None:
    """--plot draws a PNG; the same command again replaces the plot it drew itself."""
    f = write(tmp_path, {"cluster.num_gpus": [64, 128], "model": ["llama3-8b", "llama3-70b"]})
    png = tmp_path / "out.png"
    args = ("sweep", str(f), "--workers", "1", "--out", str(tmp_path / "p.duckdb"), "--plot", str(png))
    result = cli(*args)
    assert result.code == 0, result.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png.write_bytes(png.read_bytes())  # touched, still the plot supercluster drew
    again = cli(*args)
    assert again.code == 0, again.err


def test_report_writes_one_self_contained_page(tmp_path: Path, cli) -> None:
    """--report writes the finished sweep as one HTML page with its charts and every point's row, no script fetched
    from the network; a page of the user's at that path is refused before the sweep runs."""
    f = write(tmp_path, {"cluster.num_gpus": [64, 128], "model": ["llama3-8b", "llama3-70b"]})
    page = tmp_path / "sweep.html"
    args = ("sweep", str(f), "--workers", "1", "--out", str(tmp_path / "r.duckdb"), "--report", str(page))
    result = cli(*args)
    assert result.code == 0, result.err
    text = page.read_text(encoding="utf-8")
    assert 'id="sweep-mfu"' in text and 'id="sweep-days"' in text and "every point" in text
    assert "llama3-70b" in text and text.count("<tr>") == 1 + 4  # the header and the four points
    assert not re.search(r"<script[^>]+src=", text)
    mine = tmp_path / "mine.html"
    mine.write_text("<p>my page</p>", encoding="utf-8")
    refused = cli("sweep", str(f), "--workers", "1", "--out", str(tmp_path / "s.duckdb"), "--report", str(mine))
    refused.one_error_line("--report", "not written by supercluster")
    assert mine.read_text(encoding="utf-8") == "<p>my page</p>" and not (tmp_path / "s.duckdb").exists()


def _not_a_folder(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("my notes", encoding="utf-8")
    return tmp / "notes.txt" / "x"


def _unwritable(tmp: Path) -> Path:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc (a folder no one can create a file in)")
    return Path("/proc")


@pytest.mark.parametrize(("option", "target", "fragments"), [
    ("--plot", lambda tmp: tmp / "missing" / "p.png", ("--plot", "does not exist", "missing")),
    ("--plot", lambda tmp: _not_a_folder(tmp) / "p.png", ("--plot", "does not exist")),
    ("--plot", lambda tmp: _unwritable(tmp) / "p.png", ("--plot", "cannot write", "/proc")),
    ("--plot", lambda tmp: (tmp / "d.png").mkdir() or tmp / "d.png", ("--plot", "is a directory")),
    ("--plot", lambda tmp: tmp / "p.svg", ("--plot", ".png")),
    ("--out", lambda tmp: tmp / "missing" / "r.duckdb", ("--out", "does not exist", "missing")),
    ("--out", lambda tmp: _unwritable(tmp) / "r.duckdb", ("--out", "cannot write", "/proc")),
    ("--out", lambda tmp: (tmp / "d.duckdb").mkdir() or tmp / "d.duckdb", ("--out", "is a directory")),
    ("--out", lambda tmp: tmp / "r.parquet", ("--out", "Parquet")),
], ids=["plot-missing-folder", "plot-folder-is-a-file", "plot-unwritable", "plot-directory", "plot-not-png",
        "out-missing-folder", "out-unwritable", "out-directory", "out-parquet"])
def test_output_paths_are_checked_before_any_point(tmp_path: Path, cli, monkeypatch, option: str, target: Any,
                                                   fragments: tuple[str, ...]) -> None:
    """A file the sweep cannot write: one located line and exit 2 before any point is planned (no traceback after
    the whole sweep ran)."""
    import supercluster.search.sweep as sweep_module

    def never(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a point was planned before the output paths were checked")

    monkeypatch.setattr(sweep_module, "plan", never)
    f = write(tmp_path, {"cluster.num_gpus": [64, 128]})
    path = target(tmp_path)
    others = {"--out": str(tmp_path / "ok.duckdb"), "--plot": str(tmp_path / "ok.png")}
    others[option] = str(path)
    cli("sweep", str(f), "--workers", "1", *[x for kv in others.items() for x in kv]).one_error_line(*fragments)
    assert not (tmp_path / "ok.duckdb").exists() and not (tmp_path / "ok.png").exists()


def test_a_file_of_the_users_is_never_overwritten(tmp_path: Path, cli) -> None:
    """An existing --plot file supercluster did not draw, or a file where the Parquet copy would go, is refused
    before the sweep starts and left as it was."""
    f = write(tmp_path, {"cluster.num_gpus": [64]})
    mine = tmp_path / "figure.png"
    mine.write_bytes(b"\x89PNG\r\n\x1a\n my own figure")
    cli("sweep", str(f), "--out", str(tmp_path / "a.duckdb"), "--plot", str(mine)).one_error_line(
        "--plot", "figure.png", "not drawn by supercluster")
    assert mine.read_bytes() == b"\x89PNG\r\n\x1a\n my own figure"
    table = tmp_path / "b.parquet"
    table.write_text("my table", encoding="utf-8")
    cli("sweep", str(f), "--out", str(tmp_path / "b.duckdb")).one_error_line("--out", "b.parquet", "left as it is")
    assert table.read_text(encoding="utf-8") == "my table" and not (tmp_path / "b.duckdb").exists()


@pytest.mark.parametrize(("grid", "extra", "fragments"), [
    ({"cluster.num_gpuz": [64]}, {}, ("grid.cluster.num_gpuz", "num_gpuz")),
    ({"cluster.num_gpus": []}, {}, ("grid.cluster.num_gpus", "empty")),
    ({"model": ["llama-99b"]}, {}, ("grid.model", "llama-99b")),
    ({"training.global_batch": ["many"]}, {}, ("grid.training.global_batch",)),
    (None, {}, ("grid", "no points")),
    ({"cluster.num_gpus": list(range(8, 8 * 2002, 8))}, {}, ("more than 2,000", "--yes")),
])
def test_bad_sweeps_are_one_located_line_and_leave_no_file(tmp_path: Path, cli, grid: Any, extra: dict[str, Any],
                                                            fragments: tuple[str, ...]) -> None:
    f = write(tmp_path, grid, **extra)
    out = tmp_path / "never.duckdb"
    cli("sweep", str(f), "--out", str(out)).one_error_line(*fragments)
    assert not out.exists()


def test_missing_base_scenario_is_located(tmp_path: Path, cli) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nscenario: nope.yaml\ngrid: {cluster.num_gpus: [8]}\n", encoding="utf-8")
    cli("sweep", str(f), "--out", str(tmp_path / "o.duckdb")).one_error_line("scenario", "nope.yaml")
    assert not (tmp_path / "o.duckdb").exists()


def test_unreachable_ray_address_and_foreign_results_file(tmp_path: Path, cli) -> None:
    f = write(tmp_path, {"cluster.num_gpus": [64]})
    out = tmp_path / "never.duckdb"
    cli("sweep", str(f), "--backend", "ray", "--address", "127.0.0.1:1", "--out", str(out)).one_error_line(
        "--address", "127.0.0.1:1")
    assert not out.exists()
    other = tmp_path / "other.duckdb"
    run_sweep(load_sweep(write(tmp_path, {"cluster.num_gpus": [128]}, file="other.yaml")), other, workers=1)
    before = rows(other)
    cli("sweep", str(f), "--out", str(other)).one_error_line("--out", "another sweep")
    assert rows(other) == before
    notes = tmp_path / "notes.duckdb"
    notes.write_text("my notes", encoding="utf-8")
    cli("sweep", str(f), "--out", str(notes)).one_error_line("--out")
    assert notes.read_text(encoding="utf-8") == "my notes"


def _pool_workers(pid: int) -> list[int]:
    """The process-pool workers among ``pid``'s children: those multiprocessing's spawn started (``spawn_main``),
    not its resource tracker, which is a child too and whose death stops nothing."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and b"spawn_main" in cmdline:
                out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the pool's workers")
def test_a_killed_worker_stops_the_sweep_cleanly_and_it_resumes(tmp_path: Path) -> None:
    """SIGKILL one process-pool worker: the sweep stops with a one-line message (exit 1, no traceback), keeps the
    rows it wrote, and the same command finishes it."""
    f = write(tmp_path, {"cluster.num_gpus": [64, 128, 256], "training.global_batch": [256, 512],
                         "model": ["llama3-8b", "llama3-70b"]})
    out = tmp_path / "w.duckdb"
    exe = [sys.executable, "-m", "supercluster.cli", "sweep", str(f), "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(exe, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    with _watchdog(proc, seconds=120):
        assert _read_until(proc, "t: 2/12 points"), "the sweep ended or stalled before 2 points"
        workers = _pool_workers(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)  # 10 points are left: the pool cannot finish them without it
        err = proc.stderr.read()
        proc.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "a worker stopped" in err and "run the same command to resume" in err, err
    done = subprocess.run(exe, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in rows(out)] == list(range(12))


def test_a_results_file_of_another_model_version_is_refused_not_resumed(tmp_path: Path, cli) -> None:
    """The same sweep run again by another version of supercluster (its code or catalog, calibration included, has
    changed) would resume into rows the old model computed: refused, one located line, the file left as it was."""
    f = write(tmp_path, {"cluster.num_gpus": [64, 128]})
    out = tmp_path / "s.duckdb"
    args = ("sweep", str(f), "--workers", "1", "--out", str(out))
    assert cli(*args).code == 0
    assert cli(*args).code == 0  # the same version resumes its own complete file
    con = duckdb.connect(str(out))
    con.execute("UPDATE meta SET value = 'another-version' WHERE key = 'model'")
    con.close()
    before = out.read_bytes()
    cli(*args).one_error_line("--out", "from another version of supercluster")
    assert out.read_bytes() == before
