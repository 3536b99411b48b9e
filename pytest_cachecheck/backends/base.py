"""The Backend protocol every isolated-Redis provider implements, and what they share."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class BackendError(Exception):
    """A backend could not give the test an isolated Redis; the message is one line for the user."""


# redis-py's asyncio pool refuses a connection past its size (MaxConnectionsError; 100 by default
# in redis-py 8) where the sync pool has no practical limit: a test's 200 concurrent tasks on
# ``cache_redis_async`` must not fail for a limit the application did not set.
ASYNC_POOL_SIZE = 2**31 - 1


@dataclass(frozen=True)
class ServerInfo:
    """Where the isolated Redis is. ``port`` is 0 for unix-socket servers."""

    backend: str
    url: str
    host: str
    port: int
    version: str


class Backend(Protocol):
    """Start once per session (lazily), hand each test its database, clean it, stop at the end."""

    name: str

    def start(self) -> ServerInfo:
        """Start (or connect to) the server; idempotent."""

    def url_for_test(self) -> str:
        """URL of the database tests use, for apps that build their own clients."""

    def client(self, *, asyncio: bool = False) -> Any:
        """A new ``redis.Redis`` (or asyncio / cluster) client on the tests' database, bytes replies."""

    def reset(self) -> None:
        """Leave the tests' database as it was before the test (a backend that shares a server
        deletes only what its write journal saw the run write)."""

    def stop(self) -> None:
        """Stop what ``start`` started; idempotent, also called at exit and on signals."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the caller retries if it is taken meanwhile)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ping(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a Redis answers PING on host:port (raw socket: no client state involved)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-LOADING"))
    except OSError:
        return False


def admin_client(host: str, port: int) -> redis.Redis:
    """The backend's own kept-open connection (flushes, ``INFO``), reopened once if the server dropped it.

    A real outage (``cache_faults.outage(real=True, mode="stop")``) restarts the server under
    it. redis-py 6 and later retry a dead connection by default, 5.x does not: without the
    explicit retry, the next test's ``FLUSHALL`` on 5.x fails with "Connection closed by server".
    """
    return redis.Redis(
        host=host,
        port=port,
        single_connection_client=True,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError],
    )


def _stat(pid: int) -> list[str]:
    """Fields of ``/proc/PID/stat`` after the command name (state first); [] when unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" when unknown): tells pid reuse apart."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def process_alive(pid: int, started: str) -> bool:
    """Does process ``pid``, started at ``started`` ("" when not recorded), still run on this host?

    The start time guards against pid reuse: a new process under a dead owner's pid is not the owner.
    A zombie (killed, not yet reaped: common where pid 1 does not reap orphans) is dead.
    When in doubt (no permission to signal it, /proc unreadable) it counts as alive.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields and fields[0] == "Z":
        return False
    return not started or not fields or fields[19] == started
