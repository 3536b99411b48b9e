"""``cache_faults``: make Redis fail on purpose, so a test can prove the app degrades gracefully.

Client-layer faults (every backend) use ``observe.instrument.intercepting``: the
interceptor runs inside the timed region of every observed command, so an injected
delay shows up in observed latency like a slow server's, and an injected error is
recorded as an ``error`` event. Real outages (``real=True``) act on the server
process itself: ``hang`` freezes it (SIGSTOP / ``docker pause``: connections hang
until the client's timeout), ``stop`` stops it (connections refused); both bring it
back on the same port with the same data when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import redis

from .backends.base import Backend, BackendError
from .backends.process import RedisProcess
from .checks.arguments import is_whole_number, require_number
from .interception import Interceptor, intercepting
from .own_commands import unobserved

MODES = ("stop", "hang")


@dataclass
class FaultStats:
    """What a fault block did: commands it saw (pipelines count once) and how many it failed or delayed."""

    kind: str
    commands: int = 0
    injected: int = 0


class _Interceptor(Interceptor):
    """Shared plumbing: count, then ``act`` (sleep or raise) before the commands are sent."""

    def __init__(self, stats: FaultStats, act: Callable[[], float | None]) -> None:
        self.stats = stats
        self.act = act

    def _decide(self) -> float | None:
        __tracebackhide__ = True
        self.stats.commands += 1
        return self.act()

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True  # an injected outage reads test -> redis-py -> ConnectionError
        delay = self._decide()
        if delay:
            time.sleep(delay)

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        delay = self._decide()
        if delay:
            await asyncio.sleep(delay)


@runtime_checkable
class RealOutageBackend(Protocol):
    """A backend that can stop and restore its actual server (``docker``)."""

    def stop_server(self, mode: str) -> None: ...

    def restore_server(self, mode: str) -> None: ...


class CacheFaults:
    """The ``cache_faults`` fixture: ``outage()``, ``latency(ms)``, ``errors(rate, seed)``."""

    def __init__(self, backend: Callable[[], Backend], monitored: bool) -> None:
        self._backend = backend
        self._monitored = monitored

    def _require_monitor(self, where: str) -> None:
        __tracebackhide__ = True
        if not self._monitored:
            raise RuntimeError(
                f"cache_faults.{where} injects faults at the client layer, which --cache-no-monitor switches off; "
                "drop that option (or use outage(real=True) on the server/docker backend)"
            )

    @contextlib.contextmanager
    def outage(self, *, real: bool = False, mode: str = "stop") -> Iterator[FaultStats]:
        """Redis is down inside the block: every command raises ``redis.ConnectionError``.

        ``real=True`` (``server`` and ``docker`` backends) stops the actual server instead;
        ``mode="stop"`` refuses connections, ``mode="hang"`` freezes it so that clients
        wait until their socket timeout. It comes back, same port, same data, afterwards.
        """
        __tracebackhide__ = True
        if mode not in MODES:
            raise ValueError(f"cache_faults.outage: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if real:
            with self._real_outage(mode) as stats:
                yield stats
            return
        self._require_monitor("outage()")
        stats = FaultStats("outage")

        def refuse() -> None:
            __tracebackhide__ = True
            stats.injected += 1
            raise redis.ConnectionError("cachecheck: injected outage (cache_faults.outage), Redis is down")

        with intercepting(_Interceptor(stats, refuse)):
            yield stats

    @contextlib.contextmanager
    def latency(self, ms: float) -> Iterator[FaultStats]:
        """Every command (every pipeline round trip) takes ``ms`` longer, counted in observed latency."""
        __tracebackhide__ = True
        delay = require_number("cache_faults.latency", "ms", ms, low=0) / 1000
        self._require_monitor("latency()")
        stats = FaultStats("latency")

        def slow_down() -> float:
            stats.injected += 1
            return delay

        with intercepting(_Interceptor(stats, slow_down)):
            yield stats

    @contextlib.contextmanager
    def errors(self, rate: float, seed: int | None = None) -> Iterator[FaultStats]:
        """A fraction ``rate`` of commands raise ``redis.ConnectionError``; the same ``seed`` fails the same ones."""
        __tracebackhide__ = True
        fraction = require_number("cache_faults.errors", "rate", rate, low=0, high=1)
        if seed is not None and not is_whole_number(seed):
            raise ValueError(f"cache_faults.errors: seed must be a whole number or None, got {seed!r}")
        self._require_monitor("errors()")
        stats = FaultStats("errors")
        chance = random.Random(seed).random

        def maybe_fail() -> None:
            __tracebackhide__ = True
            if chance() < fraction:
                stats.injected += 1
                raise redis.ConnectionError("cachecheck: injected error (cache_faults.errors)")

        with intercepting(_Interceptor(stats, maybe_fail)):
            yield stats

    @contextlib.contextmanager
    def _real_outage(self, mode: str) -> Iterator[FaultStats]:
        __tracebackhide__ = True
        backend = self._backend()
        stats = FaultStats(f"outage(real=True, mode={mode!r})")
        if isinstance(backend, RealOutageBackend):
            backend.stop_server(mode)
            try:
                yield stats
            finally:
                backend.restore_server(mode)
            return
        process = getattr(backend, "process", None)
        if not isinstance(process, RedisProcess):
            raise BackendError(
                f"cache_faults.outage(real=True) needs the server or docker backend, this run uses "
                f"{getattr(backend, 'name', '?')!r}; use outage() (client layer) or --cache-backend server"
            )
        outage = ProcessOutage(process, mode)
        outage.begin()
        try:
            yield stats
        finally:
            outage.end()


class ProcessOutage:
    """A real outage of a ``redis-server`` child: SIGSTOP/SIGCONT, or save, stop and relaunch on its port."""

    def __init__(self, process: RedisProcess, mode: str) -> None:
        self.process = process
        self.mode = mode

    def begin(self) -> None:
        pid = self.process.pid
        if pid is None:
            raise BackendError("cache_faults.outage(real=True): the server is not running")
        if self.mode == "hang":
            os.kill(pid, signal.SIGSTOP)
            return
        admin = redis.Redis(host=self.process.host, port=self.process.port, single_connection_client=True)
        try:
            with unobserved():
                admin.save()  # the server runs without persistence; this dump is what comes back
        finally:
            admin.close()
        self.process.stop(keep_files=True)

    def end(self) -> None:
        """The server answering again on the same port, with the data it had."""
        if self.mode == "hang":
            pid = self.process.pid
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
            return
        self.process.restart()
