"""Start-up time of the process-backed backends.

Median of ``--samples`` ``backend.start()`` calls per backend (to the first PING answered /
``cluster_state:ok``), against the goals server <= 100 ms, cluster <= 2 s, docker <= 2 s;
the ratio column is median / goal (<= 1 meets it). What a killed run leaves behind is
measured by ``bench_kill_matrix.py``.

    python benchmarks/bench_lifecycle.py
    python benchmarks/bench_lifecycle.py --backends cluster --samples 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

BACKENDS = ("server", "docker", "cluster")
STARTUP_GOAL_S = {"server": 0.100, "cluster": 2.0, "docker": 2.0}


def make_backend(backend: str, image: str) -> Any:
    if backend == "server":
        from pytest_cachecheck.backends.server import ServerBackend

        return ServerBackend("redis-server")
    if backend == "cluster":
        from pytest_cachecheck.backends.cluster import ClusterBackend

        return ClusterBackend("redis-server")
    from pytest_cachecheck.backends.docker import DockerBackend

    return DockerBackend(image)


def startup_times(backend: str, image: str, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        instance = make_backend(backend, image)
        started = time.perf_counter()
        instance.start()
        times.append(time.perf_counter() - started)
        instance.stop()
    return times


def docker_client() -> Any:
    try:
        from pytest_cachecheck.backends.docker import engine

        return engine()
    except Exception as exc:  # reported, and the docker rows are skipped
        print(f"docker: skipped ({exc})", file=sys.stderr)
        return None


def print_startup(backends: list[str], image: str, samples: int) -> None:
    print(f"## Start-up to ready (median of {samples})\n")
    print("| backend | median ms | p90 ms | goal ms | median / goal |")
    print("|---|---:|---:|---:|---:|")
    for backend in backends:
        times = sorted(startup_times(backend, image, samples))
        median = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        goal = STARTUP_GOAL_S[backend]
        print(f"| {backend} | {median * 1000:.0f} | {p90 * 1000:.0f} | {goal * 1000:.0f} | {median / goal:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20, help="start-up samples per backend (default 20)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated subset of server,docker,cluster"
    )
    parser.add_argument("--image", default=os.environ.get("CACHECHECK_TEST_IMAGE", "cachecheck/redis:local"))
    options = parser.parse_args()
    backends = [name for name in options.backends.split(",") if name]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))}; expected a subset of {', '.join(BACKENDS)}")
    if "docker" in backends and docker_client() is None:
        backends.remove("docker")

    print_startup(backends, options.image, options.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
