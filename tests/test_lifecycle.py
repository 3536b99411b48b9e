"""Nothing of ours outlives a run: pytest killed by SIGINT/SIGTERM/SIGKILL mid-test, or an xdist worker crash.

Each run gets its own TMPDIR, so every redis-server it starts works in a directory
under it; containers are found by their owner-pid label.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docker_support import docker_engine_or_skip, docker_image_or_skip

from pytest_cachecheck.backends.docker import LABEL_PID

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

HANGING_TEST = """
import json, os, time

def test_hangs(cache_redis, cache_server):
    cache_redis.set("alive", 1)
    with open(os.environ["CACHECHECK_READY_FILE"], "w") as out:
        json.dump({"pid": os.getpid(), "port": cache_server.port}, out)
    time.sleep(120)
"""

CRASHING_TEST = """
import json, os, signal

def test_worker_dies(cache_redis, cache_server):
    cache_redis.set("alive", 1)
    with open(os.environ["CACHECHECK_READY_FILE"], "w") as out:
        json.dump({"pid": os.getpid(), "port": cache_server.port}, out)
    os.kill(os.getpid(), signal.SIGKILL)

def test_other(cache_redis):
    cache_redis.ping()
"""


def our_servers(marker: str) -> list[int]:
    """Pids of live (not zombie) redis-servers working in this run's temp dir (redis-server rewrites its
    command line, but it chdirs to its ``--dir``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "redis-server":
                continue
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(marker) and state != "Z":
            pids.append(int(entry.name))
    return pids


def our_containers(client: object, owner_pid: int) -> list[object]:
    if client is None:
        return []
    return client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_PID}={owner_pid}"})  # type: ignore[attr-defined]


def eventually_clean(marker: str, client: object, owners: list[int], within: float) -> tuple[list[int], list[object]]:
    deadline = time.monotonic() + within
    while True:
        servers = our_servers(marker)
        containers = [c for pid in owners for c in our_containers(client, pid)]
        if (not servers and not containers) or time.monotonic() > deadline:
            return servers, containers
        time.sleep(0.1)


def start_run(tmp_path: Path, test_source: str, backend_args: list[str], extra: list[str] = ()) -> subprocess.Popen:
    (tmp_path / "test_run.py").write_text(test_source)
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(run_tmp), CACHECHECK_READY_FILE=str(tmp_path / "ready.json"))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_TESTRUNUID", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *backend_args, *extra, "test_run.py"]
    # SIGINT back to its default: a suite started in the background by a non-interactive shell
    # (a CI runner, nox in the background) inherits it ignored, and the inner run would never see Ctrl-C
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_ready(process: subprocess.Popen, ready: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not ready.exists() or not ready.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"inner run never got ready: {process.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.05)
    time.sleep(0.05)
    return json.loads(ready.read_text())


def backend_args(backend: str) -> tuple[list[str], object]:
    if backend == "docker":
        image = docker_image_or_skip()
        return ["--cache-backend", "docker", "--cache-image", image], docker_engine_or_skip()
    return ["--cache-backend", backend], None


@pytest.mark.parametrize(
    "backend, signum",
    [
        ("server", signal.SIGINT),
        ("server", signal.SIGTERM),
        ("server", signal.SIGKILL),
        ("docker", signal.SIGINT),
        ("docker", signal.SIGTERM),
        ("docker", signal.SIGKILL),
        ("cluster", signal.SIGTERM),
        ("cluster", signal.SIGKILL),
    ],
    ids=lambda value: value.name if isinstance(value, signal.Signals) else value,
)
def test_killed_run_leaves_nothing(tmp_path: Path, backend: str, signum: signal.Signals) -> None:
    args, client = backend_args(backend)
    process = start_run(tmp_path, HANGING_TEST, args)
    marker = str(tmp_path / "tmp")
    try:
        ready = wait_ready(process, tmp_path / "ready.json")
        assert ready["pid"] == process.pid
        if backend != "docker":
            assert our_servers(marker), "the inner run's redis-server should be running before the kill"
        else:
            assert our_containers(client, process.pid)
        process.send_signal(signum)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    servers, containers = eventually_clean(marker, client, [process.pid], within=15)
    assert servers == [] and containers == []


@pytest.mark.parametrize("backend", ["server", "docker"])
def test_crashed_xdist_worker_leaves_nothing(tmp_path: Path, backend: str) -> None:
    args, client = backend_args(backend)
    process = start_run(tmp_path, CRASHING_TEST, args, ["-n", "1"])
    output = process.communicate(timeout=120)[0].decode()
    assert "worker 'gw0' crashed" in output or "crashed while running" in output, output[-2000:]
    crashed = json.loads((tmp_path / "ready.json").read_text())
    servers, containers = eventually_clean(str(tmp_path / "tmp"), client, [crashed["pid"]], within=15)
    assert servers == [] and containers == []
