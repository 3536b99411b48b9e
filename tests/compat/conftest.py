"""Compatibility tests run against a real ``redis-server``: the server's own counters are the reference.

When the run already uses ``--cache-backend server`` its server is reused; otherwise (the
default ``fake`` backend) this directory starts its own with the same ``ServerBackend``
class, one per process (so one per xdist worker), so ``python -m pytest -n 2`` from the
repository root runs these tests on a real server either way. The plugin's observation
(``cache_monitor``) does not depend on the backend: it sees every redis-py client.
"""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from pytest_cachecheck.backends.server import ServerBackend
from pytest_cachecheck.observe.instrument import unobserved


@dataclass
class ServerDelta:
    """What the server counted while a block ran: keyspace hits/misses and calls per command."""

    hits: int = 0
    misses: int = 0
    calls: Counter[str] = field(default_factory=Counter)


class RealRedis:
    """A real server for one test: its URL, and its ``INFO`` counters read behind the observer's back."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.url = f"redis://{host}:{port}/0"
        self._admin = redis.Redis(host=host, port=port, single_connection_client=True)

    def _counters(self) -> tuple[int, int, Counter[str]]:
        with unobserved():
            stats = self._admin.info("stats")
            commandstats = self._admin.info("commandstats")
        calls = Counter({name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in commandstats.items()})
        return int(stats["keyspace_hits"]), int(stats["keyspace_misses"]), calls

    @contextlib.contextmanager
    def counting(self) -> Iterator[ServerDelta]:
        """Fill a ``ServerDelta`` with the server-side counts of the commands issued inside the block."""
        delta = ServerDelta()
        hits, misses, calls = self._counters()
        yield delta
        after_hits, after_misses, after_calls = self._counters()
        delta.hits, delta.misses = after_hits - hits, after_misses - misses
        delta.calls = after_calls - calls
        delta.calls.pop("info", None)  # our own snapshots

    def flush(self) -> None:
        with unobserved():
            self._admin.flushall()

    def close(self) -> None:
        self._admin.close()


@pytest.fixture(scope="session")
def _real_server_address(request: pytest.FixtureRequest, cache_server: object) -> Iterator[tuple[str, int]]:
    if getattr(cache_server, "backend", None) == "server":
        yield cache_server.host, cache_server.port  # type: ignore[attr-defined]
        return
    binary = request.config.getoption("cache_server_bin") or request.config.getini("cachecheck_server_bin")
    binary = binary or "redis-server"
    if shutil.which(binary) is None:
        pytest.skip(f"compat tests need a real redis-server: {binary!r} is not on PATH (apt-get install redis-server)")
    backend = ServerBackend(binary)
    info = backend.start()
    yield info.host, info.port
    backend.stop()


@pytest.fixture
def real_redis(_real_server_address: tuple[str, int]) -> Iterator[RealRedis]:
    """An empty real server for this test, flushed afterwards (it is one this run started)."""
    server = RealRedis(*_real_server_address)
    server.flush()
    yield server
    server.flush()
    server.close()


#: The fixed workload every library gets: 200 reads of 20 keys; the first 20 are all distinct
#: (7 and 20 are coprime), so a read-through cache sees exactly 20 misses and 180 hits.
WORKLOAD = [(index * 7) % 20 for index in range(200)]
DISTINCT = 20


@pytest.fixture
def workload() -> list[int]:
    return list(WORKLOAD)


@pytest.fixture(params=["server", "fake"])
def either_redis(request: pytest.FixtureRequest) -> Iterator[RealRedis]:
    """The real server, then the fake backend's server over TCP (``cache_url``): its ``INFO`` counters
    come from the fake server's own view of what it executed, so the same comparison holds on it."""
    if request.param == "server":
        yield request.getfixturevalue("real_redis")
        return
    cache_server = request.getfixturevalue("cache_server")
    if getattr(cache_server, "backend", None) != "fake":
        pytest.skip("the fake row runs when the run's backend is fake (the default)")
    request.getfixturevalue("cache_url")  # an empty database, cleaned after the test
    server = RealRedis(cache_server.host, cache_server.port)
    yield server
    server.close()
