"""Detection power and false alarms of ``cache_consistency.run`` with its default settings, on real libraries.

On the ``fake`` backend (threads=4, ops=2000, keys=16, read_ratio=0.9, no argument but
``read``/``write``/``truth``), each racy layer must be found (stale reads in the history) in
>= 95% of runs, each run <= 10 s, and each correct layer must give 0 reports. The racy layers:
the zoo's cache-aside stale-set race; cache-aside over a source with 10 ms reads and 15 ms
writes; django-cacheops (Django + SQLite on disk) with ``.save()`` racing cached ``get``
querysets; flask-caching ``@cache.memoize`` with ``delete_memoized``; fastapi-cache2's
``@cache`` driven through starlette's ``TestClient`` from the driver's threads; an async
cache-aside over ``redis.asyncio``. The correct ones: the zoo's versioned compare-and-set,
locked write-through and TTL-bounded layers (within their bound), and the locked
write-through over the slow source.

Runs go round-robin over the rows (run 1 of every row, then run 2...), so every run but the
very first follows other layers' runs in the same process: "also when other tests ran
first". Reference rows in the same run: the fast race with ``amplify=False``, and the slow
and library rows with the previous fixed delays (``Amplification(adaptive=False,
steer=False)``), to show what adaptation buys. "windows" is the mean race windows per run.

Libraries missing from the environment skip their rows (said in the table).

With ``--after WORD`` another row (the first whose name contains WORD) runs once, uncounted,
before every counted run: every run of the measured rows, the very first included, follows
another test in the same process even when ``--rows`` picks a single row (issue 13 item 4:
detection on ``fake`` had dropped from 8/10 to 1/10 after another test).

    python benchmarks/bench_stale_detection.py [--runs 100] [--rows cacheops,flask] [--no-reference]
        [--after stale-set]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import itertools
import os
import pathlib
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pytest_cachecheck import Amplification
from pytest_cachecheck.backends.fake import FakeBackend
from pytest_cachecheck.checks.consistency import CacheConsistency
from pytest_cachecheck.observe import instrument
from pytest_cachecheck.observe.monitor import CacheMonitor

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIN_FOUND = 0.95
MAX_RUN_S = 10.0
FIXED = Amplification(adaptive=False, steer=False)  # the delays before adaptation: <= 2 ms


def load_zoo() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("zoo_tests", ROOT / "tests" / "test_consistency_zoo.py")
    assert spec is not None and spec.loader is not None
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    zoo = types.ModuleType("zoo")
    exec(compile(tests.ZOO, "zoo.py", "exec"), zoo.__dict__)
    return zoo


@dataclass
class Layer:
    """What one run drives: ``read``, ``write``, ``truth`` (plain or ``async def``), then ``close()``."""

    read: Callable[[Any], Any]
    write: Callable[[Any, Any], Any]
    truth: Callable[[Any], Any]
    close: Callable[[], None] = lambda: None
    keys: Any = 16


# ---------------------------------------------------------------- real-library layers


class Cacheops:
    """django-cacheops: ``User.objects.get(pk=k)`` cached (ops "get"), ``.save()`` invalidates (Lua)."""

    configured = False

    def __init__(self, backend: FakeBackend) -> None:
        import django
        import redis
        from django.conf import settings

        if not Cacheops.configured:
            path = os.path.join(tempfile.mkdtemp(prefix="bench-cacheops-"), "db.sqlite3")
            settings.configure(
                INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "cacheops"],
                DATABASES={
                    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": {"timeout": 30}}
                },
                CACHEOPS_REDIS=backend.url_for_test(),
                CACHEOPS={"auth.user": {"ops": "get", "timeout": 300}},
                USE_TZ=True,
            )
            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            Cacheops.configured = True
        from cacheops.redis import redis_client
        from django.contrib.auth.models import User

        redis_client.connection_pool = redis.ConnectionPool.from_url(backend.url_for_test())
        self.pool = redis_client.connection_pool
        self.User = User
        User.objects.all().delete()
        User.objects.bulk_create(User(id=index, username=f"user{index}") for index in range(1, 17))

    def layer(self) -> Layer:
        User = self.User

        def read(key: int) -> str:
            return str(User.objects.get(pk=key).username)

        def write(key: int, value: str) -> None:
            user = User.objects.nocache().get(pk=key)
            user.username = value
            user.save()

        def truth(key: int) -> str:
            return str(User.objects.nocache().get(pk=key).username)

        return Layer(read, write, truth, self.pool.disconnect, keys=list(range(1, 17)))


def flask_memoize(backend: FakeBackend) -> Layer:
    """flask-caching RedisCache: ``@cache.memoize`` over a dict source, ``delete_memoized`` after the write."""
    import flask
    import flask_caching

    host, port = _host_port(backend)
    app = flask.Flask(f"bench{next(_apps)}")
    cache = flask_caching.Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_HOST": host,
            "CACHE_REDIS_PORT": port,
            "CACHE_KEY_PREFIX": "bench:",
            "CACHE_DEFAULT_TIMEOUT": 300,
        },
    )
    rows: dict[str, str] = {}

    @cache.memoize(300)
    def load(key: str) -> str | None:
        return rows.get(key)

    def read(key: str) -> Any:
        with app.app_context():
            return load(key)

    def write(key: str, value: str) -> None:
        rows[key] = value
        with app.app_context():
            cache.delete_memoized(load, key)

    return Layer(read, write, rows.get, lambda: cache.cache._write_client.connection_pool.disconnect())


def fastapi_cache(backend: FakeBackend) -> Layer:
    """fastapi-cache2 ``@cache`` on GET /items/{key}; POST writes the source and deletes the entry; via TestClient."""
    from fastapi import Body, FastAPI
    from fastapi.testclient import TestClient
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.redis import RedisBackend
    from fastapi_cache.decorator import cache
    from redis import asyncio as aioredis

    rows: dict[str, str | None] = {}

    def item_key(func: Any, namespace: str = "", *, request: Any = None, response: Any = None, **kw: Any) -> str:
        return f"{namespace}:item:{kw['kwargs']['key']}"

    app = FastAPI()

    @app.get("/items/{key}")
    @cache(expire=300, namespace="items", key_builder=item_key)
    async def get_item(key: str) -> dict[str, str | None]:
        return {"value": rows.get(key)}

    @app.post("/items/{key}")
    async def put_item(key: str, value: str = Body(embed=True)) -> dict[str, bool]:
        rows[key] = value
        await FastAPICache.get_backend().clear(key=f"bench:items:item:{key}")
        return {"ok": True}

    client = aioredis.from_url(backend.url_for_test())
    FastAPICache.reset()  # init() keeps the first backend it was given: the previous run's, on a closed loop
    FastAPICache.init(RedisBackend(client), prefix="bench")
    http = TestClient(app)
    http.__enter__()

    def read(key: str) -> Any:
        return http.get(f"/items/{key}").json()["value"]

    def write(key: str, value: str) -> None:
        http.post(f"/items/{key}", json={"value": value}).raise_for_status()

    return Layer(read, write, rows.get, lambda: http.__exit__(None, None, None))


def async_cache_aside(backend: FakeBackend) -> Layer:
    """Cache-aside over ``redis.asyncio`` with a 2 ms source read and 3 ms write (``await asyncio.sleep``)."""
    client = backend.client(asyncio=True)
    rows: dict[str, str] = {}

    async def read(key: str) -> Any:
        value = await client.get(f"acache:{key}")
        if value is None:
            await asyncio.sleep(0.002)
            value = rows.get(key)
            await client.set(f"acache:{key}", value)
        return value

    async def write(key: str, value: str) -> None:
        await asyncio.sleep(0.003)
        rows[key] = value
        await client.delete(f"acache:{key}")

    return Layer(read, write, rows.get)


_apps = itertools.count()


def _host_port(backend: FakeBackend) -> tuple[str, int]:
    url = backend.url_for_test()
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    return host, int(port)


# ---------------------------------------------------------------- runs


class Outcome(NamedTuple):
    reported: bool
    stale: bool
    windows: int
    seconds: float


@dataclass
class Row:
    name: str
    make: Callable[[FakeBackend], Layer]
    amplify: bool | Amplification
    bound_ms: float
    goal: str  # "found", "clean" or "reference"
    needs: tuple[str, ...] = ()
    outcomes: list[Outcome] | None = None
    skipped: str = ""


def one_run(backend: FakeBackend, row: Row) -> Outcome:
    with instrument.unobserved():
        backend.client().flushall()
    layer = row.make(backend)
    monitor = CacheMonitor()
    monitor.activate()
    try:
        started = time.perf_counter()
        run = CacheConsistency(None, client_factory=backend.client).run(
            layer.read,
            layer.write,
            keys=layer.keys,
            amplify=row.amplify,
            truth=layer.truth,
            max_staleness_ms=row.bound_ms,
        )
        report = asyncio.run(run) if inspect.iscoroutine(run) else run  # async def layers: a coroutine
        return Outcome(not report.ok, report.stale_reads > 0, report.windows or 0, time.perf_counter() - started)
    finally:
        monitor.deactivate()
        layer.close()


def rows(zoo: types.ModuleType) -> list[Row]:
    def zoo_layer(
        make: Callable[[Any, Any], Any], db: Callable[[], Any] = zoo.Database
    ) -> Callable[[FakeBackend], Layer]:
        def build(backend: FakeBackend) -> Layer:
            source = db()
            cache = make(backend.client(), source)
            return Layer(cache.read, cache.write, source.get)

        return build

    slow = lambda: zoo.SlowDatabase(read_ms=10, write_ms=15)  # noqa: E731
    cacheops: dict[str, Cacheops] = {}

    def django_cacheops(backend: FakeBackend) -> Layer:
        if "one" not in cacheops:
            cacheops["one"] = Cacheops(backend)
        else:
            cacheops["one"].__init__(backend)  # type: ignore[misc]  # fresh rows and pool per run
        return cacheops["one"].layer()

    return [
        Row("cache-aside stale-set race", zoo_layer(zoo.CacheAside), True, 0, "found"),
        Row("  same, amplify=False", zoo_layer(zoo.CacheAside), False, 0, "reference"),
        Row("cache-aside, 10 ms/15 ms source", zoo_layer(zoo.CacheAside, slow), True, 0, "found"),
        Row("  same, fixed <= 2 ms delays", zoo_layer(zoo.CacheAside, slow), FIXED, 0, "reference"),
        Row("django-cacheops save race", django_cacheops, True, 0, "found", ("django", "cacheops")),
        Row("  same, fixed <= 2 ms delays", django_cacheops, FIXED, 0, "reference", ("django", "cacheops")),
        Row("flask-caching memoize+delete", flask_memoize, True, 0, "found", ("flask", "flask_caching")),
        Row("  same, fixed <= 2 ms delays", flask_memoize, FIXED, 0, "reference", ("flask", "flask_caching")),
        Row("fastapi-cache2 via TestClient", fastapi_cache, True, 0, "found", ("fastapi", "fastapi_cache", "httpx")),
        Row(
            "  same, fixed <= 2 ms delays", fastapi_cache, FIXED, 0, "reference", ("fastapi", "fastapi_cache", "httpx")
        ),
        Row("async cache-aside (redis.asyncio)", async_cache_aside, True, 0, "found"),
        Row("  same, fixed <= 2 ms delays", async_cache_aside, FIXED, 0, "reference"),
        Row("versioned compare-and-set", zoo_layer(zoo.VersionedCompareAndSet), True, 0, "clean"),
        Row("write-through under per-key lock", zoo_layer(zoo.WriteThroughLocked), True, 0, "clean"),
        Row("  same, 10 ms/15 ms source", zoo_layer(zoo.WriteThroughLocked, slow), True, 0, "clean"),
        Row(
            "TTL-bounded (50 ms, bound 50 ms)",
            zoo_layer(lambda client, db: zoo.TtlBounded(client, db, 50)),
            True,
            50,
            "clean",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rows", default="", help="comma-separated words; only rows whose name contains one")
    parser.add_argument("--no-reference", action="store_true", help="leave out the reference rows")
    parser.add_argument("--after", default="", help="a word: that row runs (uncounted) before every counted run")
    args = parser.parse_args()
    zoo = load_zoo()
    instrument.install()
    backend = FakeBackend()
    backend.start()
    table = rows(zoo)
    before = next((row for row in table if args.after and args.after in row.name), None)
    if args.after and before is None:
        parser.error(f"--after: no row's name contains {args.after!r}")
    if args.rows:
        words = args.rows.split(",")
        table = [row for row in table if any(word in row.name for word in words)]
    if args.no_reference:
        table = [row for row in table if row.goal != "reference"]
    for row in table:
        missing = [name for name in row.needs if importlib.util.find_spec(name) is None]
        row.skipped = f"not installed: {', '.join(missing)}" if missing else ""
        row.outcomes = []
    started = time.perf_counter()
    for _ in range(args.runs):  # round-robin: every run but the first follows other layers' runs
        for row in table:
            if not row.skipped:
                assert row.outcomes is not None
                if before is not None:
                    one_run(backend, before)
                row.outcomes.append(one_run(backend, row))
    header = (
        f"{'layer':<36} {'runs':>5} {'reported':>9} {'stale':>6} {'windows':>8} {'mean s':>7} {'max s':>6}  "
        f"{'goal':<26} status"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for row in table:
        if row.skipped:
            print(f"{row.name:<36} skipped ({row.skipped})")
            continue
        results = row.outcomes or []
        reported = sum(result.reported for result in results)
        stale = sum(result.stale for result in results)
        windows = statistics.mean(result.windows for result in results)
        times = [result.seconds for result in results]
        if row.goal == "found":
            ok = stale >= MIN_FOUND * len(results) and max(times) <= MAX_RUN_S
            goal = f"stale >= {MIN_FOUND * len(results):.0f}, each <= {MAX_RUN_S:.0f} s"
        elif row.goal == "clean":
            ok, goal = reported == 0, "0 reported"
        else:
            ok, goal = True, "(reference)"
        failed |= not ok
        print(
            f"{row.name:<36} {len(results):>5} {reported:>9} {stale:>6} {windows:>8.1f} "
            f"{statistics.mean(times):>7.3f} {max(times):>6.3f}  {goal:<26} {'ok' if ok else 'FAIL'}"
        )
    print(f"\n{time.perf_counter() - started:.0f} s in all; runs round-robin over the rows, in one process")
    if before is not None:
        print(f"every counted run followed an uncounted run of {before.name.strip()!r} in the same process")
    print("reported: the run failed; stale: its history had stale reads; windows: mean race windows per run")
    backend.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
