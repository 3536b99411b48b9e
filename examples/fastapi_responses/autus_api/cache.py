"""The response cache: ``@cached_response`` over ``redis.asyncio``, TTL table, ``prefix:*`` invalidation, counters.

Graceful degradation: every Redis error is counted and the endpoint computes its answer
from the source instead, so the API keeps answering (slower) while Redis is down.

Fills are checked: a miss WATCHes its category's generation key before computing the
response and fills only if no invalidation bumped it meanwhile. Without that check, a
GET that computed the old answer can write it back after a POST's invalidation, and
that stale response is then served until its TTL runs out (``checked_fill=False``
keeps the racy fill, for the example's caught-bug test).

Single flight (``single_flight=True``): the report's decorator has none, so N concurrent
first requests of a cold response compute it N times (the example's stampede test). With
it, a miss takes a ``SET NX`` lease on the key; one caller computes and fills, the others
poll the key every 5 ms until the fill lands.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import redis.asyncio
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

P = ParamSpec("P")
R = TypeVar("R")

KEY_PREFIX = "autus"


class CacheConfig:
    """Seconds each endpoint's response may be served from the cache (the report's table)."""

    ANALYTICS_STATS = 300
    ANALYTICS_EVENTS = 60
    DEVICES = 120
    DEVICES_ONLINE = 60
    DEVICE_STATS = 120
    DIGITAL_TWIN = 600
    GOD = 300
    HEALTH = 30


#: The generation keys' TTL. Any value longer than a computation works (WATCH sees the INCR,
#: not the number); this one sits inside the table's 30-600 s, away from both ends, so TTL
#: checks over ``autus:*`` hold for these keys too.
GENERATION_TTL = 300

#: A lease outlasts any computation (the store answers in milliseconds; Redis's socket timeout is
#: 2 s). A holder that dies frees it after this long; its waiters then compute for themselves.
LEASE_MS = 5_000
LEASE_POLL_S = 0.005
#: Delete the lease only if it is still this caller's (after LEASE_MS another caller may hold it).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass
class CacheCounters:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    fills_skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cache_errors": self.errors,
            "cache_fills_skipped": self.fills_skipped,
            "total_requests": total,
            "hit_rate_percent": round(100 * self.hits / total, 1) if total else 0.0,
        }


class ResponseCache:
    """One per application: the Redis client, the counters, and the operations the routes use.

    ``prefix`` namespaces every key: responses under ``<prefix>:<category>:<path>``,
    generation keys under ``<prefix>:gen:<category>``.
    """

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX, socket_timeout: float = 2.0) -> None:
        self.client = redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout, health_check_interval=30
        )
        self.prefix = prefix
        self.counters = CacheCounters()
        self.pending_invalidations: set[str] = set()

    async def close(self) -> None:
        await self.client.aclose()

    def response_key(self, category: str, path: str, query: str) -> str:
        return f"{self.prefix}:{category}:{path}" + (f"?{query}" if query else "")

    def generation_key(self, category: str) -> str:
        """Outside ``<prefix>:<category>:*``, so the SCAN-based invalidation never deletes it."""
        return f"{self.prefix}:gen:{category}"

    async def get(self, key: str) -> Any | None:
        if self.pending_invalidations and not await self._retry_invalidations():
            return None  # something written while Redis was down may be cached: do not serve from Redis
        try:
            raw = await self.client.get(key)
        except RedisError:
            self.counters.errors += 1
            return None
        if raw is None:
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        return json.loads(raw)

    async def set(self, key: str, value: Any, ttl: int) -> None:
        try:
            await self.client.set(key, json.dumps(value), ex=ttl)
        except RedisError:
            self.counters.errors += 1

    async def compute_and_fill(self, category: str, key: str, ttl: int, compute: Callable[[], Awaitable[R]]) -> R:
        """``compute()``, cached only if no invalidation of ``category`` ran while it computed.

        The WATCH on the generation key holds one pooled connection during the computation;
        an INCR of that key (``invalidate``) makes the EXEC of the fill a no-op.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            watching = await self._watch(pipe, self.generation_key(category))
            value = await compute()
            if watching:
                await self._fill_if_unchanged(pipe, key, value, ttl)
            return value

    def lease_key(self, key: str) -> str:
        """Outside every ``<prefix>:<category>:*``, so the invalidation never deletes a lease."""
        return f"{self.prefix}:lease:{key.removeprefix(self.prefix + ':')}"

    async def compute_once(self, category: str, key: str, ttl: int, compute: Callable[[], Awaitable[R]]) -> R:
        """Single flight: the caller holding the key's ``SET NX`` lease computes and fills; the others wait for it."""
        lease, token = self.lease_key(key), uuid.uuid4().hex
        give_up = time.monotonic() + LEASE_MS / 1000
        while True:
            try:
                held = await self.client.set(lease, token, nx=True, px=LEASE_MS)
            except RedisError:
                self.counters.errors += 1
                return await compute()  # Redis is down: answer from the source, as a failed get() does
            if held:
                try:
                    found = await self._peek(key)  # filled between this caller's miss and its lease
                    if found is not None:
                        return found  # type: ignore[no-any-return]
                    return await self.compute_and_fill(category, key, ttl, compute)
                finally:
                    await self._release(lease, token)
            await asyncio.sleep(LEASE_POLL_S)
            found = await self._peek(key)
            if found is not None:
                return found  # type: ignore[no-any-return]
            if time.monotonic() > give_up:
                return await compute()  # the holder is gone or stuck: answer without filling

    async def _peek(self, key: str) -> Any | None:
        """A waiter's read: not counted again (its request already counted one miss)."""
        try:
            raw = await self.client.get(key)
        except RedisError:
            self.counters.errors += 1
            return None
        return json.loads(raw) if raw is not None else None

    async def _release(self, lease: str, token: str) -> None:
        try:
            await self.client.eval(_RELEASE, 1, lease, token)
        except RedisError:
            self.counters.errors += 1  # the lease expires by itself after LEASE_MS

    async def _watch(self, pipe: Pipeline, generation_key: str) -> bool:
        try:
            await pipe.watch(generation_key)
        except RedisError:
            self.counters.errors += 1
            return False
        return True

    async def _fill_if_unchanged(self, pipe: Pipeline, key: str, value: Any, ttl: int) -> None:
        pipe.multi()
        pipe.set(key, json.dumps(value), ex=ttl)
        try:
            await pipe.execute()
        except WatchError:
            self.counters.fills_skipped += 1  # an invalidation ran: the value may predate it
        except RedisError:
            self.counters.errors += 1

    async def invalidate(self, *categories: str) -> int:
        """Bump each category's generation, then delete ``<prefix>:<category>:*``: SCAN + UNLINK, never KEYS.

        The bump comes first, so a fill computed before the write either sees it (and is
        skipped) or lands before the deletion (and is deleted). SCAN keeps Redis responsive,
        but it still walks the whole keyspace: the cost grows with the number of keys (O(N)),
        see the example's xfail test. A category that could not be invalidated (Redis down)
        is retried before anything is served from the cache again; otherwise the response
        cached before the outage would be served, stale, until its TTL ran out.
        """
        try:
            await self._bump_generations(categories)
        except RedisError:
            self.counters.errors += 1
            self.pending_invalidations.update(categories)
            return 0
        deleted = 0
        for category in categories:
            try:
                batch = [key async for key in self.client.scan_iter(match=f"{self.prefix}:{category}:*", count=1000)]
                if batch:
                    deleted += await self.client.unlink(*batch)
                self.pending_invalidations.discard(category)
            except RedisError:
                self.counters.errors += 1
                self.pending_invalidations.add(category)
        return deleted

    async def _bump_generations(self, categories: tuple[str, ...]) -> None:
        """One round trip for all of them: the POST's latency is what users wait for."""
        async with self.client.pipeline(transaction=True) as pipe:
            for category in categories:
                pipe.incr(self.generation_key(category))
                pipe.expire(self.generation_key(category), GENERATION_TTL)
            await pipe.execute()

    async def _retry_invalidations(self) -> bool:
        await self.invalidate(*sorted(self.pending_invalidations))
        return not self.pending_invalidations


def cached_response(
    cache: Callable[[], ResponseCache],
    category: str,
    ttl: int,
    *,
    checked_fill: bool = True,
    single_flight: bool = False,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Serve the endpoint's JSON from Redis for ``ttl`` seconds; the key is category + path + query.

    The endpoint must take the ``request`` (a starlette ``Request``) as a keyword argument.
    ``checked_fill=False`` is the report's original fill (GET, compute, SET): it can write
    back a response computed before a concurrent POST's invalidation. ``single_flight=True``
    computes a cold response once however many requests miss it together (``compute_once``,
    whose fill is always checked).
    """

    def decorate(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(endpoint)
        async def serve(*args: P.args, **kwargs: P.kwargs) -> R:
            request = kwargs["request"]
            key = cache().response_key(category, request.url.path, request.url.query)  # type: ignore[attr-defined]
            found = await cache().get(key)
            if found is not None:
                return found  # type: ignore[no-any-return]
            if single_flight:
                return await cache().compute_once(category, key, ttl, lambda: endpoint(*args, **kwargs))
            if checked_fill:
                return await cache().compute_and_fill(category, key, ttl, lambda: endpoint(*args, **kwargs))
            value = await endpoint(*args, **kwargs)
            await cache().set(key, value, ttl)
            return value

        return serve

    return decorate
