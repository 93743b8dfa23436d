"""A bounded load test of the web app on loopback (not run by `make test`; nothing here asserts a time).

Starts `supercluster serve` in a child process on a free port, sends REQUESTS plans of a small catalog scenario to
`POST /api/plan` from CONCURRENCY client threads, and prints the errors, p50/p99 latency and requests/s:

    python benchmarks/bench_web.py [--requests 500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = {"cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "llama3-8b",
            "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 8192}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/catalog/clusters", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "supercluster.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(url, proc)
        with httpx.Client(base_url=url, timeout=120,
                          limits=httpx.Limits(max_connections=args.concurrency)) as client:
            client.post("/api/plan", json={"scenario": SCENARIO})  # warm: catalog and imports loaded

            def one(_: int) -> tuple[float, int]:
                start = time.perf_counter()
                try:
                    status = client.post("/api/plan", json={"scenario": SCENARIO}).status_code
                except httpx.HTTPError:
                    status = 0
                return time.perf_counter() - start, status

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    latency = np.array([r[0] for r in results])
    errors = sum(1 for r in results if r[1] != 200)
    print(f"POST /api/plan, {args.requests} requests at concurrency {args.concurrency} on loopback "
          f"({os.cpu_count()} cores): {errors} errors, p50 {1e3 * np.percentile(latency, 50):.0f} ms, "
          f"p99 {1e3 * np.percentile(latency, 99):.0f} ms, {args.requests / wall:.1f} requests/s")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
