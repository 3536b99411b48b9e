"""pytest hooks, options, markers and fixtures: glue between pytest and the other modules."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from . import config as config_module
from .backends.process import stop_all
from .backends.url import shown
from .checks import CHECKS
from .checks.consistency import CacheConsistency, marker_bound, terminal_progress
from .checks.invalidation import InvalidationProbe
from .checks.speedup import CacheBench
from .faults import CacheFaults
from .observe import instrument
from .observe.monitor import CacheMonitor
from .report import terminal
from .report.finish import RunReport, finish_run
from .runtime import CachecheckRun, CacheServer
from .workers import ControllerSide, WorkerSide, is_worker

RUN_KEY = pytest.StashKey[CachecheckRun]()
REPORT_KEY = pytest.StashKey[RunReport]()
WORKER_KEY = pytest.StashKey[WorkerSide]()


def pytest_addoption(parser: pytest.Parser) -> None:
    config_module.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for check in CHECKS.values():
        config.addinivalue_line("markers", f"{check.spec.signature()}: {check.spec.help}")
    run = CachecheckRun(config_module.settings_from_config(config))
    config.stash[RUN_KEY] = run
    if is_worker(config):
        config.stash[WORKER_KEY] = WorkerSide(run.summary)
        config.pluginmanager.register(config.stash[WORKER_KEY], "cachecheck-worker")
    else:
        config.pluginmanager.register(ControllerSide(run.summary), "cachecheck-controller")
    if run.settings.monitor:
        instrument.install()
    _stop_servers_on_sigterm(run)


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line: the backend in use (its server starts lazily, so no version yet)."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return None
    settings = run.settings
    where = f" {shown(settings.url)}" if settings.backend == "url" and settings.url else ""
    monitor = "" if settings.monitor else ", not observing (--cache-no-monitor)"
    return f"cachecheck: backend {settings.backend}{where}, timing {settings.timing}{monitor}"


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()
        if run.settings.monitor:
            instrument.uninstall()


def _stop_servers_on_sigterm(run: CachecheckRun) -> None:
    """SIGTERM kills Python without running ``atexit``: stop our servers, then die as asked."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        run.close()
        stop_all()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def _run(config: pytest.Config) -> CachecheckRun:
    return config.stash[RUN_KEY]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    run = _run(item.config)
    run.begin_test(item)
    result = yield
    run.validate_markers(item)  # after pytest's own set-up, so its teardown state stays whole
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _run(item.config).begin_call()
    try:
        result = yield
    finally:
        _run(item.config).end_call()
    failures = _run(item.config).evaluate_checks(item)
    if failures:
        pytest.fail("\n".join(failure.message for failure in failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        _run(item.config).end_test(item)


# ---------------------------------------------------------------- run-wide targets and reports


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """Before pytest's summary: targets and report files; after it: the verdict as the last lines."""
    config = session.config
    run = config.stash.get(RUN_KEY, None)
    worker = config.stash.get(WORKER_KEY, None)
    if worker is not None:
        worker.finish(config)
    elif run is not None:
        report = finish_run(run.summary, run.settings, config.invocation_params.dir)
        config.stash[REPORT_KEY] = report
        if report.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    result = yield
    finished = config.stash.get(REPORT_KEY, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if finished is not None and reporter is not None:
        crashes = finished.report["run"]["crashed_workers"] if finished.show else []
        terminal.write_verdict(reporter, finished.report["targets"], finished.problems, crashes)
    return result


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcome = config.stash.get(REPORT_KEY, None)
    if outcome is not None and outcome.show:
        terminal.write_section(terminalreporter, outcome.report, outcome.written, outcome.write_seconds)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cache_server(request: pytest.FixtureRequest) -> CacheServer:
    """The running isolated Redis: ``.backend``, ``.url``, ``.host``, ``.port``, ``.version``, ``.client()``."""
    return _run(request.config).server()


@pytest.fixture
def _cachecheck_database(request: pytest.FixtureRequest, cache_server: CacheServer) -> Iterator[None]:
    """Empty at start, cleaned after: what one test writes, the next never sees."""
    yield
    _run(request.config).reset_database()


@pytest.fixture
def cache_url(request: pytest.FixtureRequest, _cachecheck_database: None) -> str:
    """URL of this test's empty database, for apps that build their own clients."""
    return _run(request.config).backend.url_for_test()


@pytest.fixture
def cache_redis(
    request: pytest.FixtureRequest, _cachecheck_database: None
) -> Iterator[redis.Redis | redis.RedisCluster]:
    """A ``redis.Redis`` on this test's database (bytes replies); a ``redis.RedisCluster`` on cluster backends."""
    client = _run(request.config).backend.client()
    yield client
    client.close()


@pytest.fixture
def cache_redis_async(
    request: pytest.FixtureRequest, _cachecheck_database: None
) -> Iterator[redis.asyncio.Redis | redis.asyncio.RedisCluster]:
    """A ``redis.asyncio.Redis`` on this test's database (bytes replies); ``redis.asyncio.RedisCluster``
    on cluster backends."""
    client = _run(request.config).backend.client(asyncio=True)
    yield client
    try:
        asyncio.run(client.aclose())
    except (RuntimeError, OSError):
        pass  # its connections belonged to the test's (now closed) event loop


@pytest.fixture
def cache_monitor(request: pytest.FixtureRequest) -> CacheMonitor:
    """What the code under test did to Redis during this test."""
    run = _run(request.config)
    if not run.settings.monitor or run.context is None:
        pytest.fail("cache_monitor needs observed commands, but the run has --cache-no-monitor", pytrace=False)
    return run.context.monitor


@pytest.fixture
def cache_invalidation(request: pytest.FixtureRequest, _cachecheck_database: None) -> InvalidationProbe:
    """Invalidation visibility latency (``measure``) and O(1) scaling (``scaling``)."""
    run = _run(request.config)
    assert run.context is not None
    return InvalidationProbe(run.context, run.server_stats)


@pytest.fixture
def cache_bench(request: pytest.FixtureRequest, _cachecheck_database: None) -> CacheBench:
    """Cold-vs-warm speedup (``speedup``), concurrent load runs (``load``) and stampedes (``stampede``)."""
    run = _run(request.config)
    assert run.context is not None
    return CacheBench(run.context, observing=run.settings.monitor)


@pytest.fixture
def cache_faults(request: pytest.FixtureRequest) -> CacheFaults:
    """Outage, latency and error injection: ``outage()``, ``latency(ms)``, ``errors(rate, seed)``."""
    run = _run(request.config)

    def started_backend() -> Any:
        run.server()
        return run.backend

    return CacheFaults(started_backend, monitored=run.settings.monitor)


@pytest.fixture
def cache_consistency(
    request: pytest.FixtureRequest, cache_server: CacheServer, _cachecheck_database: None
) -> CacheConsistency:
    """Stale-read detector: ``run(read, write, ...)`` drives the cache; ``read()``/``write()`` record."""
    return CacheConsistency(
        _run(request.config).context,
        client_factory=cache_server.client,
        progress=terminal_progress(request.config),
        default_max_staleness_ms=marker_bound(request.node),
    )
