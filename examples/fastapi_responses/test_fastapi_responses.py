"""The FastAPI response-cache report, as tests: load, invalidation, outage, forbidden commands, and a caught bug."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Api

# In-process load test: client, app and (on the fake backend) Redis share one interpreter,
# so command latency includes event-loop queueing. The ceiling leaves room for that.
REDIS_P99_CEILING_MS = 50


@pytest.mark.cache_hit_rate(0.85, pattern="autus:*")
@pytest.mark.cache_latency(p99_ms=REDIS_P99_CEILING_MS, pattern="autus:*")
@pytest.mark.cache_ttl(min_s=30, max_s=600, pattern="autus:*")
def test_30_concurrent_users_with_the_reports_request_mix(api_run: Any, cache_monitor: Any) -> None:
    async def scenario(api: Api) -> tuple[Any, dict[str, Any]]:
        with cache_monitor.warmup():
            await api.seed()
            await api.load(users=30, requests_per_user=2, think_s=(0, 0.01))
        result = await api.load(users=30, requests_per_user=15, think_s=(0.1, 0.3))
        return result, await api.get("/cache/stats")

    result, stats = api_run(scenario)
    assert set(result.statuses) == {200}
    assert stats["cache_errors"] == 0
    assert stats["hit_rate_percent"] >= 85


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


ENDPOINTS = (
    "/analytics/stats",
    "/analytics/pages",
    "/analytics/events",
    "/devices/list",
    "/devices/online",
    "/devices/stats",
    "/devices/get/device-1",
    "/god/overview",
    "/health",
)


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
        unchanged = [path for path in ENDPOINTS if path.startswith(("/analytics", "/health"))]
        assert {path: down[path] for path in unchanged} == {path: healthy[path] for path in unchanged}
        assert down["/god/overview"]["devices"]["online"] == healthy["/god/overview"]["devices"]["online"] - 1
        recovered = await api.get("/devices/get/device-1")
        assert recovered == down["/devices/get/device-1"]

    api_run(scenario)


# The caught bug: SCAN-based pattern invalidation walks the whole keyspace, so its cost grows
# with the number of cached keys (O(N)), although the report called it "efficient bulk
# clearing". The fix is the other example's design: a namespace version per prefix
# (``autus:analytics:v<N>:...``) bumped with one INCR on POST, old keys left to their TTL.
@pytest.mark.xfail(strict=True, reason="SCAN-based prefix:* invalidation is O(N) in the keyspace size")
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
