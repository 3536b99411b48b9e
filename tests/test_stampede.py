"""End to end: cache_stampede and cache_bench.stampede on a naive read-through, a SET NX lease, sequential
reads; source= counting; the max_fills and errors targets; bad arguments. Counts, not clocks: the source
sleeps 50 ms and callers start at a barrier, so the naive design's readers all miss before its first fill."""

from __future__ import annotations

import textwrap

import pytest
from backend_support import BACKENDS

from pytest_cachecheck.observe.bursts import find_bursts
from pytest_cachecheck.observe.events import Event

CACHE_LAYER = """
import asyncio
import threading
import time
import uuid


class Source:
    '''The slow database: 50 ms a load, counted by the test itself (the plugin's count is checked against it).'''

    def __init__(self, delay=0.05):
        self.delay = delay
        self.loads = 0
        self._lock = threading.Lock()

    def load(self, key):
        with self._lock:
            self.loads += 1
        time.sleep(self.delay)
        return f"value-of-{key}".encode()

    async def load_async(self, key):
        self.loads += 1
        await asyncio.sleep(self.delay)
        return f"value-of-{key}".encode()


def naive_get(client, key, source):
    value = client.get(key)
    if value is None:
        value = source.load(key)
        client.set(key, value, ex=60)
    return value


def lease_get(client, key, source):
    '''Single flight: one caller takes a SET NX lease and loads; the others wait for its fill.'''
    while True:
        value = client.get(key)
        if value is not None:
            return value
        if client.set(f"lease:{key}", uuid.uuid4().hex, nx=True, px=10_000):
            try:
                value = client.get(key)  # filled while this caller was taking the lease
                if value is None:
                    value = source.load(key)
                    client.set(key, value, ex=60)
                return value
            finally:
                client.delete(f"lease:{key}")
        time.sleep(0.005)


async def naive_get_async(client, key, source):
    value = await client.get(key)
    if value is None:
        value = await source.load_async(key)
        await client.set(key, value, ex=60)
    return value


async def lease_get_async(client, key, source):
    while True:
        value = await client.get(key)
        if value is not None:
            return value
        if await client.set(f"lease:{key}", "me", nx=True, px=10_000):
            try:
                value = await client.get(key)
                if value is None:
                    value = await source.load_async(key)
                    await client.set(key, value, ex=60)
                return value
            finally:
                await client.delete(f"lease:{key}")
        await asyncio.sleep(0.005)


def run_threads(count, work):
    gate = threading.Barrier(count)

    def worker():
        gate.wait()
        work()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(cache_layer=CACHE_LAYER)
    return pytester


DESIGNS = """
import asyncio

import pytest
from cache_layer import Source, lease_get, lease_get_async, naive_get, naive_get_async, run_threads


@pytest.mark.cache_stampede(max_fills=1)
def test_naive_bench(cache_bench, cache_redis):
    source = Source()
    report = cache_bench.stampede(
        lambda: naive_get(cache_redis, "user:1", source), cold=lambda: cache_redis.delete("user:1"), source=source.load
    )
    assert report.rounds == 3 and report.concurrency == 20
    assert report.fills == report.source_loads  # the plugin's fill counts are the real loads
    assert sum(report.source_loads) < source.loads  # the warm-up round's loads are not in the report
    assert report.max_fills > 1


@pytest.mark.cache_stampede(max_fills=1)
def test_naive_own_threads(cache_redis):
    source = Source()
    run_threads(12, lambda: naive_get(cache_redis, "user:2", source))
    assert source.loads > 1


@pytest.mark.cache_stampede(max_fills=1)
def test_lease_bench(cache_bench, cache_redis):
    source = Source()
    report = cache_bench.stampede(
        lambda: lease_get(cache_redis, "user:3", source), cold=lambda: cache_redis.delete("user:3"), source=source.load
    )
    assert report.max_fills == 1
    assert report.fills == report.source_loads == (1, 1, 1)
    assert report.source_loads_per_call == 1 / 20


@pytest.mark.cache_stampede(max_fills=1)
def test_lease_own_threads(cache_redis):
    source = Source()
    run_threads(12, lambda: lease_get(cache_redis, "user:4", source))
    assert source.loads == 1


@pytest.mark.cache_stampede
def test_sequential_reads(cache_redis):
    source = Source(delay=0)
    for _ in range(30):
        naive_get(cache_redis, "user:5", source)
    assert source.loads == 1


@pytest.mark.cache_stampede(max_fills=1)
def test_naive_tasks(cache_bench, cache_redis_async):
    source = Source()

    async def call():
        return await naive_get_async(cache_redis_async, "user:6", source)

    async def cold():
        await cache_redis_async.delete("user:6")

    async def main():
        return await cache_bench.stampede(
            call,
            cold=cold,
            concurrency=10,
            rounds=2,
            source=source.load_async,
        )

    report = asyncio.run(main())
    assert report.fills == report.source_loads and min(report.fills) > 1


@pytest.mark.cache_stampede(max_fills=1)
def test_lease_tasks(cache_bench, cache_redis_async):
    source = Source()

    async def call():
        return await lease_get_async(cache_redis_async, "user:7", source)

    async def main():
        return await cache_bench.stampede(
            call,
            cold=lambda: cache_redis_async.delete("user:7"),  # a plain function returning an awaitable: awaited
            concurrency=10,
            rounds=2,
            source=source.load_async,
        )

    report = asyncio.run(main())
    assert report.fills == report.source_loads == (1, 1)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_naive_read_through_stampedes_and_a_lease_does_not(project: pytest.Pytester, backend: str) -> None:
    project.makepyfile(test_designs=DESIGNS)
    result = project.runpytest("-p", "no:cacheprovider", "--cache-backend", backend, "-rA")
    result.assert_outcomes(passed=4, failed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*PASSED test_designs.py::test_lease_bench*",
            "*PASSED test_designs.py::test_lease_own_threads*",
            "*PASSED test_designs.py::test_sequential_reads*",
            "*PASSED test_designs.py::test_lease_tasks*",
        ],
        consecutive=False,
    )
    out = result.stdout.str()
    # How many of the 20 readers miss before the first fill depends on the scheduler; that it is > 1 does not.
    for test, key in (("naive_bench", "user:1"), ("naive_own_threads", "user:2"), ("naive_tasks", "user:6")):
        result.stdout.fnmatch_lines(
            [
                f"*_ test_{test} _*",
                f"cache_stampede: key '{key}' was filled * times in one cold burst, * reads missed it before "
                "the first fill was visible (max_fills=1)*; make the fill single-flight: a lock, a SET NX lease, "
                "or the library's stampede protection",
            ]
        )
    assert "; source loads per round [" in out
    assert (
        "InconclusiveCheckWarning: cache_stampede inconclusive: 1 cold burst(s) of any key, each missed by one "
        "read only" in out
    )
    assert "Traceback" not in out


UPDATES = """
import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from cache_layer import Source, lease_get, lease_get_async, naive_get, run_threads


@pytest.mark.cache_stampede(max_fills=1)
def test_lease_then_write_through(cache_redis):
    source = Source()
    run_threads(12, lambda: lease_get(cache_redis, "user:1", source))
    assert source.loads == 1
    cache_redis.set("user:1", b"updated", ex=60)  # the application's write-through update


@pytest.mark.cache_stampede(max_fills=1)
def test_lease_then_each_caller_updates(cache_redis):
    source = Source()

    def work():
        lease_get(cache_redis, "user:2", source)
        cache_redis.set("user:2", b"updated", ex=60)

    run_threads(12, work)
    assert source.loads == 1


@pytest.mark.cache_stampede(max_fills=1)
def test_lease_tasks_then_write_through(cache_redis_async):
    source = Source()

    async def main():
        await asyncio.gather(*(lease_get_async(cache_redis_async, "user:3", source) for _ in range(10)))
        await cache_redis_async.set("user:3", b"updated", ex=60)

    asyncio.run(main())
    assert source.loads == 1


@pytest.mark.cache_stampede(max_fills=1)
def test_naive_then_write_through(cache_redis):
    source = Source()
    run_threads(12, lambda: naive_get(cache_redis, "user:4", source))
    cache_redis.set("user:4", b"updated", ex=60)
    assert source.loads > 1


@pytest.mark.cache_stampede(max_fills=1)
def test_naive_through_a_loader_pool(cache_redis):
    source = Source()
    pool = ThreadPoolExecutor(max_workers=12)

    def load_and_fill(key):
        value = source.load(key)
        cache_redis.set(key, value, ex=60)
        return value

    def get(key):
        value = cache_redis.get(key)
        return value if value is not None else pool.submit(load_and_fill, key).result()

    run_threads(12, lambda: get("user:5"))
    pool.shutdown()
    assert source.loads > 1
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_update_after_single_flight_passes_and_a_herd_still_fails(project: pytest.Pytester, backend: str) -> None:
    """Polling waiters make more missed reads than callers; a write-through update of the key afterwards (by
    another caller, or by the callers themselves after their hit) is not a second fill. A naive read-through
    fails with or without the update, and so does one that hands the load to a pool of loader threads."""
    project.makepyfile(test_updates=UPDATES)
    result = project.runpytest("-p", "no:cacheprovider", "--cache-backend", backend, "-rA")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*PASSED test_updates.py::test_lease_then_write_through*",
            "*PASSED test_updates.py::test_lease_then_each_caller_updates*",
            "*PASSED test_updates.py::test_lease_tasks_then_write_through*",
        ],
        consecutive=False,
    )
    for test, key in (("naive_then_write_through", "user:4"), ("naive_through_a_loader_pool", "user:5")):
        result.stdout.fnmatch_lines(
            [
                f"*_ test_{test} _*",
                f"cache_stampede: key '{key}' was filled * times in one cold burst, * reads missed it before "
                "the first fill was visible (max_fills=1)*",
            ]
        )
    assert "Traceback" not in result.stdout.str()


def test_bursts_count_fills_not_writes() -> None:
    """The definition on synthetic events: one clock, so each case is exact; ``caller`` is who sent it."""

    def event(
        start: int, command: str, key: str, outcome: str, pipeline: int = 0, duration: int = 10, caller: int = 1
    ) -> Event:
        return Event(start, duration, command, (key,), (outcome,), pipeline, caller=caller)

    sequential = [event(0, "GET", "k", "miss"), event(20, "SET", "k", "write")]
    sequential += [event(40 + 20 * i, "GET", "k", "hit") for i in range(29)]
    sequential += [event(700, "SET", "k", "write"), event(720, "GET", "k", "hit")]  # a later update: no fill
    [burst] = find_bursts(sequential)
    assert (burst.readers, burst.writes, burst.fills) == (1, 2, 1)

    # Three readers miss before the first fill is visible (t=30); their three fills count, a hit between them too.
    herd = [event(t, "GET", "k", "miss", caller=caller) for caller, t in ((1, 0), (2, 5), (3, 10))]
    herd += [event(20, "SET", "k", "write", caller=1), event(31, "GET", "k", "hit", caller=1)]
    herd += [event(35, "SET", "k", "write", caller=2), event(36, "EXPIRE", "k", "write", caller=2)]
    herd += [event(40, "SET", "k", "write", caller=3)]
    [burst] = find_bursts(herd)
    assert (burst.readers, burst.fills) == (3, 3)

    # SET and EXPIRE in one pipeline: one fill; a delete closes the burst, the next miss opens another.
    piped = [event(0, "GET", "k", "miss", caller=1), event(1, "GET", "k", "miss", caller=2)]
    piped += [event(10, "SET", "k", "write", pipeline=7), event(10, "SET", "k", "write", pipeline=7)]
    piped += [event(30, "DEL", "k", "delete"), event(40, "GET", "k", "miss"), event(41, "GET", "other", "miss")]
    bursts = find_bursts(piped)
    assert [(b.key, b.readers, b.fills) for b in bursts] == [("k", 2, 1), ("k", 1, 0), ("other", 1, 0)]
    assert [b.key for b in find_bursts(piped, "oth*")] == ["other"]

    # A miss after the fill became visible (the key expired): a new burst, not a reader of the old one.
    expired = [event(0, "GET", "k", "miss"), event(10, "SET", "k", "write"), event(50, "GET", "k", "miss")]
    assert [(b.readers, b.fills) for b in find_bursts(expired)] == [(1, 1), (1, 0)]


def test_an_update_after_a_hit_is_not_a_fill_and_a_loader_fills_for_its_readers() -> None:
    """Who wrote decides: a caller whose latest read of the key hit is updating it, one whose latest
    read missed is filling it; a writer that never read the key fills for a reader still waiting."""

    def event(start: int, command: str, outcome: str, caller: int) -> Event:
        return Event(start, 10, command, ("k",), (outcome,), 0, caller=caller)

    # A lease: caller 1 fills; callers 2 and 3 poll (misses before the fill was visible), then hit.
    lease = [event(0, "GET", "miss", 1), event(1, "GET", "miss", 2), event(2, "GET", "miss", 3)]
    lease += [event(20, "SET", "write", 1), event(25, "GET", "miss", 2), event(26, "GET", "miss", 3)]
    lease += [event(35, "GET", "hit", 2), event(36, "GET", "hit", 3)]
    # ... then a write-through update, by a caller that did not read the key and by one that hit it.
    updated = lease + [event(100, "SET", "write", 9), event(110, "SET", "write", 2)]
    [burst] = find_bursts(updated)
    assert (burst.readers, burst.writes, burst.fills) == (5, 3, 1)

    # A slow reader's fill after another caller's hit is still a fill of the cold key: the stampede.
    late = [event(0, "GET", "miss", 1), event(5, "GET", "miss", 2), event(20, "SET", "write", 1)]
    late += [event(31, "GET", "hit", 1), event(40, "SET", "write", 2)]
    assert [(b.readers, b.fills) for b in find_bursts(late)] == [(2, 2)]

    # Readers that hand the load to a loader (another thread or task): its writes fill for them, one each.
    handed = [event(t, "GET", "miss", caller) for t, caller in ((0, 1), (1, 2), (2, 3))]
    handed += [event(20 + t, "SET", "write", 9) for t in range(4)]
    assert [(b.readers, b.fills) for b in find_bursts(handed)] == [(3, 3)]
    # ... but not once its readers have seen the value.
    served = [event(0, "GET", "miss", 1), event(1, "GET", "miss", 2), event(20, "SET", "write", 9)]
    served += [event(40, "GET", "hit", 1), event(41, "GET", "hit", 2), event(50, "SET", "write", 9)]
    assert [(b.readers, b.fills) for b in find_bursts(served)] == [(2, 1)]


def test_bench_that_never_makes_the_cache_cold_fails(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_cold="""
        import pytest
        from cache_layer import Source, naive_get

        @pytest.mark.cache_stampede
        def test_cold_does_nothing(cache_bench, cache_redis):
            source = Source(delay=0)
            cache_bench.stampede(lambda: naive_get(cache_redis, "k", source), cold=lambda: None, rounds=2)

        @pytest.mark.cache_stampede
        def test_no_reads(cache_redis):
            cache_redis.set("k", "v")
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert (
        "\ncache_stampede: in round(s) [1, 2] of cache_bench.stampede no read missed: cold() must empty the keys "
        "call() reads (delete them, or flush the test's database)\n" in out
    )
    assert (
        "\ncache_stampede: no read of any key missed, so no cold burst was observed; read keys through the cache "
        "while they are cold, e.g. cache_bench.stampede(call, cold)\n" in out
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("cache_stampede(0)", "@pytest.mark.cache_stampede: argument 'max_fills' must be a whole number >= 1, got 0"),
        (
            "cache_stampede(1.5)",
            "@pytest.mark.cache_stampede: argument 'max_fills' must be a whole number >= 1, got 1.5",
        ),
        (
            "cache_stampede(pattern='')",
            "@pytest.mark.cache_stampede: argument 'pattern' must be a non-empty glob string such as 'user:*', got ''",
        ),
        (
            "cache_stampede(fills=2)",
            "@pytest.mark.cache_stampede: unknown argument 'fills'; signature cache_stampede(max_fills=1, *, pattern='*')",
        ),
        (
            "cache_stampede(1, 2)",
            "@pytest.mark.cache_stampede: takes 1 positional argument(s), got 2; signature "
            "cache_stampede(max_fills=1, *, pattern='*')",
        ),
    ],
)
def test_bad_marker_arguments_are_one_line_errors(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.{marker}
        def test_it(cache_redis):
            cache_redis.get("k")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "cache_bench.stampede(call, cold, concurrency=1)",
            "ValueError: cache_bench.stampede: concurrency must be a whole number >= 2, got 1",
        ),
        (
            "cache_bench.stampede(call, cold, rounds=0)",
            "ValueError: cache_bench.stampede: rounds must be a whole number >= 1, got 0",
        ),
        (
            "cache_bench.stampede(call, None)",
            "TypeError: cache_bench.stampede: 'call' and 'cold' must be callables taking no arguments",
        ),
        (
            "cache_bench.stampede(call, cold, source=42)",
            "TypeError: cache_bench.stampede: 'source' must be a bound method (store.query), a module-level function, "
            "or (owner, 'attribute'), got 42",
        ),
        (
            "cache_bench.stampede(call, cold, source=lambda key: key)",
            "TypeError: cache_bench.stampede: cannot replace source <function * where the application finds it; pass "
            "a bound method (store.query), a module-level function, or (owner, 'attribute')",
        ),
        (
            "cache_bench.load(call, source=(object(), 'nothing'))",
            "TypeError: cache_bench.load: source (<object object at *>, 'nothing') does not name a callable attribute; "
            "expected a bound method (store.query), a module-level function, or (owner, 'attribute')",
        ),
        (
            "cache_bench.stampede(async_call, cold)",
            "TypeError: cache_bench.stampede: 'call' returned an awaitable; pass async def functions and await "
            "cache_bench.stampede(...)",
        ),
    ],
)
def test_bad_bench_arguments_are_one_line_errors(pytester: pytest.Pytester, call: str, message: str) -> None:
    pytester.makepyfile(
        test_bad=f"""
        def test_it(cache_bench, cache_redis):
            call = lambda: cache_redis.get("k")
            cold = lambda: cache_redis.delete("k")

            async def get():
                return None

            async_call = lambda: get()
            {call}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E   *{message}"])


def test_source_counting_finds_methods_functions_and_attributes(pytester: pytest.Pytester) -> None:
    """A bound method is replaced on its instance, a function on its module, (owner, name) as given; each is
    restored afterwards. load(source=) reports loads per request."""
    pytester.makepyfile(
        db="""
        calls = []

        def query(key):
            calls.append(key)
            return key.encode()


        class Store:
            def fetch(self, key):
                return query(key)
        """,
        test_source="""
        import db


        def cached(client, key, load):
            value = client.get(key)
            if value is None:
                value = load(key)
                client.set(key, value)
            return value


        def test_function_and_method(cache_bench, cache_redis):
            store = db.Store()
            run = cache_bench.load(lambda: cached(cache_redis, "k", lambda key: db.query(key)), concurrency=2,
                                   requests=40, source=db.query)
            assert run.source_loads == len(db.calls) and run.source_loads_per_request == run.source_loads / 40
            assert "source loads" in run.describe()
            assert db.query.__name__ == "query" and not hasattr(db.query, "__wrapped__")  # restored
            cache_redis.delete("k")
            run = cache_bench.load(lambda: cached(cache_redis, "k", store.fetch), concurrency=1, requests=10,
                                   source=store.fetch)
            assert run.source_loads == 1
            assert "fetch" not in vars(store)  # restored: found on the class again
            report = cache_bench.stampede(lambda: cached(cache_redis, "k", store.fetch), lambda: cache_redis.delete("k"),
                                          concurrency=2, rounds=2, source=(store, "fetch"))
            assert report.source_loads is not None and len(report.source_loads) == 2
        """,
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_max_fills_and_errors_targets(project: pytest.Pytester) -> None:
    project.makefile(
        ".toml",
        pyproject=textwrap.dedent(
            """
            [[tool.cachecheck.target]]
            name = "naive"
            pattern = "naive:*"
            max_fills = 1
            errors = 0

            [[tool.cachecheck.target]]
            name = "lease"
            pattern = "good:*"
            max_fills = 1
            errors = 0

            [[tool.cachecheck.target]]
            name = "herd"
            pattern = "herd:*"
            max_fills = 1

            [[tool.cachecheck.target]]
            name = "untested"
            pattern = "other:*"
            max_fills = 1
            """
        ),
    )
    project.makepyfile(
        test_run_targets="""
        import pytest
        import redis
        from cache_layer import Source, lease_get, naive_get

        def test_naive(cache_bench, cache_redis):
            source = Source()
            cache_bench.stampede(lambda: naive_get(cache_redis, "naive:1", source), lambda: cache_redis.delete("naive:1"),
                                 concurrency=5, rounds=1)
            cache_redis.set("naive:str", "text")
            with pytest.raises(redis.ResponseError):
                cache_redis.incr("naive:str")

        @pytest.mark.cache_stampede
        def test_lease(cache_redis, cache_server):
            source = Source()
            from cache_layer import run_threads
            run_threads(6, lambda: lease_get(cache_redis, "good:1", source))
            # A transaction that WATCH aborted ran nothing and failed nothing: not an error.
            with cache_redis.pipeline() as pipe:
                pipe.watch("good:watched")
                cache_server.client().set("good:watched", "changed")
                pipe.multi()
                pipe.set("good:watched", "mine")
                with pytest.raises(redis.WatchError):
                    pipe.execute()

        def test_own_threads_without_the_marker(cache_redis):  # record mode: the target judges every test
            from cache_layer import run_threads
            source = Source()
            run_threads(6, lambda: naive_get(cache_redis, "herd:1", source))

        def test_sequential_reads_test_nothing(cache_redis):  # bursts of one reader: no data, not "met"
            source = Source(delay=0)
            for _ in range(10):
                naive_get(cache_redis, "other:1", source)
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--cache-targets")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "naive: max_fills*<= 1*missed",
            "naive: errors*1*<= 0*missed",
            "lease: max_fills*1*<= 1*met",
            "lease: errors*0*<= 0*met",
            "herd: max_fills*<= 1*missed",
            "untested: max_fills*-*<= 1*no data",
            "cachecheck: 4 of 6 targets missed:",
            "  naive max_fills * (target <= 1): missed",
            "    1 measurement(s); worst * in test_run_targets.py::test_naive",
            "  naive errors 1 (target <= 0): missed",
            "    1 of 12 commands failed",
            "  herd max_fills * (target <= 1): missed",
            "    1 measurement(s); worst * in",
            "    test_run_targets.py::test_own_threads_without_the_marker",
            "  untested max_fills - (target <= 1): no data",
            "    the run never measured max_fills for keys matching 'other:*'; a test in",
            "    which several callers read a cold key at once (cache_bench.stampede(...)",
            "    makes one) would",
        ],
        consecutive=False,
    )


def test_without_observation_only_the_source_is_counted(project: pytest.Pytester) -> None:
    """--cache-no-monitor: fills cannot be counted, so the bench needs source= and says so; the marker errors."""
    project.makepyfile(
        test_blind="""
        import pytest
        from cache_layer import Source, naive_get

        def test_source_only(cache_bench, cache_redis):
            source = Source()
            report = cache_bench.stampede(lambda: naive_get(cache_redis, "k", source), lambda: cache_redis.delete("k"),
                                          concurrency=4, rounds=2, source=source.load)
            assert report.fills == () and report.max_fills is None
            assert report.source_loads is not None and len(report.source_loads) == 2 and min(report.source_loads) > 1

        def test_no_source(cache_bench, cache_redis):
            cache_bench.stampede(lambda: cache_redis.get("k"), lambda: cache_redis.delete("k"))

        @pytest.mark.cache_stampede
        def test_marker(cache_redis):
            cache_redis.get("k")
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--cache-no-monitor")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.cache_stampede needs observed commands, but the run has --cache-no-monitor*",
            "E   *RuntimeError: cache_bench.stampede counts fills from observed commands, which --cache-no-monitor "
            "switches off; drop that option, or pass source= to count the source's loads",
        ],
        consecutive=False,
    )
