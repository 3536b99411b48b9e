"""Reliability and start-up time of the process-backed backends.

1. Leftovers: ``--runs`` pytest runs per (backend, signal), each killed at a random
   moment (start-up, collection, backend start, mid-test, teardown) with SIGINT,
   SIGTERM or SIGKILL. Afterwards (allowing 15 s for the parent-death signal and the
   container reaper to act) count redis-server processes working in the run's temp
   dir and containers labelled with the killed pid. Goal: 0 leftovers.
2. Start-up: median of ``--samples`` ``backend.start()`` calls per backend (to the
   first PING answered / ``cluster_state:ok``), against the goals server <= 100 ms,
   cluster <= 2 s, docker <= 2 s; the ratio column is median / goal (<= 1 meets it).

    python benchmarks/bench_lifecycle.py                 # full: 50 runs x 3 signals x 3 backends
    python benchmarks/bench_lifecycle.py --runs 5 --jobs 2
    python benchmarks/bench_lifecycle.py --startup-only --backends cluster   # part 2 only, seconds not minutes
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("server", "docker", "cluster")
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
STARTUP_GOAL_S = {"server": 0.100, "cluster": 2.0, "docker": 2.0}
# A run takes about: interpreter + plugin start-up, backend start, 12 tests of 0.1 s, teardown.
KILL_WINDOW_S = {"server": 4.0, "docker": 5.0, "cluster": 6.0}
CLEANUP_GRACE_S = 15.0

WORKLOAD = """
import time

import pytest

@pytest.mark.parametrize("n", range(12))
def test_cache_work(cache_redis, n):
    for i in range(50):
        cache_redis.set(f"k{n}:{i}", i)
        cache_redis.get(f"k{n}:{i}")
    time.sleep(0.1)
"""


@dataclass
class RunResult:
    backend: str
    signal: str
    servers_left: int
    containers_left: int
    exit_code: int | None
    cleanup_s: float


def redis_servers_under(directory: str) -> list[int]:
    """Live redis-server processes whose working directory (their ``--dir``) is under ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "redis-server":
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and os.readlink(entry / "cwd").startswith(directory):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def containers_of(client: Any, pid: int) -> list[Any]:
    if client is None:
        return []
    return client.containers.list(
        all=True, ignore_removed=True, filters={"label": f"pytest-cachecheck.owner-pid={pid}"}
    )


def one_run(backend: str, signame: str, image: str, client: Any, rng: random.Random) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="cachecheck-bench-") as work:
        run_tmp = Path(work) / "tmp"
        run_tmp.mkdir()
        (Path(work) / "test_work.py").write_text(WORKLOAD)
        args = ["--cache-backend", backend] + (["--cache-image", image] if backend == "docker" else [])
        env = dict(os.environ, TMPDIR=str(run_tmp))
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_work.py"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(rng.uniform(0, KILL_WINDOW_S[backend]))
            if process.poll() is None:
                process.send_signal(SIGNALS[signame])
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        killed_at = time.monotonic()
        while True:
            servers = redis_servers_under(str(run_tmp))
            containers = containers_of(client, process.pid)
            if (not servers and not containers) or time.monotonic() - killed_at > CLEANUP_GRACE_S:
                break
            time.sleep(0.1)
        cleanup = time.monotonic() - killed_at
        for pid in servers:  # leftovers are counted, then removed so they do not pile up
            os.kill(pid, signal.SIGKILL)
        for container in containers:
            container.remove(force=True)
        return RunResult(backend, signame, len(servers), len(containers), process.returncode, cleanup)


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


def run_killed(backends: list[str], options: argparse.Namespace, client: Any) -> list[RunResult]:
    """Every (backend, signal) pair ``--runs`` times, ``--jobs`` at a time, each with its own seeded moment."""
    jobs = [(backend, signame) for backend in backends for signame in SIGNALS for _ in range(options.runs)]
    rng = random.Random(options.seed)
    seeds = [rng.randrange(2**32) for _ in jobs]
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        return list(
            pool.map(
                lambda job: one_run(job[0], job[1], options.image, client, random.Random(job[2])),
                [(*job, seed) for job, seed in zip(jobs, seeds)],
            )
        )


def print_leftovers(backends: list[str], results: list[RunResult], elapsed_s: float) -> int:
    """The table, and how many runs left something behind."""
    print(f"\n## Leftovers after runs killed at random moments ({elapsed_s:.0f} s)\n")
    print("| backend | signal | runs | servers left | containers left | max clean-up s |")
    print("|---|---|---:|---:|---:|---:|")
    for backend in backends:
        for signame in SIGNALS:
            rows = [r for r in results if r.backend == backend and r.signal == signame]
            print(
                f"| {backend} | {signame} | {len(rows)} | {sum(r.servers_left for r in rows)} | "
                f"{sum(r.containers_left for r in rows)} | {max(r.cleanup_s for r in rows):.1f} |"
            )
    leftovers = sum(1 for r in results if r.servers_left or r.containers_left)
    print(f"\nruns with leftovers: {leftovers} of {len(results)} (goal 0)")
    return leftovers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="killed runs per backend and signal (default 50)")
    parser.add_argument("--samples", type=int, default=20, help="start-up samples per backend (default 20)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated subset of server,docker,cluster"
    )
    parser.add_argument("--jobs", type=int, default=1, help="killed runs in parallel (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    parser.add_argument("--image", default=os.environ.get("CACHECHECK_TEST_IMAGE", "cachecheck/redis:local"))
    parser.add_argument(
        "--startup-only", action="store_true", help="measure start-up only, skip the killed runs (~17 min in full)"
    )
    options = parser.parse_args()
    backends = [name for name in options.backends.split(",") if name]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))}; expected a subset of {', '.join(BACKENDS)}")
    client = docker_client() if "docker" in backends else None
    if client is None and "docker" in backends:
        backends.remove("docker")

    print_startup(backends, options.image, options.samples)
    if options.startup_only:
        return 0
    started = time.monotonic()
    results = run_killed(backends, options, client)
    return 1 if print_leftovers(backends, results, time.monotonic() - started) else 0


if __name__ == "__main__":
    sys.exit(main())
