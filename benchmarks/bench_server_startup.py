"""Time to a ready ``server`` backend: spawn, PING readiness, version, client pool.

Compared in the same run with a bare baseline (Popen of redis-server plus polling a
raw PING as fast as possible), alternating, median of N each. Goal: <= 100 ms.

    python benchmarks/bench_server_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from time import perf_counter

from pytest_cachecheck.backends.base import free_port, ping
from pytest_cachecheck.backends.server import ServerBackend

GOAL_MS = 100.0


def bare(binary: str) -> float:
    port = free_port()
    start = perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        while not ping("127.0.0.1", port):
            pass
        elapsed = perf_counter() - start
        process.terminate()
        process.wait()
    return elapsed * 1e3


def ours(binary: str) -> float:
    backend = ServerBackend(binary)
    start = perf_counter()
    backend.start()
    backend.client().ping()
    elapsed = perf_counter() - start
    backend.stop()
    return elapsed * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--server-bin", default=shutil.which("redis-server") or "redis-server")
    options = parser.parse_args()
    ours_ms, bare_ms = [], []
    for _ in range(options.runs):
        bare_ms.append(bare(options.server_bin))
        ours_ms.append(ours(options.server_bin))
    print(f"time to a ready server, {options.runs} runs each, alternating\n")
    print("| start-up                               | median ms | min ms | max ms |")
    print("|----------------------------------------|-----------|--------|--------|")
    for name, values in (("server backend (start + first command)", ours_ms), ("bare Popen + busy PING poll", bare_ms)):
        print(f"| {name:<38} | {statistics.median(values):>9.1f} | {min(values):>6.1f} | {max(values):>6.1f} |")
    median = statistics.median(ours_ms)
    ratio = median / statistics.median(bare_ms)
    status = "met" if median <= GOAL_MS else "MISSED"
    print(f"\nratio ours/bare: {ratio:.2f}; goal median <= {GOAL_MS:.0f} ms: {status}")
    return 0 if median <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
