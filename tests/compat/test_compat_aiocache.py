"""aiocache: plain GET/MGET/EXISTS reads match the server; ``clear(namespace)`` issues a client-side KEYS."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

aiocache = pytest.importorskip("aiocache")


def test_read_through_hits_and_misses_equal_the_servers(
    real_redis: Any, cache_monitor: Any, workload: list[int]
) -> None:
    loaded: list[int] = []

    @aiocache.cached(
        cache=aiocache.RedisCache,
        endpoint=real_redis.host,
        port=real_redis.port,
        namespace="compat",
        ttl=300,
        key_builder=lambda function, user: f"user:{user}",
    )
    async def load_user(user: int) -> dict[str, int]:
        loaded.append(user)
        return {"user": user}

    async def drive() -> tuple[list[Any], bool]:
        for user in workload:
            assert await load_user(user) == {"user": user}
        cache = aiocache.RedisCache(endpoint=real_redis.host, port=real_redis.port, namespace="compat")
        found = await cache.multi_get(["user:1", "user:2", "user:404"])
        exists = await cache.exists("user:3")
        await cache.close()
        await load_user.cache.close()
        return found, exists

    with real_redis.counting() as server:
        found, exists = asyncio.run(drive())

    stats = cache_monitor.stats()
    assert found[2] is None and exists
    assert len(loaded) == 20
    assert (stats.hits, stats.misses) == (180 + 2 + 1, 20 + 1)
    assert (stats.hits, stats.misses) == (server.hits, server.misses)


def test_clear_of_a_namespace_issues_keys(real_redis: Any, cache_monitor: Any) -> None:
    async def drive() -> None:
        cache = aiocache.RedisCache(endpoint=real_redis.host, port=real_redis.port, namespace="compat")
        await cache.set("a", 1, ttl=60)
        await cache.clear(namespace="compat")
        await cache.close()

    with real_redis.counting() as server:
        asyncio.run(drive())

    assert cache_monitor.stats().commands["KEYS"] == 1 == server.calls["keys"]
