"""fastapi-cache2: its TTL+GET pipeline is counted per command; ``clear`` runs KEYS inside Lua."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("fastapi_cache")
httpx = pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402
from fastapi_cache import FastAPICache  # noqa: E402
from fastapi_cache.backends.redis import RedisBackend  # noqa: E402
from fastapi_cache.decorator import cache  # noqa: E402
from redis import asyncio as aioredis  # noqa: E402


def make_app(computed: list[int]) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item}")
    @cache(expire=60, namespace="items")
    async def read_item(item: int) -> dict[str, int]:
        computed.append(item)
        return {"item": item}

    return app


async def drive(url: str, items: list[int], computed: list[int], *, clear: bool = False) -> None:
    client = aioredis.from_url(url)
    FastAPICache.init(RedisBackend(client), prefix="compat")
    transport = httpx.ASGITransport(app=make_app(computed))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        for item in items:
            response = await http.get(f"/items/{item}")
            assert response.json() == {"item": item}
    if clear:
        await FastAPICache.clear(namespace="items")
    await client.aclose()


def test_pipelined_reads_are_counted_per_command(real_redis: Any, cache_monitor: Any, workload: list[int]) -> None:
    computed: list[int] = []
    with real_redis.counting() as server:
        asyncio.run(drive(real_redis.url, workload, computed))

    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses) == (180, 20)
    assert len(computed) == stats.misses
    pipelines: dict[int, list[str]] = {}
    for event in cache_monitor.events:
        if event.pipeline_id:
            pipelines.setdefault(event.pipeline_id, []).append(event.command)
    assert len(pipelines) == len(workload)
    assert all(commands == ["TTL", "GET"] for commands in pipelines.values())
    # Redis also counts the TTL lookup as a keyspace read: twice the GET outcomes, exactly.
    assert (server.hits, server.misses) == (2 * stats.hits, 2 * stats.misses)
    assert server.calls["get"] == stats.commands["GET"] == len(workload)


def test_clear_runs_keys_inside_lua_seen_only_by_the_server(real_redis: Any, cache_monitor: Any) -> None:
    with real_redis.counting() as server:
        asyncio.run(drive(real_redis.url, [1, 2], [], clear=True))

    assert "KEYS" not in cache_monitor.stats().commands
    assert cache_monitor.stats().commands["EVAL"] == 1
    assert server.calls["keys"] == 1
