"""The state of one pytest run: settings, the backend (started lazily), the current test."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, Literal, overload

import pytest
import redis
import redis.asyncio

from .backends import Backend, BackendError, ServerInfo, make_backend
from .checks import CHECKS, CheckResult, TestContext
from .checks.arguments import MarkerError
from .checks.base import FAILED, INCONCLUSIVE, NOT_ENFORCED
from .checks.drive import never_awaited
from .checks.stampede import DATA_STAMPEDE, record_measurements
from .checks.stampede import METRIC as METRIC_FILLS
from .checks.stampede import SPEC as STAMPEDE_SPEC
from .config import Settings
from .interception import RawEvent
from .observe.expiry import OWNED_BACKENDS, read_keys_at_end, setup_keys, without_setup_keys
from .observe.memory import read_memory
from .observe.monitor import CacheMonitor
from .observe.server_stats import ServerCounters, ServerStatsProbe, difference
from .observe.summary import RunSummary, own_metrics
from .own_commands import unobserved
from .warning_types import InconclusiveCheckWarning, TimingNotEnforcedWarning

__all__ = ["CacheServer", "CachecheckRun", "InconclusiveCheckWarning", "TimingNotEnforcedWarning"]


@dataclass(frozen=True)
class CacheServer:
    """The running isolated Redis (``cache_server`` fixture)."""

    info: ServerInfo
    _backend: Backend

    backend = property(lambda self: self.info.backend)
    url = property(lambda self: self.info.url)
    host = property(lambda self: self.info.host)
    port = property(lambda self: self.info.port)
    version = property(lambda self: self.info.version)

    @overload
    def client(self, *, asyncio: Literal[False] = False) -> redis.Redis | redis.RedisCluster: ...
    @overload
    def client(self, *, asyncio: Literal[True]) -> redis.asyncio.Redis | redis.asyncio.RedisCluster: ...

    def client(self, *, asyncio: bool = False) -> Any:
        """A new client on the tests' database (bytes replies; cluster clients on cluster backends);
        not cleaned per test."""
        return self._backend.client(asyncio=asyncio)


def _probes_over(records: Sequence[RawEvent], context: TestContext) -> list[int]:
    """Durations of the test's baseline probes taken between its first and last judged command."""
    if not records or not context.monitor.baseline:
        return []
    first = min(record[0] for record in records)
    last = max(record[0] + record[1] for record in records)
    return [duration for start, duration in context.monitor.baseline if first <= start <= last]


def _registered_markers(config: pytest.Config) -> set[str]:
    """Marker names registered in ini files or by ``config.addinivalue_line("markers", ...)``, as pytest's
    ``--strict-markers`` reads them."""
    return {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}


class CachecheckRun:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backend: Backend | None = None
        self._server: CacheServer | None = None
        self._start_error: str | None = None
        self.context: TestContext | None = None
        self.bound_markers: list[tuple[str, dict[str, Any]]] = []
        self.server_stats: ServerStatsProbe | None = None
        self._counters_before: ServerCounters | None = None
        self._body_start_ns = 0
        shown_in_files = bool(settings.target_list or settings.reports)
        self.summary = RunSummary(
            (target.pattern for target in settings.target_list), track_ttl=shown_in_files, track_memory=shown_in_files
        )
        # A max_fills target judges every test's cold bursts, not only those of tests with the marker.
        self._judges_fills = settings.monitor and any(
            name == METRIC_FILLS for target in settings.target_list for name, _ in target.limits
        )
        self._summary_read: bool | None = True if shown_in_files else None  # None: decided at the first test

    # -- backend
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = make_backend(self.settings)
        return self._backend

    def server(self) -> CacheServer:
        """Start the backend on first use; a failure is reported once and then repeated, not retried."""
        if self._start_error is not None:
            pytest.fail(self._start_error, pytrace=False)
        if self._server is None:
            try:
                self._server = CacheServer(self.backend.start(), self.backend)
                self.server_stats = ServerStatsProbe(self.backend)
            except BackendError as exc:
                self._start_error = f"cache backend {self.settings.backend!r}: {exc}"
            if self._start_error is not None:  # outside ``except``: printed once, no "During handling of..."
                pytest.fail(self._start_error, pytrace=False)
        assert self._server is not None
        return self._server

    def reset_database(self) -> None:
        """Clean the test's database (the backend knows how: flush its own server, or delete what it journaled)."""
        self.backend.reset()

    def close(self) -> None:
        if self.server_stats is not None:
            self.server_stats.close()
        if self._backend is not None:
            self._backend.stop()

    # -- per test
    def begin_test(self, item: pytest.Item) -> None:
        monitor = CacheMonitor()
        self.context = TestContext(item.nodeid, monitor)
        if self.settings.monitor:
            monitor.activate()
        self.bound_markers = []

    def end_test(self, item: pytest.Item) -> TestContext | None:
        context, self.context = self.context, None
        if context is not None:
            context.monitor.deactivate()
            self._fold_into_summary(item, context)
        return context

    def _fold_into_summary(self, item: pytest.Item, context: TestContext) -> None:
        """Add the finished test to the run-wide summary; its cache metrics go to JUnit via ``user_properties``."""
        if self._server is not None:
            self.summary.server_version = self._server.version
        checks = [
            {"marker": result.marker, "status": result.status, "message": result.message, "metrics": result.metrics}
            for result in context.results
        ]
        records = context.monitor.records
        if self._summary_is_read(item, context):
            at_end = context.data.get("keys_at_end") or [None]
            memory = context.data.get("memory_at_end") or [None]
            metrics = self.summary.add_records(
                item.nodeid,
                records,
                context.measurements,
                checks,
                at_end[-1],
                _probes_over(records, context),
                memory_at_end=memory[-1],
            )
        else:
            metrics = own_metrics(records)
        if metrics["commands"]:
            for name in ("hit_rate", "reads", "commands"):
                item.user_properties.append((f"cachecheck.{name}", metrics[name]))

    def _summary_is_read(self, item: pytest.Item, context: TestContext) -> bool:
        """Whether anything shows the run-wide summary: targets, report files, or the terminal
        section that cache markers bring. Without them a test costs only its own metrics.

        Markers are looked up once in the collected tests; one added while a test runs
        (``request.node.add_marker``) turns the summary on from that test on.
        """
        if self._summary_read is None:
            self._summary_read = any(
                mark.name.startswith("cache_") for collected in item.session.items for mark in collected.iter_markers()
            )
        if context.results:
            self._summary_read = True
        return self._summary_read

    def begin_call(self) -> None:
        """Just before the test body (fixtures have started the backend, if the test uses it):
        the backend for checks that read the server, and its counters for server-side deltas."""
        context = self.context
        self._body_start_ns = perf_counter_ns()
        if context is not None and self._server is not None:
            context.backend = self._backend
            if self.server_stats is not None:
                self._counters_before = self.server_stats.counters()

    def end_call(self) -> None:
        """Just after the test body (before checks and fixture teardown): ``data["server_stats"]``,
        then, on a backend the plugin owns, ``data["keys_at_end"]`` when a TTL verdict reads it, and
        ``data["memory_at_end"]`` when a memory verdict or report does (``observe.memory``)."""
        before, self._counters_before = self._counters_before, None
        context = self.context
        if context is None:
            return
        if before is not None and self.server_stats is not None:
            after = self.server_stats.counters()
            if after is not None:
                context.data["server_stats"].append(difference(before, after))
        judged = context.data.get(DATA_STAMPEDE) or any(name == STAMPEDE_SPEC.name for name, _ in self.bound_markers)
        if self._judges_fills and not judged:  # the marker and cache_bench.stampede measure it themselves
            context.measurements.extend(record_measurements(context.monitor.events))
        if context.backend is None:
            return
        owned = context.backend.name in OWNED_BACKENDS
        reads_ttl, reads_memory = owned and self._reads_ttl(), self._reads_memory()
        if not reads_ttl and not reads_memory:
            return
        monitor = context.monitor
        client = context.backend.client()
        try:
            snapshot = read_keys_at_end(client, self._body_start_ns) if reads_ttl else None
            memory = None
            if reads_memory:
                memory = read_memory(
                    client,
                    None if owned else sorted(monitor.written_keys()),
                    estimated=context.backend.name == "fake",
                    leave_out=setup_keys(monitor.warmup_events, monitor.events),
                )
        finally:
            with unobserved():
                client.close()
        if snapshot is not None:
            context.data["keys_at_end"].append(without_setup_keys(snapshot, monitor.warmup_events, monitor.events))
        if memory is not None:
            context.data["memory_at_end"].append(memory)

    def _reads_memory(self) -> bool:
        """A ``cache_size(memory_kb=...)`` marker on this test, or the run-wide memory (targets, reports)."""
        return self.summary.track_memory or any(
            name == "cache_size" and params.get("memory_kb") is not None for name, params in self.bound_markers
        )

    def _reads_ttl(self) -> bool:
        """A ``cache_ttl`` marker on this test, or the run-wide ``keys_without_ttl`` (targets, reports)."""
        return self.summary.track_ttl or any(name == "cache_ttl" for name, _ in self.bound_markers)

    def validate_markers(self, item: pytest.Item) -> None:
        """Bind every cache marker's arguments; a mistake fails the test with one line."""
        for mark in item.iter_markers():
            if not mark.name.startswith("cache_"):
                continue
            check = CHECKS.get(mark.name)
            if check is None and mark.name in _registered_markers(item.config):
                continue  # the user's own marker that happens to start with cache_
            if check is None:
                close = difflib.get_close_matches(mark.name, CHECKS, n=1)
                hint = f"did you mean @pytest.mark.{close[0]}?" if close else f"known: {', '.join(sorted(CHECKS))}"
                pytest.fail(f"@pytest.mark.{mark.name} is not a cachecheck marker; {hint}", pytrace=False)
            if check.needs_monitor and not self.settings.monitor:
                pytest.fail(
                    f"@pytest.mark.{mark.name} needs observed commands, but the run has --cache-no-monitor; "
                    "drop that option to run this check",
                    pytrace=False,
                )
            try:
                self.bound_markers.append((mark.name, check.spec.bind(mark.args, mark.kwargs)))
                continue
            except MarkerError as exc:
                problem = str(exc)
            pytest.fail(problem, pytrace=False)  # outside ``except``: no "During handling of..." copy

    def evaluate_checks(self, item: pytest.Item) -> list[CheckResult]:
        """Run every cache marker's check on what this test recorded; a fixture method's coroutine
        that the test never awaited fails it too (it measured nothing)."""
        forgotten = [
            CheckResult(
                api,
                FAILED,
                f"{api}(...) returned a coroutine that was never awaited, so it measured nothing: in an async "
                f"test write `await {api}(...)`, in a sync test `asyncio.run({api}(...))`",
            )
            for api in never_awaited()
        ]
        context = self.context
        if context is None:
            return forgotten
        results = [CHECKS[name].evaluate(context, params) for name, params in self.bound_markers]
        if not self.settings.enforce_timing:
            results = [
                dataclasses.replace(result, status=NOT_ENFORCED) if result.failed and result.timing else result
                for result in results
            ]
        context.results = results
        for result in results:
            for metric, value in result.metrics.items():
                item.user_properties.append((f"cachecheck.{result.marker}.{metric}", value))
            if result.status == INCONCLUSIVE:
                item.warn(InconclusiveCheckWarning(result.message))
            if result.status == NOT_ENFORCED:
                item.warn(TimingNotEnforcedWarning(f"{result.message} [not enforced: --cache-timing report]"))
        return forgotten + [result for result in results if result.status == FAILED]
