"""End to end: a zoo of real cache layers over redis-py, checked by ``cache_no_stale_reads``.

Five layers have a classic consistency bug and must FAIL with a report; three are the
classic fixes and must PASS. Every layer is a few lines over redis-py with a real source
of truth (a dict guarded by a lock). Each runs through pytester on the ``fake`` and the
``server`` backend. ``ZOO`` is also loaded by ``benchmarks/bench_stale_detection.py``.
"""

from __future__ import annotations

import shutil

import pytest

ZOO = '''
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
    report = drive(cache_consistency, TtlBounded(cache_redis, db, ttl_ms=20), db, ops=OPS)
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
BACKENDS = [
    "fake",
    pytest.param(
        "server", marks=pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
    ),
]


@pytest.fixture
def zoo(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(zoo=ZOO)
    return pytester


@pytest.mark.parametrize("backend", BACKENDS)
def test_buggy_layers_fail_and_correct_layers_pass(zoo: pytest.Pytester, backend: str) -> None:
    zoo.makepyfile(test_zoo=TESTS)
    result = zoo.runpytest("-p", "no:cacheprovider", f"--cache-backend={backend}")
    result.assert_outcomes(passed=len(CORRECT), failed=len(BUGGY))
    expected = []
    for name in BUGGY:  # each failure section, in file order, opens with the report's counts
        expected += [f"*_ {name} _*", "cache_no_stale_reads: [1-9]* stale, * phantom, * future reads in *"]
    result.stdout.fnmatch_lines(expected)
    text = result.stdout.str()
    for name in CORRECT:
        assert f"test_zoo.py::{name}" not in text.split("short test summary info")[-1]
    # every failure names a counterexample with the Redis commands that produced it, and the seed to replay
    assert text.count("counterexample 1: stale read of key 'k") == len(BUGGY)
    for pattern in set(BUGGY.values()):
        result.stdout.fnmatch_lines([f"*redis: * {pattern} *"])
    assert text.count("to cache_consistency.run() to replay these delays") == len(BUGGY)
