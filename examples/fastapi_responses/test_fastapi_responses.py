"""The FastAPI response-cache report as tests: load, invalidation, TTLs, outage, forbidden commands,
stampedes and database load, caught bugs."""

from __future__ import annotations

import random
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import pytest
from autus_api.main import ANALYTICS
from autus_api.store import Store
from conftest import REQUEST_MIX, Api

F = TypeVar("F", bound=Callable[..., Any])

# In-process load test: client, app and (on the fake backend) Redis share one interpreter,
# so command latency includes event-loop queueing: one stall of the loop delays every command in
# flight at once, which sets a p99 of 30 concurrent users (164 ms seen at a load average of 8).
# The report's "Avg 3ms" is a mean, which the machine's own round trip (probed in the same event
# loop, docs/timing-checks.md) estimates well; the ceiling leaves room for queueing.
REDIS_MEAN_CEILING_MS = 10
# The report's p99 of 10 ms is a response time. In-process it is mostly CPU queueing: measured
# 31-252 ms over 30 runs on 2 cores with load averages 3-12 (docs/examples.md). The ceiling, 4x
# the worst, catches requests stalling (e.g. on Redis's 2 s socket timeout), not a slow machine.
RESPONSE_P99_CEILING_MS = 1000


@pytest.mark.cache_hit_rate(0.85, pattern="autus:*")
@pytest.mark.cache_latency(mean_ms=REDIS_MEAN_CEILING_MS, pattern="autus:*")
@pytest.mark.cache_ttl(min_s=30, max_s=600, pattern="autus:*")
def test_30_concurrent_users_with_the_reports_request_mix(
    api_run: Any, cache_monitor: Any, record_property: Callable[[str, object], None]
) -> None:
    async def scenario(api: Api) -> tuple[Any, dict[str, Any]]:
        with cache_monitor.warmup():
            await api.seed()
            await api.load(users=30, requests_per_user=2, think_s=(0, 0.01))
        result = await api.load(users=30, requests_per_user=15, think_s=(0.1, 0.3))
        return result, await api.get("/cache/stats")

    result, stats = api_run(scenario)
    for fraction in (0.5, 0.95, 0.99, 0.999):
        record_property(f"response_p{fraction * 100:g}_ms", round(result.percentile_ms(fraction), 3))
    assert set(result.statuses) == {200}
    assert stats["cache_errors"] == 0
    assert stats["hit_rate_percent"] >= 85
    assert result.percentile_ms(0.99) <= RESPONSE_P99_CEILING_MS


@pytest.mark.cache_cost(round_trips=1)
def test_a_cached_response_costs_one_round_trip(api_run: Any, cache_bench: Any) -> None:
    """Counts, not clocks: a cached GET reads one key, on any machine (a per-endpoint-call companion of the
    report's response times)."""

    async def scenario(api: Api) -> Any:
        await api.seed()
        await api.get("/analytics/stats")  # cache it

        async def cached_stats() -> Any:
            return await api.get("/analytics/stats")

        return await cache_bench.cost(cached_stats, calls=5)

    cost = api_run(scenario)
    assert cost.worst.names == {"GET": 1}


@pytest.mark.cache_no_stale_reads
@pytest.mark.cache_invalidation(50)
@pytest.mark.cache_forbid("KEYS", "FLUSHDB", "FLUSHALL")
def test_post_invalidates_the_analytics_responses(
    api_run: Any, cache_consistency: Any, cache_invalidation: Any
) -> None:
    async def scenario(api: Api) -> None:
        with cache_consistency.write("stats", 0):  # the seed's state: no events tracked yet
            await api.seed()
        for round_number in range(5):
            before = await api.get("/analytics/stats")
            with cache_consistency.read("stats") as read:
                read.value = before["events"]
            with cache_consistency.write("stats", before["events"] + 1):
                await api.post("/analytics/track", {"name": f"click-{round_number}"})
            after = await api.get("/analytics/stats")
            with cache_consistency.read("stats") as read:
                read.value = after["events"]
            assert after["events"] == before["events"] + 1

        async def track() -> None:
            await api.post("/analytics/track", {"name": "measured"})

        async def events() -> int:
            return int((await api.get("/analytics/stats"))["events"])

        visibility = await cache_invalidation.measure(write=track, read=events, expect=await events() + 1)
        assert visibility.visible

    api_run(scenario)
    assert cache_consistency.check().stale_reads == 0


def drive_posts_and_gets(api_run: Any, cache_consistency: Any, **app_options: Any) -> dict[str, Any]:
    """Race GET /analytics/events against POST /analytics/track with the driver's default delays.

    One key, the newest event: writes POST unique names, reads GET the newest one. The store
    answers in 10 ms (the report's uncached requests took 40-100 ms), which widens the window
    between a miss's query and its fill enough for 400 operations to hit the race in every run.
    """

    async def scenario(api: Api) -> dict[str, Any]:
        async def newest_event(_: str) -> str | None:
            events = (await api.get("/analytics/events"))["events"]
            return events[-1]["name"] if events else None

        async def track(_: str, name: str) -> None:
            await api.post("/analytics/track", {"name": name})

        await cache_consistency.run(  # async def callables: a coroutine, run on this loop
            read=newest_event,
            write=track,
            keys=["events"],
            threads=4,
            ops=400,
            read_ratio=0.75,
            truth=lambda _: api.app.state.store.events[-1]["name"],
        )
        return await api.get("/cache/stats")  # type: ignore[no-any-return]

    return api_run(scenario, store=Store(query_delay_s=0.01), **app_options)  # type: ignore[no-any-return]


# The driven apps get their own key prefixes: a write-heavy mix is not the report's load, so
# it stays out of the autus:* hit-rate target ("driven responses" in targets.toml instead).
@pytest.mark.cache_no_stale_reads
def test_no_stale_reads_under_concurrent_posts_and_gets(api_run: Any, cache_consistency: Any) -> None:
    stats = drive_posts_and_gets(api_run, cache_consistency, key_prefix="autus-driver")
    assert stats["cache_fills_skipped"] > 0  # the race happened, and the checked fill did not cache the old answer


# Caught bug #2: the report's fill (GET, compute, SET) writes back a response computed
# before a concurrent POST's invalidation; it is then served, stale, for up to its TTL.
# The fix (the app's default, test above): WATCH the category's generation key before
# computing, INCR it on invalidation, and fill in MULTI/EXEC, which aborts if it changed.
@pytest.mark.xfail(strict=True, raises=pytest.fail.Exception, reason="GET-compute-SET fill races POST invalidation")
@pytest.mark.cache_no_stale_reads
def test_unchecked_fill_serves_stale_responses(api_run: Any, cache_consistency: Any) -> None:
    drive_posts_and_gets(api_run, cache_consistency, checked_fills=False, key_prefix="autus-racy")


#: Every cached GET route, with a path for the parametrised ones.
ENDPOINTS = (
    "/analytics/stats",
    "/analytics/pages",
    "/analytics/api-calls",
    "/analytics/events",
    "/devices/list",
    "/devices/online",
    "/devices/stats",
    "/devices/get/device-1",
    "/digital-twin/list",
    "/digital-twin/get/boiler-1",
    "/god/overview",
    "/health",
)

#: The report's caching strategy table: endpoint (as a response key glob) and its TTL in seconds.
REPORT_TTLS = (
    ("autus:analytics:/analytics/stats", 300),
    ("autus:analytics:/analytics/pages", 300),
    ("autus:analytics:/analytics/api-calls", 300),
    ("autus:analytics:/analytics/events", 60),
    ("autus:devices:/devices/list", 120),
    ("autus:devices:/devices/get/*", 120),
    ("autus:devices:/devices/online", 60),
    ("autus:devices:/devices/stats", 120),
    ("autus:twin:/digital-twin/*", 600),
    ("autus:god:/god/*", 300),
    ("autus:health:/health", 30),
)


#: The plugin estimates the TTL a key was given from its PTTL and the time since its write; a
#: pipelined fill's write time is approximate, so allow 1 s. The table's entries are 30 s apart.
TTL_TOLERANCE_S = 1


def each_ttl_in_the_report(test: F) -> F:
    """One ``cache_ttl(pattern=endpoint)`` per table row, bounds ttl +- 1 s; a row with no write fails too."""
    for pattern, seconds in REPORT_TTLS:
        bounds = {"min_s": seconds - TTL_TOLERANCE_S, "max_s": seconds + TTL_TOLERANCE_S}
        test = pytest.mark.cache_ttl(pattern=pattern, **bounds)(test)
    return test


@each_ttl_in_the_report
def test_every_cached_response_has_its_endpoints_ttl(api_run: Any, cache_monitor: Any) -> None:
    async def scenario(api: Api) -> None:
        with cache_monitor.warmup():
            await api.seed()
        for path in ENDPOINTS:
            await api.get(path)

    api_run(scenario)
    written = {key for event in cache_monitor.events if event.outcome == "write" for key in event.keys}
    assert len(written) == len(ENDPOINTS)
    assert [key for key in written if not any(fnmatchcase(key, pattern) for pattern, _ in REPORT_TTLS)] == []


# Its own key prefix: the injected outage's errors are on purpose, and the "responses" target
# holds the report's "cache errors: 0" for the load it measured.
def test_every_endpoint_answers_correctly_while_redis_is_down(api_run: Any, cache_faults: Any) -> None:
    async def scenario(api: Api) -> None:
        await api.seed()
        healthy = {path: await api.get(path) for path in ENDPOINTS}
        with cache_faults.outage():
            await api.post("/devices/data", {"name": "device-1", "online": False})  # a write while down, too
            down = {path: await api.get(path) for path in ENDPOINTS}
            stats = await api.get("/cache/stats")
        assert stats["cache_errors"] > 0
        assert down["/devices/get/device-1"] == {"device": {"name": "device-1", "online": False}}
        unchanged = [path for path in ENDPOINTS if path.startswith(("/analytics", "/digital-twin", "/health"))]
        assert {path: down[path] for path in unchanged} == {path: healthy[path] for path in unchanged}
        assert down["/god/overview"]["devices"]["online"] == healthy["/god/overview"]["devices"]["online"] - 1
        recovered = await api.get("/devices/get/device-1")
        assert recovered == down["/devices/get/device-1"]

    api_run(scenario, key_prefix="autus-outage")


# The caught bug: SCAN-based pattern invalidation walks the whole keyspace, so its cost grows
# with the number of cached keys (O(N)), although the report called it "efficient bulk
# clearing". The fix is the other example's design: a namespace version per prefix
# (``autus:analytics:v<N>:...``) bumped with one INCR on POST, old keys left to their TTL.
@pytest.mark.xfail(
    strict=True, raises=pytest.fail.Exception, reason="SCAN-based prefix:* invalidation is O(N) in the keyspace size"
)
@pytest.mark.cache_invalidation(o1=True)
def test_pattern_invalidation_is_o1(api_run: Any, cache_invalidation: Any, cache_redis_async: Any) -> None:
    async def scenario(api: Api) -> Any:
        async def populate(size: int) -> None:
            await api.app.state.cache.client.flushdb()
            for start in range(0, size, 5_000):
                chunk = range(start, min(size, start + 5_000))
                await api.app.state.cache.client.mset({f"autus:analytics:/analytics/pages?p={i}": b"{}" for i in chunk})

        async def invalidate() -> None:
            await api.post("/analytics/track", {"name": "invalidate"})

        return await cache_invalidation.scaling(
            populate=populate, invalidate=invalidate, sizes=(100, 1_000, 10_000), repeats=3
        )

    api_run(scenario)


# ---------------------------------------------------------------- stampedes and database load
# The report's decorator has no single flight: when a response is cold (first request, or just
# after a POST invalidated it), every request that misses it computes it. The stampede and the
# database load are measured on their own key prefixes, outside the "responses" target (these
# loads are all cold misses on purpose). ``single_flight=True`` is the fix: a SET NX lease per key.


def first_requests(api_run: Any, cache_bench: Any, **app_options: Any) -> Any:
    """20 concurrent first requests of GET /analytics/stats, 3 times; the store answers in 50 ms
    (the report's uncached requests took 40-100 ms), so every caller misses before the first fill."""

    async def scenario(api: Api) -> Any:
        await api.seed()
        response_key = api.app.state.cache.response_key(ANALYTICS, "/analytics/stats", "")

        async def first_request() -> None:
            (await api.http.get("/analytics/stats")).raise_for_status()

        async def cold() -> None:
            await api.app.state.cache.client.delete(response_key)

        return await cache_bench.stampede(
            first_request, cold, concurrency=20, rounds=3, source=api.app.state.store.answer
        )

    return api_run(scenario, store=Store(query_delay_s=0.05), **app_options)


# Caught bug #3: 20 concurrent first requests compute the response 20 times (fastapi-cache #203, #419).
@pytest.mark.xfail(strict=True, raises=pytest.fail.Exception, reason="@cached_response has no single flight")
@pytest.mark.cache_stampede(max_fills=1, pattern="autus-herd:*")
def test_concurrent_first_requests_compute_the_response_once(api_run: Any, cache_bench: Any) -> None:
    report = first_requests(api_run, cache_bench, key_prefix="autus-herd")
    assert report.fills == report.source_loads  # the plugin's fills are the store's queries


@pytest.mark.cache_stampede(max_fills=1, pattern="autus-lease:*")
def test_single_flight_computes_a_cold_response_once(api_run: Any, cache_bench: Any) -> None:
    report = first_requests(api_run, cache_bench, key_prefix="autus-lease", single_flight=True)
    assert report.source_loads == (1, 1, 1)


#: The report: "Database load: 8.8% of requests (only cache misses)".
REPORT_DATABASE_LOAD = 0.088


def database_load(api_run: Any, cache_bench: Any, cache_monitor: Any, **app_options: Any) -> Any:
    """The report's request mix from 30 users that do not pause (``cache_bench.load``), store queries counted.

    Every response is cached before the run starts: the load counted is what POSTs' invalidations
    cost. At the report's pace (0.1-0.3 s pauses) the report's decorator measured 6.7% and 8.7%,
    too close to the claim for a verdict either way; without pauses each invalidation is followed
    by a herd of misses that all query the store.
    """
    paths = [(method, path) for method, path, _ in REQUEST_MIX]
    weights = [weight for _, _, weight in REQUEST_MIX]

    async def scenario(api: Api) -> Any:
        with cache_monitor.warmup():
            await api.seed()
            for method, path in paths:
                if method == "GET":
                    await api.get(path)
        rng = random.Random(1)

        async def request() -> None:
            method, path = rng.choices(paths, weights)[0]
            if method == "GET":
                response = await api.http.get(path)
            else:
                response = await api.http.post(path, json={"name": "load"})
            response.raise_for_status()

        return await cache_bench.load(request, concurrency=30, requests=600, source=api.app.state.store.answer)

    return api_run(scenario, **app_options)


# Caught bug #4: without single flight the claim holds only while users pause (measured 13.7-23%).
@pytest.mark.xfail(strict=True, raises=AssertionError, reason="invalidation herds: every miss queries the store")
def test_database_load_is_at_most_the_reports(api_run: Any, cache_bench: Any, cache_monitor: Any) -> None:
    run = database_load(api_run, cache_bench, cache_monitor, key_prefix="autus-herd")
    assert run.errors == 0
    assert run.source_loads_per_request <= REPORT_DATABASE_LOAD, run.describe()


def test_single_flight_keeps_the_database_load_under_the_reports(
    api_run: Any, cache_bench: Any, cache_monitor: Any
) -> None:
    run = database_load(api_run, cache_bench, cache_monitor, key_prefix="autus-lease", single_flight=True)
    assert run.errors == 0
    assert run.source_loads_per_request <= REPORT_DATABASE_LOAD, run.describe()
