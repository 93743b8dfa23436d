"""Running a sweep: the points not yet in the results file, on a local process pool or a Ray cluster, each row
written to DuckDB as it completes (resumable), then exported to Parquet beside it once the sweep is complete."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import InputError, InterruptedRunError
from ..files import model_fingerprint
from .output import check_output_file
from .sweep import COLUMNS, FIELD_PREFIX, Sweep, evaluate_point

Backend = Literal["local", "ray"]
Progress = Callable[[int, int], None]  # (points done, points in the sweep)


class SweepRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    parquet: str | None
    points: int
    computed: int  # by this run
    resumed: int  # already in the file
    seconds: float
    backend: str
    rows: list[dict[str, Any]]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(sweep: Sweep) -> dict[str, str]:
    return {**COLUMNS, **{FIELD_PREFIX + f: "VARCHAR" for f in sweep.fields}}


def parquet_path(out: Path) -> Path:
    """The Parquet copy of a complete sweep, beside its results file."""
    return out.with_suffix(".parquet")


def _open(out: Path, sweep: Sweep) -> Any:
    """The results file: a new one for this sweep, or the same sweep's to resume (another sweep's file is refused,
    never overwritten). A file already where the Parquet copy goes is refused too, unless this sweep wrote it."""
    return open_results(out, name=sweep.name, digest=sweep.digest, columns=_columns(sweep),
                        meta={"points": str(len(sweep.points)), "fields": json.dumps(sweep.fields)})


def open_results(out: Path, *, name: str, digest: str, columns: dict[str, str], meta: dict[str, str],
                 kind: str = "sweep") -> Any:
    """A DuckDB results file (tables ``meta`` and ``results``) for the work ``digest`` names: a new one, or the same
    work's to resume; another work's file (or any other file) is refused, never overwritten, as is a file where the
    Parquet copy goes that this work did not write."""
    import duckdb

    check_output_file(out, field="--out")
    parquet = parquet_path(out)
    if parquet == out:
        raise InputError(f"{out} would be overwritten by the Parquet copy written beside it; choose an --out "
                         "ending in .duckdb", field="--out")
    check_output_file(parquet, field="--out")
    existed = out.exists()
    foreign = (f"{parquet} exists and was not written by this {kind}: it is left as it is; move it or choose "
               "another --out")
    if parquet.exists() and not existed:
        raise InputError(foreign, field="--out")
    try:
        con = duckdb.connect(str(out))
    except duckdb.Error as exc:
        raise InputError(f"cannot open {out} as a DuckDB file ({str(exc).splitlines()[0]}); choose another --out",
                         field="--out") from None
    if existed:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not {"meta", "results"} <= tables:
            con.close()
            raise InputError(f"{out} exists and is not a {kind} results file; choose another --out", field="--out")
        stored = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if stored.get("digest") != digest:
            con.close()
            raise InputError(f"{out} holds the results of another {kind} ({stored.get('name')!r}, other points); "
                             f"resume that {kind} with its own file, or choose another --out", field="--out")
        if stored.get("model") != model_fingerprint():
            con.close()
            raise InputError(f"{out} holds this {kind}'s results from another version of supercluster (its code or "
                             "catalog, the calibration included, has changed since): they would mix with this "
                             "version's; it is left as it is; move it or choose another --out", field="--out")
        if parquet.exists() and stored.get("complete") != "true":  # only a complete run wrote its copy
            con.close()
            raise InputError(foreign, field="--out")
        return con
    cols = ", ".join(f"{_quote(k)} {t}" for k, t in columns.items())
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(f"CREATE TABLE results ({cols})")
    con.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("name", name), ("digest", digest), ("model", model_fingerprint()), *meta.items(), ("complete", "false")])
    return con


def finish_results(con: Any, out: Path, key: str) -> list[dict[str, Any]]:
    """Mark a results file complete, write its Parquet copy beside it (ordered by ``key``), return its rows."""
    con.execute("UPDATE meta SET value = 'true' WHERE key = 'complete'")
    parquet = parquet_path(out)
    tmp = parquet.with_name(parquet.name + ".partial")
    target = str(tmp).replace("'", "''")
    con.execute(f"COPY (SELECT * FROM results ORDER BY {_quote(key)}) TO '{target}' (FORMAT PARQUET)")
    tmp.replace(parquet)
    cur = con.execute(f"SELECT * FROM results ORDER BY {_quote(key)}")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def stop_errors() -> tuple[type[BaseException], ...]:
    """A dead process-pool worker, and Ray's task and worker failures (when Ray is installed)."""
    try:
        from ray.exceptions import RayError
    except ImportError:
        return (cf.process.BrokenProcessPool,)
    return (cf.process.BrokenProcessPool, RayError)


def check_ray_address(address: str) -> None:
    """A clear error, fast, when a Ray head cannot be reached (ray.init would wait a minute)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"expected HOST:PORT, got {address!r}", field="--address")
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except OSError as exc:
        raise InputError(f"no Ray cluster answers at {address} ({exc.strerror or exc})", field="--address") from None


def _local(sweep: Sweep, pending: list[int], workers: int) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for i in pending:
            yield evaluate_point(sweep.base, sweep.base_dir, i, sweep.points[i])
        return
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        futures = [pool.submit(evaluate_point, sweep.base, sweep.base_dir, i, sweep.points[i]) for i in pending]
        for fut in cf.as_completed(futures):
            yield fut.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def _ray_session(workers: int, address: str | None) -> Iterator[Any]:
    """Ray, joined at ``address`` or started here with ``workers`` CPUs (and shut down after), unless already up."""
    import ray

    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers, **kwargs)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _ray(sweep: Sweep, pending: list[int], workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    with _ray_session(workers, address) as ray:
        task = ray.remote(evaluate_point)
        base = ray.put(sweep.base)
        waiting = [task.remote(base, sweep.base_dir, i, sweep.points[i]) for i in pending]
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            yield ray.get(ready[0])


def check_backend(backend: str, address: str | None) -> None:
    """A known backend, and for Ray its package and head, checked before any file is created."""
    if backend not in ("local", "ray"):
        raise InputError(f"unknown backend {backend!r} (local, ray)", field="--backend")
    if address and backend != "ray":
        raise InputError("--address is for --backend ray", field="--address")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError("--backend ray needs the ray package (pip install 'supercluster[ray]')",
                             field="--backend") from None
        if address:
            check_ray_address(address)


@contextlib.contextmanager
def task_pool(backend: Backend, workers: int, address: str | None = None
              ) -> Iterator[Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]]:
    """A ``map(fn, argument tuples) -> results in order`` over a local process pool (in process for one worker) or
    Ray, kept open across calls (a search submits its work in waves)."""
    if backend == "ray":
        with _ray_session(workers, address) as ray:
            def run(fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
                task = ray.remote(fn)
                return list(ray.get([task.remote(*a) for a in args]))

            yield run
        return
    if workers <= 1:
        yield lambda fn, args: [fn(*a) for a in args]
        return
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield lambda fn, args: list(pool.map(fn, *zip(*args, strict=True))) if args else []
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


INSERT_ROWS_PER_STATEMENT = 100  # DuckDB's executemany runs row by row: a multi-row INSERT is several times faster


def insert_rows(con: Any, table: str, names: list[str], rows: list[list[Any]]) -> None:
    """Append ``rows`` (values in the order of ``names``) to ``table``, INSERT_ROWS_PER_STATEMENT at a time."""
    one = f"({', '.join('?' for _ in names)})"
    head = f"INSERT INTO {table} ({', '.join(_quote(n) for n in names)}) VALUES "
    for k in range(0, len(rows), INSERT_ROWS_PER_STATEMENT):
        part = rows[k:k + INSERT_ROWS_PER_STATEMENT]
        con.execute(head + ", ".join(one for _ in part), [v for row in part for v in row])


def run_sweep(sweep: Sweep, out: str | Path, *, backend: Backend = "local", workers: int | None = None,
              address: str | None = None, progress: Progress | None = None) -> SweepRun:
    """Plan every point of ``sweep`` not yet in ``out`` and record it; export Parquet when all are done."""
    out = Path(out)
    workers = max(1, workers or os.cpu_count() or 1)
    check_backend(backend, address)  # a missing package or an unreachable head: before any file is created
    start = time.perf_counter()
    con = _open(out, sweep)
    try:
        done = {int(r[0]) for r in con.execute("SELECT point FROM results").fetchall()}
        pending = [i for i in range(len(sweep.points)) if i not in done]
        names = list(_columns(sweep))
        insert = (f"INSERT INTO results ({', '.join(_quote(n) for n in names)}) "
                  f"VALUES ({', '.join('?' for _ in names)})")
        count = len(done)
        if progress:
            progress(count, len(sweep.points))
        rows = _ray(sweep, pending, workers, address) if backend == "ray" else _local(sweep, pending, workers)
        try:
            for row in rows:
                con.execute(insert, [row.get(n) for n in names])
                count += 1
                if progress:
                    progress(count, len(sweep.points))
        except stop_errors() as exc:
            raise InterruptedRunError(
                f"a worker stopped ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"{count} of {len(sweep.points)} points are in {out}: run the same command to resume") from None
        table = finish_results(con, out, "point")
        parquet = parquet_path(out)
    finally:
        con.close()
    return SweepRun(file=str(out), parquet=str(parquet), points=len(sweep.points), computed=len(pending),
                    resumed=len(done), seconds=time.perf_counter() - start, backend=backend, rows=table)
