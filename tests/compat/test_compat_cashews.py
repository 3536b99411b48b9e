"""cashews: plain GET/MGET reads match the server; a soft-TTL expiry is a Redis hit the library treats as a miss."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

cashews = pytest.importorskip("cashews")


def test_read_through_hits_and_misses_equal_the_servers(
    real_redis: Any, cache_monitor: Any, workload: list[int]
) -> None:
    cache = cashews.Cache()
    cache.setup(real_redis.url, client_side=False, suppress=False)
    loaded: list[int] = []

    @cache(ttl="5m", key="user:{user}")
    async def load_user(user: int) -> dict[str, int]:
        loaded.append(user)
        return {"user": user}

    async def drive() -> list[Any]:
        for user in workload:
            assert await load_user(user) == {"user": user}
        found = await cache.get_many("user:1", "user:2", "user:404")
        await cache.close()
        return list(found)

    with real_redis.counting() as server:
        found = asyncio.run(drive())

    stats = cache_monitor.stats()
    assert found[2] is None and found[0] is not None
    assert len(loaded) == 20
    assert (stats.hits, stats.misses) == (180 + 2, 20 + 1)
    assert (stats.hits, stats.misses) == (server.hits, server.misses)


def test_soft_ttl_expiry_is_a_redis_hit_and_a_recomputation(real_redis: Any, cache_monitor: Any) -> None:
    cache = cashews.Cache()
    cache.setup(real_redis.url, client_side=False, suppress=False)
    computed: list[int] = []

    @cache.soft(ttl="5m", soft_ttl=timedelta(milliseconds=50), key="report:{day}")
    async def report(day: int) -> int:
        computed.append(day)
        return day

    async def drive() -> None:
        await report(1)
        await asyncio.sleep(0.1)  # past the soft TTL, well before the Redis TTL
        await report(1)
        await cache.close()

    with real_redis.counting() as server:
        asyncio.run(drive())

    stats = cache_monitor.stats()
    assert computed == [1, 1]  # the second call recomputed ...
    assert (stats.hits, stats.misses) == (1, 1)  # ... although Redis answered it: a soft miss counts as a hit
    assert (stats.hits, stats.misses) == (server.hits, server.misses)
