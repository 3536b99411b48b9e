"""``cache_consistency.run`` with ``async def`` callables follows the one sync/async convention.

Like ``cache_bench.speedup`` and ``cache_invalidation.measure``, it returns a coroutine that
the test awaits on its own loop (there is no ``run_async``); the arguments are still checked at
the call. End to end on ``fake`` and ``server``: a racy ``redis.asyncio`` cache-aside fails the
marker, a locked one passes.
"""

from __future__ import annotations

import pytest
from backend_support import BACKENDS

LAYER = """
import asyncio


class AsyncCacheAside:
    '''Cache-aside over redis.asyncio; ``locked`` serialises each key's fill and write (correct).'''

    def __init__(self, client, locked=False):
        self.r, self.rows, self.locked, self.locks = client, {}, locked, {}

    async def read(self, key):
        value = await self.r.get(f"acache:{key}")
        if value is None:
            async with self.locks.setdefault(key, asyncio.Lock()) if self.locked else _nothing():
                value = self.rows.get(key)
                await self.r.set(f"acache:{key}", value)
        return value

    async def write(self, key, value):
        async with self.locks.setdefault(key, asyncio.Lock()) if self.locked else _nothing():
            self.rows[key] = value
            await self.r.delete(f"acache:{key}")


class _nothing:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False
"""

TESTS = """
import asyncio
import inspect

import pytest
from pytest_cachecheck import ConsistencyReport
from async_layer import AsyncCacheAside


@pytest.mark.cache_no_stale_reads
def test_racy(cache_consistency, cache_redis_async):
    layer = AsyncCacheAside(cache_redis_async)

    async def scenario():
        return await cache_consistency.run(layer.read, layer.write, keys=4, ops=1500, seed=7)

    report = asyncio.run(scenario())
    assert isinstance(report, ConsistencyReport) and report.amplified and report.seed == 7


@pytest.mark.cache_no_stale_reads
def test_locked(cache_consistency, cache_redis_async):
    layer = AsyncCacheAside(cache_redis_async, locked=True)

    async def scenario():
        pending = cache_consistency.run(layer.read, layer.write, keys=4, ops=600, threads=8)
        assert inspect.iscoroutine(pending)  # nothing ran yet: it runs on the loop that awaits it
        return await pending

    report = asyncio.run(scenario())
    assert report.ok and report.reads > 400
    assert {op.process for op in report.history if op.kind == "read"} == {f"task-{n}" for n in range(1, 9)}


def test_arguments_are_checked_at_the_call(cache_consistency, cache_redis_async):
    layer = AsyncCacheAside(cache_redis_async)
    with pytest.raises(ValueError, match="threads must be a whole number >= 1, got 0"):
        cache_consistency.run(layer.read, layer.write, threads=0)  # raises before any coroutine exists


def test_lambda_around_async_in_an_async_test(cache_consistency, cache_redis_async):
    layer = AsyncCacheAside(cache_redis_async)
    rows = {}

    async def scenario():
        await cache_consistency.run(read=lambda key: layer.read(key), write=rows.__setitem__, ops=50)

    asyncio.run(scenario())
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_await_run_with_async_callables_finds_the_stale_read(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(async_layer=LAYER, test_cc_await=TESTS)
    result = pytester.runpytest(f"--cache-backend={backend}", "-W", "error::RuntimeWarning")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_racy _*",
            "cache_no_stale_reads: [1-9]* stale*",
            "*task-*redis: *acache:*",
            "*seed 7: pass seed=7 to cache_consistency.run() to replay these delays*",
            "*_ test_lambda_around_async_in_an_async_test _*",
            "E *TypeError: cache_consistency.run: read=<lambda> returned an awaitable (coroutine), which run() "
            "would never await; pass an `async def` function as read= "
            "(then `await cache_consistency.run(...)` in an async test)",
        ]
    )
    output = result.stdout.str()
    summary = output.split("short test summary info")[1]
    assert "test_locked" not in summary and "test_arguments_are_checked_at_the_call" not in summary
    assert "never awaited" not in output.replace("would never await", "")


FORGOTTEN = """
import asyncio

from async_layer import AsyncCacheAside


def test_forgot_await_on_consistency(cache_consistency, cache_redis_async):
    layer = AsyncCacheAside(cache_redis_async)
    cache_consistency.run(layer.read, layer.write, keys=4, ops=200)  # a coroutine, never awaited


def test_forgot_await_on_bench(cache_bench, cache_redis_async):
    async def call():
        await cache_redis_async.get("k")

    async def cold():
        await cache_redis_async.delete("k")

    cache_bench.speedup(call, cold=cold)


def test_awaited(cache_bench, cache_redis_async):
    async def call():
        await cache_redis_async.get("k")

    asyncio.run(cache_bench.cost(call))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_coroutine_nobody_awaited_fails_the_test(pytester: pytest.Pytester, backend: str) -> None:
    """A sync test that calls a fixture method with ``async def`` callables and drops the coroutine
    measured nothing: it fails with the line that says how to await it, and Python's own
    "never awaited" RuntimeWarning is not added on top (the coroutine is closed)."""
    pytester.makepyfile(async_layer=LAYER, test_forgotten=FORGOTTEN)
    result = pytester.runpytest(f"--cache-backend={backend}", "-W", "error::RuntimeWarning")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_forgot_await_on_consistency _*",
            "cache_consistency.run(...) returned a coroutine that was never awaited, so it measured nothing: in an "
            "async test write `await cache_consistency.run(...)`, in a sync test "
            "`asyncio.run(cache_consistency.run(...))`",
            "*_ test_forgot_await_on_bench _*",
            "cache_bench.speedup(...) returned a coroutine that was never awaited*",
        ]
    )
    assert "RuntimeWarning" not in result.stdout.str()


@pytest.mark.parametrize("bound", [float("inf"), True, -1])
def test_a_staleness_bound_follows_the_markers_number_rule(bound: object) -> None:
    """``max_staleness_ms`` of ``run()`` and ``check()``: an infinite bound would check nothing, a bool is no number."""
    from pytest_cachecheck import CacheConsistency

    with pytest.raises(ValueError, match=r"^cache_consistency: max_staleness_ms must be a number >= 0, got "):
        CacheConsistency(None).check(max_staleness_ms=bound)  # type: ignore[arg-type]
    assert CacheConsistency(None).check(max_staleness_ms=5).ok
