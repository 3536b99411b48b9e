"""The kill matrix: does anything of a killed pytest run survive the next run?

SIGINT / SIGTERM / SIGKILL x backend server / cluster / docker x ``--runs`` runs. Each run
is a real pytest run of a small workload in its own TMPDIR, killed at a random moment:
half of the runs anywhere from interpreter start-up to teardown, half inside the backend's
start (server spawn, cluster formation, container creation), timed from the moment the
workload's collection finished. Then a normal follow-up run (same backend, same TMPDIR,
as the next CI job on the machine) ends, and after up to ``CLEANUP_GRACE_S`` the script
counts what is left of either run:

* redis-server processes working in the TMPDIR (their ``--dir``);
* containers labelled with the killed or the follow-up run's pid (``pytest-cachecheck.owner-pid``);
* ``cachecheck-redis-*`` work directories in the TMPDIR.

Leftovers are counted, then removed, so they do not pile up. Goal: 0 runs with leftovers.
Docker needs an engine and an image: ``scripts/docker-redis-image.sh`` starts Debian's dockerd
and builds the local image; if that fails the script says so and runs the other backends.

    python benchmarks/bench_kill_matrix.py                     # 50 runs per cell: 450 runs
    python benchmarks/bench_kill_matrix.py --runs 10 --jobs 2
    python benchmarks/bench_kill_matrix.py --backends server,cluster --signals SIGKILL
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("server", "cluster", "docker")
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
# A whole run: interpreter + plugin start-up, backend start, 12 tests of 0.1 s, teardown.
RUN_WINDOW_S = {"server": 4.0, "cluster": 6.0, "docker": 5.0}
# The backend's start, from the end of collection: spawn and PING; three nodes and the 2 s
# writable delay; engine ping, leftover sweep, reaper, create + start, PING.
START_WINDOW_S = {"server": 0.3, "cluster": 2.5, "docker": 1.5}
CLEANUP_GRACE_S = 25.0  # the docker reaper searches 20 s for a container whose creation was in flight
LABEL_PID = "pytest-cachecheck.owner-pid"

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

# Tells the script when collection is over, i.e. the backend's start is about to begin.
WORKLOAD_CONFTEST = """
import os

def pytest_collection_finish(session):
    with open(os.environ["KILL_MATRIX_COLLECTED"], "w"):
        pass
"""

FOLLOW_UP = "def test_next(cache_redis):\n    cache_redis.set('k', 1)\n"


@dataclass(frozen=True)
class RunResult:
    backend: str
    signal: str
    moment: str
    servers_left: int
    containers_left: int
    dirs_left: int
    follow_up_ok: bool

    @property
    def leftovers(self) -> bool:
        return bool(self.servers_left or self.containers_left or self.dirs_left)


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


def containers_of(client: Any, pids: list[int]) -> list[Any]:
    """Containers (any state) labelled with one of these owner pids: only this script's runs, not others'."""
    if client is None:
        return []
    return [
        container
        for pid in pids
        for container in client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_PID}={pid}"})
    ]


def pytest_command(backend: str, image: str, test_file: str) -> list[str]:
    args = ["--cache-backend", backend] + (["--cache-image", image] if backend == "docker" else [])
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, test_file]


def killed_run(work: Path, backend: str, signame: str, moment: str, image: str, rng: random.Random) -> int:
    """Start the workload, kill it at the chosen moment, wait for it to end; returns its pid."""
    collected = work / "collected"
    env = dict(os.environ, TMPDIR=str(work / "tmp"), KILL_MATRIX_COLLECTED=str(collected), PYTHONPATH=str(ROOT))
    env.pop("PYTEST_XDIST_WORKER", None)
    process = subprocess.Popen(
        pytest_command(backend, image, "test_work.py"),
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if moment == "start":
            deadline = time.monotonic() + 60
            while not collected.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, START_WINDOW_S[backend]))
        else:
            time.sleep(rng.uniform(0, RUN_WINDOW_S[backend]))
        if process.poll() is None:
            process.send_signal(SIGNALS[signame])
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.pid


def follow_up_run(work: Path, backend: str, image: str) -> tuple[int, int]:
    """A normal run in the killed run's TMPDIR; (its pid, its exit status)."""
    follow = work / "follow"
    follow.mkdir()
    (follow / "test_next.py").write_text(FOLLOW_UP)
    env = dict(os.environ, TMPDIR=str(work / "tmp"), PYTHONPATH=str(ROOT))
    env.pop("PYTEST_XDIST_WORKER", None)
    process = subprocess.Popen(
        pytest_command(backend, image, "test_next.py"),
        cwd=follow,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process.pid, process.wait(timeout=180)


def one_run(backend: str, signame: str, moment: str, image: str, client: Any, rng: random.Random) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="cachecheck-killmatrix-") as name:
        work = Path(name)
        run_tmp = work / "tmp"
        run_tmp.mkdir()
        (work / "test_work.py").write_text(WORKLOAD)
        (work / "conftest.py").write_text(WORKLOAD_CONFTEST)
        killed = killed_run(work, backend, signame, moment, image, rng)
        follow_pid, follow_status = follow_up_run(work, backend, image)
        owners = [killed, follow_pid]
        deadline = time.monotonic() + CLEANUP_GRACE_S
        while True:
            servers = redis_servers_under(str(run_tmp))
            containers = containers_of(client, owners)
            dirs = list(run_tmp.glob("cachecheck-redis-*"))
            if (not servers and not containers and not dirs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        for container in containers:
            container.remove(force=True)
        return RunResult(backend, signame, moment, len(servers), len(containers), len(dirs), follow_status == 0)


def start_docker(image: str | None) -> tuple[Any, str]:
    """Start the engine and build the image with the project's script; (None, reason) when that fails."""
    command = ["bash", str(ROOT / "scripts" / "docker-redis-image.sh"), *([image] if image else [])]
    try:
        built = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{' '.join(command)}: {exc}"
    if built.returncode != 0 or not built.stdout.strip():
        last = (built.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{' '.join(command)} exited {built.returncode}: {last}"
    try:
        sys.path.insert(0, str(ROOT))
        from pytest_cachecheck.backends.docker import engine

        return engine(), built.stdout.strip().splitlines()[-1]
    except Exception as exc:  # the SDK missing, or the engine gone again
        return None, str(exc)


def run_matrix(cells: list[tuple[str, str]], options: argparse.Namespace, image: str, client: Any) -> list[RunResult]:
    """Every cell ``--runs`` times, ``--jobs`` at a time; moments alternate whole-run / backend start."""
    jobs = [
        (backend, signame, "start" if run % 2 else "any") for backend, signame in cells for run in range(options.runs)
    ]
    rng = random.Random(options.seed)
    seeds = [rng.randrange(2**32) for _ in jobs]
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        return list(
            pool.map(
                lambda job: one_run(job[0], job[1], job[2], image, client, random.Random(job[3])),
                [(*job, seed) for job, seed in zip(jobs, seeds)],
            )
        )


def print_table(backends: list[str], signals: list[str], results: list[RunResult], elapsed_s: float) -> int:
    """Runs with leftovers per cell (signal x backend), the detail per backend, and the total."""
    print(f"## Kill matrix: runs with leftovers after a follow-up run ({elapsed_s:.0f} s)\n")
    print("| signal | " + " | ".join(backends) + " |")
    print("|---|" + "---:|" * len(backends))
    for signame in signals:
        cells = []
        for backend in backends:
            rows = [r for r in results if r.backend == backend and r.signal == signame]
            cells.append(f"{sum(r.leftovers for r in rows)} of {len(rows)}")
        print(f"| {signame} | " + " | ".join(cells) + " |")
    print("\n| backend | runs | killed in start | servers left | containers left | dirs left | follow-up failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend in backends:
        rows = [r for r in results if r.backend == backend]
        print(
            f"| {backend} | {len(rows)} | {sum(r.moment == 'start' for r in rows)} | "
            f"{sum(r.servers_left for r in rows)} | {sum(r.containers_left for r in rows)} | "
            f"{sum(r.dirs_left for r in rows)} | {sum(not r.follow_up_ok for r in rows)} |"
        )
    leftovers = sum(r.leftovers for r in results)
    print(f"\nleftovers: {leftovers} of {len(results)} (goal 0)")
    return leftovers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="killed runs per backend and signal (default 50)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated subset of server,cluster,docker"
    )
    parser.add_argument("--signals", default=",".join(SIGNALS), help="comma-separated subset of SIGINT,SIGTERM,SIGKILL")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    parser.add_argument("--cache-image", default=None, help="docker image tag to build/use (default: the script's)")
    options = parser.parse_args()
    backends = [name for name in options.backends.split(",") if name]
    signals = [name for name in options.signals.split(",") if name]
    if set(backends) - set(BACKENDS) or not backends:
        parser.error(f"--backends: expected a non-empty subset of {','.join(BACKENDS)}, got {options.backends!r}")
    if set(signals) - set(SIGNALS) or not signals:
        parser.error(f"--signals: expected a non-empty subset of {','.join(SIGNALS)}, got {options.signals!r}")
    if options.runs < 1 or options.jobs < 1:
        parser.error("--runs and --jobs: expected positive integers")
    client, image = None, ""
    if "docker" in backends:
        client, image = start_docker(options.cache_image)
        if client is None:
            print(f"docker: cannot be started ({image}); running the other backends only\n")
            backends.remove("docker")
    if not backends:
        return 1
    started = time.monotonic()
    results = run_matrix([(b, s) for b in backends for s in signals], options, image, client)
    return 1 if print_table(backends, signals, results, time.monotonic() - started) else 0


if __name__ == "__main__":
    sys.exit(main())
