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

from pytest_cachecheck.backends.base import process_started
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


def follow_up_run(tmp_path: Path, backend: str) -> subprocess.CompletedProcess:
    """A normal run in the same TMPDIR as the killed one, as the next CI job on the machine would be."""
    follow = tmp_path / "follow"
    follow.mkdir()
    (follow / "test_next.py").write_text("def test_next(cache_redis):\n    cache_redis.set('k', 1)\n")
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--cache-backend", backend]
    return subprocess.run(command, cwd=follow, env=env, capture_output=True, text=True, timeout=120)


def work_dirs(tmp_path: Path) -> list[str]:
    return sorted(path.name for path in (tmp_path / "tmp").glob("cachecheck-redis-*"))


@pytest.mark.parametrize("backend", ["server", "cluster"])
def test_next_run_removes_what_a_sigkilled_run_left(tmp_path: Path, backend: str) -> None:
    process = start_run(tmp_path, HANGING_TEST, ["--cache-backend", backend])
    try:
        wait_ready(process, tmp_path / "ready.json")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    left = work_dirs(tmp_path)
    assert len(left) == (3 if backend == "cluster" else 1), "SIGKILL leaves the work dirs: nothing can run"
    assert all(name.startswith(f"cachecheck-redis-{process.pid}-") for name in left)
    follow = follow_up_run(tmp_path, backend)
    assert follow.returncode == 0, follow.stdout[-2000:]
    assert work_dirs(tmp_path) == []
    assert our_servers(str(tmp_path / "tmp")) == []


def test_sweep_stops_a_dead_runs_server_and_never_touches_a_live_owners(tmp_path: Path) -> None:
    """Dirs by owner: dead (its redis-server still running, as without a parent-death signal), alive (this
    process), dead but its server.pid naming a process with another start time (pid reuse), unknown (old name)."""
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = os.getpid()

    def work_dir(name: str, server: subprocess.Popen, started: str | None = None) -> Path:
        directory = run_tmp / name
        directory.mkdir()
        (directory / "server.pid").write_text(f"{server.pid} {started or process_started(server.pid)}\n")
        return directory

    def redis_server(directory: Path) -> subprocess.Popen:
        """A real redis-server on a unix socket only (no port of anyone's taken), running when returned."""
        directory.mkdir()
        socket_path = directory / "redis.sock"
        command = [
            "redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--dir",
            str(directory),
        ]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not socket_path.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.poll() is None, "the stand-in redis-server did not start"
        return server

    servers = [redis_server(tmp_path / f"s{index}") for index in range(3)]
    try:
        orphan = work_dir(f"cachecheck-redis-{dead.pid}-{process_started(me)}-aaaaaaaa", servers[0])
        live = work_dir(f"cachecheck-redis-{me}-{process_started(me)}-bbbbbbbb", servers[1])
        reused = work_dir(f"cachecheck-redis-{dead.pid}-1-cccccccc", servers[2], started="1")
        unknown = run_tmp / "cachecheck-redis-dddddddd"
        unknown.mkdir()
        follow = follow_up_run(tmp_path, "server")
        assert follow.returncode == 0, follow.stdout[-2000:]
        assert servers[0].wait(timeout=10) == -signal.SIGKILL
        assert not orphan.exists() and not reused.exists()
        assert live.exists() and unknown.exists()
        assert servers[1].poll() is None and servers[2].poll() is None
    finally:
        for server in servers:
            server.kill()
            server.wait()
