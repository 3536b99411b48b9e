"""End to end: a zoo of real cache layers over redis-py, checked by ``cache_no_stale_reads``.

Five layers have a classic consistency bug and must FAIL with a report; three are the
classic fixes and must PASS. Every layer is a few lines over redis-py with a real source
of truth (a dict guarded by a lock). Each runs through pytester on the ``fake`` and the
``server`` backend. ``ZOO`` is also loaded by ``benchmarks/bench_stale_detection.py``.
"""

from __future__ import annotations

import contextlib
import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
from backend_support import BACKENDS

ZOO = '''
import hashlib
import threading
import time

import redis


class Database:
    """The source of truth: rows with a version, read and written atomically under a lock."""

    def __init__(self):
        self._rows = {}
        self._lock = threading.Lock()

    def get(self, key):
        return self.get_versioned(key)[1]

    def get_versioned(self, key):
        with self._lock:
            return self._rows.get(key, (0, None))

    def put(self, key, value):
        with self._lock:
            version = self._rows.get(key, (0, None))[0] + 1
            self._rows[key] = (version, value)
            return version


class SlowDatabase(Database):
    """A source of truth as slow as a real one: reads take 10 ms, writes 15 ms (outside its lock)."""

    def __init__(self, read_ms=10, write_ms=15):
        super().__init__()
        self.read_s, self.write_s = read_ms / 1000, write_ms / 1000

    def get_versioned(self, key):
        found = super().get_versioned(key)
        time.sleep(self.read_s)
        return found

    def put(self, key, value):
        time.sleep(self.write_s)
        return super().put(key, value)


class CacheAside:
    """Cache-aside, delete after the write: the stale-set race (an old fill lands after the delete)."""

    def __init__(self, client, db):
        self.r, self.db = client, db

    def cache_key(self, key):
        return f"cache:{key}"

    def read(self, key):
        value = self.r.get(self.cache_key(key))
        if value is None:
            value = self.db.get(key)
            self.r.set(self.cache_key(key), value)
        return value

    def write(self, key, value):
        self.db.put(key, value)
        self.invalidate(key)

    def invalidate(self, key):
        self.r.delete(self.cache_key(key))


class HashedKeys(CacheAside):
    """The same race under django-cacheops-style keys (``q:<md5>``): no driver key name in them."""

    def cache_key(self, key):
        return "q:" + hashlib.md5(f"user {key}".encode()).hexdigest()


class DeleteBeforeWrite(CacheAside):
    """Invalidates before the database write: a reader in between refills the old value."""

    def write(self, key, value):
        self.invalidate(key)
        self.db.put(key, value)


class NoInvalidation(CacheAside):
    """Never invalidates: the first fill is served forever."""

    def invalidate(self, key):
        pass


class WrongKeyInvalidation(CacheAside):
    """Deletes a key the readers never use (a prefix typo)."""

    def invalidate(self, key):
        self.r.delete(f"cache:{key}:v1")


class ScanFirstPageOnly(CacheAside):
    """Pattern invalidation that reads one SCAN page and ignores the cursor: most keys survive."""

    def cache_key(self, key):
        return f"cache:{key}:profile"

    def invalidate(self, key):
        _, found = self.r.scan(0, match=f"cache:{key}:*")
        if found:
            self.r.delete(*found)


class VersionedCompareAndSet(CacheAside):
    """Fills and writes go through a compare-and-set on the row version (WATCH/MULTI): old never wins."""

    def read(self, key):
        cached = self.r.get(self.cache_key(key))
        if cached is not None:
            return cached.split(b"|", 1)[1]
        version, value = self.db.get_versioned(key)
        self.store_if_newer(key, version, value)
        return value

    def write(self, key, value):
        version = self.db.put(key, value)
        self.store_if_newer(key, version, value)

    def store_if_newer(self, key, version, value):
        name = self.cache_key(key)
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    cached = pipe.get(name)
                    if cached is not None and int(cached.split(b"|", 1)[0]) >= version:
                        pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.set(name, f"{version}|{value}")
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue


class WriteThroughLocked(CacheAside):
    """Write-through; writes and fills of one key hold the same lock, so a fill is never older."""

    def __init__(self, client, db):
        super().__init__(client, db)
        self.locks = {}
        self.guard = threading.Lock()

    def lock(self, key):
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())

    def read(self, key):
        value = self.r.get(self.cache_key(key))
        if value is None:
            with self.lock(key):
                value = self.db.get(key)
                self.r.set(self.cache_key(key), value)
        return value

    def write(self, key, value):
        with self.lock(key):
            self.db.put(key, value)
            self.r.set(self.cache_key(key), value)


class TtlBounded(CacheAside):
    """No invalidation; entries expire TTL after the database read that produced them (PXAT)."""

    def __init__(self, client, db, ttl_ms):
        super().__init__(client, db)
        self.ttl_ms = ttl_ms

    def read(self, key):
        value = self.r.get(self.cache_key(key))
        if value is None:
            read_at_ms = int(time.time() * 1000)
            value = self.db.get(key)
            self.r.set(self.cache_key(key), value, pxat=read_at_ms + self.ttl_ms)
        return value

    def invalidate(self, key):
        pass
'''


TESTS = """
import pytest

from zoo import (
    CacheAside,
    Database,
    DeleteBeforeWrite,
    NoInvalidation,
    ScanFirstPageOnly,
    TtlBounded,
    VersionedCompareAndSet,
    WriteThroughLocked,
    WrongKeyInvalidation,
)

OPS = 300


@pytest.fixture
def db():
    return Database()


def drive(cache_consistency, layer, db, **options):
    return cache_consistency.run(layer.read, layer.write, truth=db.get, **options)


@pytest.mark.cache_no_stale_reads
def test_stale_set_race(cache_consistency, cache_redis, db):
    drive(cache_consistency, CacheAside(cache_redis, db), db)  # the default settings


@pytest.mark.cache_no_stale_reads
def test_delete_before_write(cache_consistency, cache_redis, db):
    drive(cache_consistency, DeleteBeforeWrite(cache_redis, db), db, ops=OPS)


@pytest.mark.cache_no_stale_reads
def test_no_invalidation(cache_consistency, cache_redis, db):
    drive(cache_consistency, NoInvalidation(cache_redis, db), db, ops=OPS)


@pytest.mark.cache_no_stale_reads
def test_wrong_key_invalidation(cache_consistency, cache_redis, db):
    drive(cache_consistency, WrongKeyInvalidation(cache_redis, db), db, ops=OPS)


@pytest.mark.cache_no_stale_reads
def test_scan_first_page_only(cache_consistency, cache_redis, db):
    drive(cache_consistency, ScanFirstPageOnly(cache_redis, db), db, ops=OPS)


@pytest.mark.cache_no_stale_reads
def test_versioned_compare_and_set(cache_consistency, cache_redis, db):
    drive(cache_consistency, VersionedCompareAndSet(cache_redis, db), db, ops=OPS)


@pytest.mark.cache_no_stale_reads
def test_write_through_locked(cache_consistency, cache_redis, db):
    drive(cache_consistency, WriteThroughLocked(cache_redis, db), db, ops=OPS)


@pytest.mark.cache_no_stale_reads(max_staleness_ms=20)
def test_ttl_bounded(cache_consistency, cache_redis, db):
    # 18 ms under a 20 ms bound: Redis checks expiry on its millisecond clock, cached per command,
    # so a key can be served up to ~1 ms past its PXAT (seen: 20.6 ms with ttl_ms=20)
    report = drive(cache_consistency, TtlBounded(cache_redis, db, ttl_ms=18), db, ops=OPS)
    assert report.max_staleness_ms == 20  # the marker's bound is the driver's default
"""

BUGGY = {
    "test_stale_set_race": "cache:k*",
    "test_delete_before_write": "cache:k*",
    "test_no_invalidation": "cache:k*",
    "test_wrong_key_invalidation": "cache:k*",
    "test_scan_first_page_only": "cache:k*:profile",
}
CORRECT = ("test_versioned_compare_and_set", "test_write_through_locked", "test_ttl_bounded")


@pytest.fixture
def zoo(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(zoo=ZOO)
    return pytester


@pytest.mark.parametrize("backend", BACKENDS)
def test_buggy_layers_fail_and_correct_layers_pass(zoo: pytest.Pytester, backend: str) -> None:
    zoo.makepyfile(test_cc_zoo=TESTS)
    result = zoo.runpytest("-p", "no:cacheprovider", f"--cache-backend={backend}")
    result.assert_outcomes(passed=len(CORRECT), failed=len(BUGGY))
    expected = []
    for name in BUGGY:  # each failure section, in file order, opens with the report's counts
        expected += [f"*_ {name} _*", "cache_no_stale_reads: [1-9]* stale, * phantom, * future reads in *"]
    result.stdout.fnmatch_lines(expected)
    failures, summary = result.stdout.str().split("short test summary info")
    for name in CORRECT:
        assert f"test_cc_zoo.py::{name}" not in summary
    # every failure names a counterexample with the Redis commands that produced it, and the seed to replay
    # (counted in the failure sections: with CI set, pytest repeats whole messages in the short summary)
    assert failures.count("counterexample 1: stale read of key 'k") == len(BUGGY)
    for pattern in set(BUGGY.values()):
        result.stdout.fnmatch_lines([f"*redis: * {pattern} *"])
    assert failures.count("to cache_consistency.run() to replay these delays") == len(BUGGY)


CONVERGENCE = """
import pytest
from zoo import CacheAside, Database, TtlBounded, WriteThroughLocked

TTL_MS = 60_000


class WriteBehindLost(CacheAside):
    '''Writes reach the cache only, never the database: every read agrees with the writes, not with the truth.'''

    def write(self, key, value):
        self.r.set(self.cache_key(key), value)


def drive(cache_consistency, layer, **options):
    '''One key, one worker, no delays, a fixed seed: the same reads and writes on every run.'''
    return cache_consistency.run(
        layer.read, layer.write, keys=1, threads=1, ops=40, read_ratio=0.5, amplify=False, seed=3, **options
    )


@pytest.mark.cache_no_stale_reads
def test_ttl_without_invalidation(cache_consistency, cache_redis):
    db = Database()
    drive(cache_consistency, TtlBounded(cache_redis, db, ttl_ms=TTL_MS), truth=db.get)


@pytest.mark.cache_no_stale_reads(max_staleness_ms=TTL_MS + 1_000)
def test_ttl_within_the_bound(cache_consistency, cache_redis):
    db = Database()
    report = drive(cache_consistency, TtlBounded(cache_redis, db, ttl_ms=TTL_MS), truth=db.get)
    (divergence,) = report.divergences
    assert not divergence.violation and report.ok
    assert divergence.age_ms + divergence.ttl_ms["cache:k0"] < TTL_MS + 1_000  # what the bound accepts
    assert not divergence.beyond(TTL_MS) and divergence.beyond(1_000)
    strict = report.rechecked(1_000)  # every read's staleness is far below 1 s: only the divergence fails it
    assert (strict.stale_reads, strict.diverged, strict.ok) == (0, 1, False)


@pytest.mark.cache_no_stale_reads
def test_lost_writes_against_the_truth(cache_consistency, cache_redis):
    db = Database()
    report = drive(cache_consistency, WriteBehindLost(cache_redis, db), truth=db.get)
    assert report.stale_reads == 0  # only the comparison with the truth can see it


@pytest.mark.cache_no_stale_reads
def test_lost_writes_against_the_last_write(cache_consistency, cache_redis):
    report = drive(cache_consistency, WriteBehindLost(cache_redis, Database()))
    assert report.ok and report.divergences == ()


@pytest.mark.cache_no_stale_reads
def test_correct_layer_converges(cache_consistency, cache_redis):
    db = Database()
    layer = WriteThroughLocked(cache_redis, db)
    report = cache_consistency.run(layer.read, layer.write, ops=300, truth=db.get)
    assert report.ok and report.divergences == ()
"""
TTL_MS = 60_000  # the TTL of CONVERGENCE's layer


@pytest.mark.parametrize("backend", BACKENDS)
def test_quiescent_convergence_reports_what_stays_stale_and_for_how_long(zoo: pytest.Pytester, backend: str) -> None:
    zoo.makepyfile(test_cc_convergence=CONVERGENCE)
    result = zoo.runpytest("-p", "no:cacheprovider", f"--cache-backend={backend}")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_ttl_without_invalidation _*",
            "cache_no_stale_reads: * after the run 1 keys served an older value, 1 of them beyond the bound",
            "after quiescence key 'k0' still serves 'k0#*' instead of 'k0#*' * ms after the last write was "
            "acknowledged; stale until TTL: 'cache:k0' expires in * ms",
        ]
    )
    failures = result.stdout.str().split("short test summary info")[0]
    (remaining,) = re.findall(r"'cache:k0' expires in (\d+) ms", failures)
    assert TTL_MS - 10_000 < int(remaining) <= TTL_MS
    result.stdout.fnmatch_lines(
        [
            "*_ test_lost_writes_against_the_truth _*",
            "cache_no_stale_reads: 0 stale, 0 phantom, 0 future reads in * after the run 1 keys served an older "
            "value, 1 of them beyond the bound",
            "after quiescence key 'k0' still serves 'k0#*' instead of None * ms after the last write was "
            "acknowledged; stale until evicted: no TTL on 'cache:k0'",
        ]
    )


def test_progress_bar_needs_a_terminal_not_colour(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from _pytest.terminal import TerminalReporter

    from pytest_cachecheck.checks.consistency import terminal_progress

    class Stream(io.StringIO):
        def __init__(self, tty: bool) -> None:
            super().__init__()
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    class Capture:
        global_and_fixture_disabled = staticmethod(contextlib.nullcontext)

    def config(*args: str, tty: bool) -> tuple[Any, Stream]:
        stream = Stream(tty)
        reporter = TerminalReporter(pytester.parseconfig(*args), stream)
        plugins = {"terminalreporter": reporter, "capturemanager": Capture()}
        return SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=plugins.get)), stream

    piped, _ = config("--color=yes", tty=False)
    assert terminal_progress(piped) is None

    monkeypatch.setenv("NO_COLOR", "1")
    terminal, stream = config(tty=True)
    show = terminal_progress(terminal)
    assert show is not None
    show("cache_consistency [###...] 1/2 ops")
    assert stream.getvalue().startswith("\rcache_consistency [###...] 1/2 ops")
    assert "\x1b[" not in stream.getvalue()  # NO_COLOR: no markup


ASYNC_LAYERS = """
import asyncio


class AsyncCacheAside:
    '''Cache-aside over redis.asyncio; the source of truth is a dict the event loop owns.'''

    def __init__(self, client, locked_fill=False):
        self.r, self.rows, self.locked_fill = client, {}, locked_fill
        self.locks = {}

    async def read(self, key):
        value = await self.r.get(f"cache:{key}")
        if value is None:
            if self.locked_fill:
                async with self.locks.setdefault(key, asyncio.Lock()):
                    value = self.rows.get(key)
                    await self.r.set(f"cache:{key}", value)
            else:
                value = self.rows.get(key)
                await self.r.set(f"cache:{key}", value)
        return value

    async def write(self, key, value):
        if self.locked_fill:
            async with self.locks.setdefault(key, asyncio.Lock()):
                self.rows[key] = value
                await self.r.set(f"cache:{key}", value)
        else:
            self.rows[key] = value
            await self.r.delete(f"cache:{key}")
"""


def test_async_callables_run_as_concurrent_tasks(zoo: pytest.Pytester) -> None:
    zoo.makepyfile(async_layers=ASYNC_LAYERS)
    zoo.makepyfile(
        test_cc_async="""
        import asyncio

        import pytest
        from async_layers import AsyncCacheAside

        @pytest.mark.cache_no_stale_reads
        def test_race(cache_consistency, cache_redis_async):
            layer = AsyncCacheAside(cache_redis_async)
            report = asyncio.run(cache_consistency.run(layer.read, layer.write, keys=4, ops=1500, seed=7))
            assert report.amplified and report.seed == 7

        @pytest.mark.cache_no_stale_reads
        def test_locked(cache_consistency, cache_redis_async):
            layer = AsyncCacheAside(cache_redis_async, locked_fill=True)
            report = asyncio.run(cache_consistency.run(layer.read, layer.write, ops=600, threads=8))
            assert report.reads > 400
            assert {op.process for op in report.history if op.kind == "read"} == {f"task-{n}" for n in range(1, 9)}
        """
    )
    result = zoo.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_race _*", "cache_no_stale_reads: [1-9]* stale*", "*task-*redis: *"])
    result.stdout.fnmatch_lines(["*seed 7: pass seed=7 to cache_consistency.run() to replay these delays*"])


def test_record_mode_checks_the_tests_own_threads(zoo: pytest.Pytester) -> None:
    zoo.makepyfile(
        test_cc_record="""
        import threading
        import time

        import pytest
        from zoo import Database, NoInvalidation, WriteThroughLocked

        def workload(cache_consistency, layer, rounds=40):
            def writer():
                for number in range(rounds):
                    value = f"v{number}"
                    with cache_consistency.write("k", value):
                        layer.write("k", value)
                    time.sleep(0.0005)  # let the readers in between writes

            def reader():
                for _ in range(rounds):
                    with cache_consistency.read("k") as record:
                        record.value = layer.read("k")

            with cache_consistency.write("k", "seed"):
                layer.write("k", "seed")
            with cache_consistency.read("k") as record:
                record.value = layer.read("k")
            threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        @pytest.mark.cache_no_stale_reads
        def test_correct(cache_consistency, cache_redis):
            workload(cache_consistency, WriteThroughLocked(cache_redis, Database()))
            report = cache_consistency.check()
            assert report.ok and report.reads == 121 and report.writes == 41

        @pytest.mark.cache_no_stale_reads
        def test_buggy_checked_by_the_marker_alone(cache_consistency, cache_redis):
            workload(cache_consistency, NoInvalidation(cache_redis, Database()))

        def test_read_without_value(cache_consistency):
            with cache_consistency.read("k"):
                pass
        """
    )
    result = zoo.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_buggy_checked_by_the_marker_alone _*",
            "cache_no_stale_reads: [1-9]* stale, 0 phantom, 0 future reads in 121 reads of 1 keys (41 writes)*",
            "counterexample 1: stale read of key 'k': returned 'seed' (write #1), but write #2 ('v0')*",
        ]
    )
    result.stdout.fnmatch_lines(["*ValueError: cache_consistency.read('k'): set .value on the record*"])


def test_marker_without_history_and_bad_arguments_fail_in_one_line(zoo: pytest.Pytester) -> None:
    zoo.makepyfile(
        test_cc_misuse="""
        import pytest

        @pytest.mark.cache_no_stale_reads
        def test_nothing_recorded(cache_redis):
            cache_redis.set("a", 1)

        @pytest.mark.cache_no_stale_reads(max_staleness_ms=-5)
        def test_negative_bound(cache_consistency):
            pass

        @pytest.mark.cache_no_stale_reads(10)
        def test_positional(cache_consistency):
            pass

        def test_bad_run_argument(cache_consistency):
            cache_consistency.run(lambda key: None, lambda key, value: None, threads=0)

        def test_bad_amplification(cache_consistency):
            from pytest_cachecheck import Amplification
            cache_consistency.run(lambda key: None, lambda key, value: None, amplify=Amplification(fill_scale=-1))

        def test_unhashable_keys(cache_consistency):
            cache_consistency.run(lambda key: None, lambda key, value: None, keys=[[1], [2]])
        """
    )
    result = zoo.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4, errors=2)  # marker arguments are checked at set-up
    result.stdout.fnmatch_lines(["*cache_no_stale_reads: no history was recorded; drive the cache with*"])
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.cache_no_stale_reads: argument 'max_staleness_ms' must be a number >= 0, got -5*"]
    )
    result.stdout.fnmatch_lines(["*@pytest.mark.cache_no_stale_reads: takes 0 positional argument(s), got 1*"])
    result.stdout.fnmatch_lines(["*ValueError: cache_consistency.run: threads must be a whole number >= 1, got 0*"])
    result.stdout.fnmatch_lines(["*ValueError: Amplification: fill_scale must be a number >= 0, got -1*"])
    result.stdout.fnmatch_lines(
        ["*ValueError: cache_consistency.run: keys must be a count >= 1 or a list of distinct*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_stale_reads_feed_run_wide_targets(zoo: pytest.Pytester) -> None:
    zoo.makepyprojecttoml(
        """
        [[tool.cachecheck.target]]
        name = "profiles"
        pattern = "cache:*"
        stale_reads = 0
        """
    )
    zoo.makepyfile(
        test_cc_targets="""
        from zoo import Database, NoInvalidation

        def test_buggy_without_marker(cache_consistency, cache_redis):
            db = Database()
            layer = NoInvalidation(cache_redis, db)
            report = cache_consistency.run(layer.read, layer.write, ops=200, truth=db.get)
            assert report.stale_reads > 0
        """
    )
    result = zoo.runpytest("-p", "no:cacheprovider", "--cache-targets")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["profiles: stale_reads *<= 0  missed", "*worst * in test_cc_targets.py::test_buggy_without_marker"]
    )


def test_delay_schedule_replays_from_the_seed() -> None:
    from pytest_cachecheck.checks.consistency import Amplification
    from pytest_cachecheck.checks.consistency.amplifier import Schedule

    commands = [[("GET", "cache:k")], [("SET", "cache:k", "v")], [("GET", "cache:j")], [("DEL", "cache:j")]] * 50

    def delays(seed: int) -> list[float]:
        schedule = Schedule("thread-1", seed, Amplification(), is_async=False)
        drawn = []
        for batch in commands:
            schedule.missed = batch[0][0] == "SET"  # a fill after a miss
            drawn.append(schedule.delay_before(batch))
            drawn.append(schedule.delay_after(("delete",) if batch[0][0] == "DEL" else ("hit",)))
        return drawn

    assert delays(42) == delays(42)
    assert delays(42) != delays(43)
    assert any(delays(42)) and not all(delays(42))


POWER = """
import pytest
from zoo import CacheAside, HashedKeys, SlowDatabase, WriteThroughLocked


@pytest.mark.cache_no_stale_reads
def test_slow_source_cache_aside(cache_consistency, cache_redis):
    db = SlowDatabase(read_ms=10, write_ms=15)
    layer = CacheAside(cache_redis, db)
    cache_consistency.run(layer.read, layer.write, truth=db.get, seed=11)  # the default settings


@pytest.mark.cache_no_stale_reads
def test_slow_source_locked_write_through(cache_consistency, cache_redis):
    db = SlowDatabase(read_ms=10, write_ms=15)
    layer = WriteThroughLocked(cache_redis, db)
    report = cache_consistency.run(layer.read, layer.write, truth=db.get, seed=11)
    assert report.windows == 0 and report.fills == 0  # its reads never miss once the set-up writes filled it


@pytest.mark.cache_no_stale_reads
def test_hashed_keys(cache_consistency, cache_redis):
    db = SlowDatabase(read_ms=2, write_ms=3)
    layer = HashedKeys(cache_redis, db)
    cache_consistency.run(layer.read, layer.write, keys=4, ops=400, truth=db.get, seed=5)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_power_slow_sources_windows_and_readable_timelines(zoo: pytest.Pytester, backend: str) -> None:
    zoo.makepyfile(test_cc_power=POWER)
    result = zoo.runpytest("-p", "no:cacheprovider", f"--cache-backend={backend}", "-W", "default")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_slow_source_cache_aside _*",
            "cache_no_stale_reads: [1-9]* stale, * reads in * race windows [1-9]* (of [1-9]* fills after a miss)*",
            "counterexample 1: stale read of key 'k*",
        ]
    )
    # the layer that never misses after a write passed, but as inconclusive: it never exercised the race
    result.stdout.fnmatch_lines(
        [
            "*test_slow_source_locked_write_through*",
            "*InconclusiveCheckWarning: cache_no_stale_reads: inconclusive: no stale reads in * reads, but the race "
            "was never exercised (race windows 0: *; to get power: more ops (ops=*), fewer keys (keys=*) or more "
            "threads (threads=*)*",
        ]
    )
    failures = result.stdout.str().split("short test summary info")[0]
    hashed = failures[failures.index("_ test_hashed_keys _") :]
    timeline = hashed[: hashed.index("seed 5: pass seed=5")]
    # the stale-set race in a cacheops-style key: one worker's GET miss, another's DEL, then the first one's late SET
    rows = re.findall(
        r"^\s+([+-]\d+\.\d+)\s+([+-]\d+\.\d+)\s+(\S+)\s+redis: (GET|SET|DEL) (q:[0-9a-f]{32})(.*)$", timeline, re.M
    )
    assert rows, timeline
    late_fill = False
    for _, end, who, name, key, _ in rows:
        if name != "SET" or who == "setup":
            continue
        # another worker's DEL sent after this worker's miss and before its SET was answered: the SET
        # may land after the DEL (the stale-set race); the SET's own start can be a little earlier
        missed = [float(s) for s, _, w, n, k, r in rows if (w, n, k) == (who, "GET", key) and "miss" in r]
        deleted = [float(s) for s, _, w, n, k, _ in rows if (n, k) == ("DEL", key) and w != who]
        if missed and any(min(missed) < when < float(end) for when in deleted):
            late_fill = True
    assert late_fill, timeline
    assert "\\n" not in "".join(rest for *_, rest in rows)  # values on one line


def test_a_plain_callable_returning_an_awaitable_is_a_one_line_error(zoo: pytest.Pytester) -> None:
    zoo.makepyfile(async_layers=ASYNC_LAYERS)
    zoo.makepyfile(
        test_cc_unawaited="""
        import pytest
        from async_layers import AsyncCacheAside

        @pytest.mark.cache_no_stale_reads
        def test_lambda_around_async(cache_consistency, cache_redis_async):
            layer = AsyncCacheAside(cache_redis_async)
            rows = {}
            cache_consistency.run(read=lambda key: layer.read(key), write=rows.__setitem__, ops=50)
        """
    )
    result = zoo.runpytest("-p", "no:cacheprovider", "-W", "error::RuntimeWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *TypeError: cache_consistency.run: read=<lambda> returned an awaitable (coroutine), which run() "
            "would never await; pass an `async def` function as read= *",
        ]
    )
    output = result.stdout.str()
    assert "Traceback" not in output and "never awaited" not in output.replace("would never await", "")
    assert "phantom" not in output
