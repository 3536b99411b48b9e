"""``docker`` backend: one Redis container per pytest (xdist worker) process, never left behind.

Three layers make sure no container outlives its run:

* normal end, failure, Ctrl-C and SIGTERM: ``stop()`` removes every container labelled
  with this run, also one whose creation the signal interrupted;
* SIGKILL of pytest (or a crashed xdist worker), or a signal while the engine was still
  creating a container: a tiny *reaper* process, started in its own session before the
  container, holds the read end of a pipe whose write end only pytest has; unless pytest
  wrote "all clean" before closing it, the reaper removes that owner's containers for
  some seconds (one still being created appears late);
* anything still left (the reaper killed too, a reboot): every container carries labels
  (``pytest-cachecheck=1``, run id, owner host, pid and process start time), and each
  start removes containers whose owner process is gone.

Run as ``python -m pytest_cachecheck.backends.docker OWNER_PID RUN_ID`` it is that reaper.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import redis
import redis.asyncio

from ..own_commands import unobserved
from ..text import one_line
from ..worker_id import worker_index
from .base import (
    ASYNC_POOL_SIZE,
    BackendError,
    ServerInfo,
    admin_client,
    free_port,
    ping,
    process_alive,
    process_started,
)

LABEL = "pytest-cachecheck"
LABEL_RUN = "pytest-cachecheck.run"
LABEL_HOST = "pytest-cachecheck.owner-host"
LABEL_PID = "pytest-cachecheck.owner-pid"
LABEL_STARTED = "pytest-cachecheck.owner-started"
REDIS_PORT = "6379/tcp"
BUILD_HINT = "bash scripts/docker-redis-image.sh"
_READY_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 5
_ALL_CLEAN = b"all clean"
_REAP_WINDOW_S = 20.0
_REAP_POLL_S = 0.25


def owner_alive(labels: dict[str, str]) -> bool:
    """Is the process that started this container still running? Other hosts' containers count as alive."""
    if labels.get(LABEL_HOST) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return True
    return process_alive(pid, labels.get(LABEL_STARTED, ""))


def _docker_module() -> Any:
    try:
        import docker
    except ImportError:
        raise BackendError(
            "--cache-backend docker needs the docker SDK: pip install 'pytest-cachecheck[docker]'"
        ) from None
    return docker


def engine() -> Any:
    """A client of the local Docker engine, or a one-line ``BackendError`` saying how to get one."""
    docker = _docker_module()
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # the SDK raises DockerException, requests' and socket errors alike
        reason = " ".join(str(exc).split())
        raise BackendError(
            f"--cache-backend docker: no Docker engine answers at {where} ({reason}); start dockerd "
            f"(`{BUILD_HINT}` starts one and builds a local image) or use --cache-backend server"
        ) from None
    return client


def sweep_leftovers(client: Any) -> int:
    """Remove containers of ours whose owner process is gone (a run killed by SIGKILL); returns how many."""
    removed = 0
    leftovers = client.containers.list(
        all=True, ignore_removed=True, filters={"label": [f"{LABEL}=1", f"{LABEL_HOST}={socket.gethostname()}"]}
    )
    for container in leftovers:
        if owner_alive(container.labels):
            continue
        try:
            container.remove(force=True)
            removed += 1
        except Exception:  # removed meanwhile by its reaper or a concurrent sweep
            continue
    return removed


def owned(client: Any, owner_pid: int, run_id: str) -> list[Any]:
    """Every container (any state) this owner started in this run."""
    filters = {"label": [f"{LABEL}=1", f"{LABEL_PID}={owner_pid}", f"{LABEL_RUN}={run_id}"]}
    return list(client.containers.list(all=True, ignore_removed=True, filters=filters))


def remove_owned(client: Any, owner_pid: int, run_id: str) -> int:
    """Remove every container this owner started in this run; returns how many."""
    removed = 0
    for container in owned(client, owner_pid, run_id):
        try:
            container.remove(force=True)
            removed += 1
        except Exception:
            continue
    return removed


def _engine_says(exc: Exception) -> str:
    """The engine's own explanation when there is one (``invalid reference format``), else the error, on one line."""
    explanation = getattr(exc, "explanation", None)
    return " ".join(str(explanation or exc).split())


class DockerBackend:
    """A container from ``--cache-image`` with its port published on a free loopback port."""

    name = "docker"

    def __init__(self, image: str) -> None:
        self.image = image
        self.run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
        self.container: Any = None
        self.port = 0
        self._creating = False
        self._client: Any = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._admin: redis.Redis | None = None
        self._info: ServerInfo | None = None

    # -- start
    def start(self) -> ServerInfo:
        if self._info is not None:
            return self._info
        self._client = engine()
        sweep_leftovers(self._client)
        self._ensure_image()
        self._start_reaper()
        try:
            self._run_container()
            self._wait_ready()
            self._admin = admin_client("127.0.0.1", self.port)
            with unobserved():
                version = str(self._admin.info("server").get("redis_version", "unknown"))
        except BaseException:
            self.stop()
            raise
        self._info = ServerInfo(self.name, f"redis://127.0.0.1:{self.port}/0", "127.0.0.1", self.port, version)
        return self._info

    def _ensure_image(self) -> None:
        """Local image, else a pull; a malformed reference (``'Bad Name'``) is named as such, not pulled."""
        docker = _docker_module()
        try:
            self._client.images.get(self.image)
            return
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.APIError, docker.errors.NullResource) as exc:
            if isinstance(exc, docker.errors.APIError) and not exc.is_client_error():
                raise BackendError(
                    f"--cache-image {self.image!r}: the engine cannot look it up ({_engine_says(exc)})"
                ) from None
            raise BackendError(
                f"--cache-image {self.image!r}: not a valid image reference ({_engine_says(exc)}); expected "
                "[REGISTRY/]NAME[:TAG] in lower case without spaces, e.g. redis:7 or cachecheck/redis:local"
            ) from None
        try:
            self._client.images.pull(self.image)
        except Exception as exc:
            raise BackendError(
                f"--cache-image {self.image!r}: image not found locally and the pull failed ({_engine_says(exc)}); "
                f"pull it (docker pull {self.image}) or build one from this machine's redis-server with "
                f"`{BUILD_HINT}` and pass --cache-image cachecheck/redis:local"
            ) from None

    def _start_reaper(self) -> None:
        """Before any container exists: whatever kills pytest from now on, the reaper cleans up."""
        if self._reaper is not None:
            return
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", __name__, str(os.getpid()), self.run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # out of pytest's process group: Ctrl-C and group kills spare it
        )

    def _labels(self) -> dict[str, str]:
        pid = os.getpid()
        return {
            LABEL: "1",
            LABEL_RUN: self.run_id,
            LABEL_HOST: socket.gethostname(),
            LABEL_PID: str(pid),
            LABEL_STARTED: process_started(pid),
        }

    def _run_container(self) -> None:
        """A fixed host port (not a random one) so that a real outage can restart it on the same port.

        ``_creating`` stays set from the request until the engine's answer is recorded: a signal
        in between means the engine may still be creating a container nobody holds, which only
        a search by this run's labels (now, and by the reaper after pytest is gone) can find.
        """
        docker = _docker_module()
        command = ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
        for attempt in range(3):
            self.port = free_port()
            self._creating = True
            try:
                self.container = self._client.containers.run(
                    self.image,
                    command=command,
                    detach=True,
                    labels=self._labels(),
                    name=f"cachecheck-{self.run_id[:12]}-gw{worker_index()}-{uuid.uuid4().hex[:6]}",
                    ports={REDIS_PORT: ("127.0.0.1", self.port)},
                )
                self._creating = False
                return
            except docker.errors.APIError as exc:
                self._creating = False  # the engine answered: nothing is still being created
                taken = "already allocated" in str(exc) or "address already in use" in str(exc)
                if not taken or attempt == 2:
                    raise BackendError(
                        f"--cache-image {self.image!r}: cannot start a container ({_engine_says(exc)})"
                    ) from None
                remove_owned(self._client, os.getpid(), self.run_id)

    def _wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while time.monotonic() < deadline:
            if ping("127.0.0.1", self.port, timeout=0.5):
                return
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        logs = one_line(self.container.logs(tail=10).decode(errors="replace"), keep_end=True)
        raise BackendError(
            f"--cache-image {self.image!r}: redis-server in container {self.container.short_id} "
            f"({self.container.status}) did not answer PING on 127.0.0.1:{self.port} within {timeout:g} s; "
            f"its log: {logs}"
        )

    # -- per test
    def url_for_test(self) -> str:
        return self.start().url

    def client(self, *, asyncio: bool = False) -> Any:
        self.start()
        if asyncio:
            return redis.asyncio.Redis(host="127.0.0.1", port=self.port, max_connections=ASYNC_POOL_SIZE)
        return redis.Redis(host="127.0.0.1", port=self.port)

    def reset(self) -> None:
        """The container is ours: FLUSHALL on one kept-open connection."""
        if self._admin is not None:
            with unobserved():
                self._admin.flushall()

    # -- real outages (``cache_faults.outage(real=True)``)
    def stop_server(self, mode: str) -> None:
        """``hang``: freeze the container (like SIGSTOP). ``stop``: save the data, stop the container."""
        if mode == "hang":
            self.container.pause()
            return
        if self._admin is not None:
            with unobserved():
                self._admin.save()
        self.container.stop(timeout=_STOP_TIMEOUT_S)

    def restore_server(self, mode: str) -> None:
        """Back on the same port with the same data; returns once it answers PING."""
        if mode == "hang":
            self.container.unpause()
        else:
            self.container.start()
        self._wait_ready()

    # -- end
    def stop(self) -> None:
        """Remove every container of this run, then let the reaper go; idempotent, safe from a signal handler.

        Removal goes by this run's labels, not only by the container we hold: a signal during
        ``containers.run`` leaves one that was created (or started) but never handed back.
        The reaper hears "all clean" only when that search came back empty and no creation
        was in flight; otherwise it keeps searching after pytest is gone.
        """
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        container, self.container = self.container, None
        clean = not self._creating
        if container is not None or self._creating:
            clean = self._remove_run_containers(container) and clean
        reaper, self._reaper = self._reaper, None
        if reaper is not None and reaper.stdin is not None:
            try:
                if clean:
                    reaper.stdin.write(_ALL_CLEAN)
                reaper.stdin.close()
                if clean:
                    reaper.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                if clean:
                    reaper.kill()
                    reaper.wait()
        self._info = None

    def _remove_run_containers(self, container: Any) -> bool:
        """Remove ours by label (the held one first); True when none is left."""
        try:
            if container is not None:
                container.remove(force=True)
        except Exception:  # already gone (reaper, sweep), or the engine went away: the label search decides
            pass
        try:
            remove_owned(self._client, os.getpid(), self.run_id)
            return not owned(self._client, os.getpid(), self.run_id)
        except Exception:  # no answer from the engine: the reaper must go on searching
            return False


def reap(owner_pid: int, run_id: str) -> None:
    """Wait for the owner to end (EOF on stdin); unless it said all is clean, remove its containers.

    Repeatedly for ``_REAP_WINDOW_S``: a container whose creation was under way when the
    owner died appears only once the engine has finished creating it, which on a loaded
    machine takes seconds. What appears even later is removed by the next run's sweep.
    """
    if sys.stdin.buffer.read() == _ALL_CLEAN:
        return
    try:
        client = engine()
    except BackendError:
        return
    deadline = time.monotonic() + _REAP_WINDOW_S
    while True:
        try:
            remove_owned(client, owner_pid, run_id)
        except Exception:  # the engine hiccuped: try again until the window closes
            pass
        if time.monotonic() > deadline:
            return
        time.sleep(_REAP_POLL_S)


if __name__ == "__main__":
    reap(int(sys.argv[1]), sys.argv[2])
