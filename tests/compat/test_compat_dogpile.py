"""dogpile.cache: plain GET reads match the server; soft expiry and lock release are documented exceptions."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

pytest.importorskip("dogpile.cache")

from dogpile.cache import make_region  # noqa: E402

_regions = itertools.count()


def region_on(real_redis: Any, *, expiration_time: float = 300, distributed_lock: bool = False) -> Any:
    prefix = f"compat{next(_regions)}:"
    return make_region(key_mangler=lambda key: prefix + key).configure(
        "dogpile.cache.redis",
        expiration_time=expiration_time,
        arguments={
            "host": real_redis.host,
            "port": real_redis.port,
            "redis_expiration_time": 600,
            "distributed_lock": distributed_lock,
            "thread_local_lock": not distributed_lock,
        },
    )


def test_read_through_hits_and_misses_equal_the_servers(
    real_redis: Any, cache_monitor: Any, workload: list[int]
) -> None:
    region = region_on(real_redis)
    loaded: list[int] = []

    @region.cache_on_arguments()
    def load_user(user: int) -> dict[str, int]:
        loaded.append(user)
        return {"user": user}

    with real_redis.counting() as server:
        for user in workload:
            assert load_user(user) == {"user": user}

    stats = cache_monitor.stats()
    assert len(loaded) == 20
    # dogpile reads a missing key twice: once, then again under its mutex before creating it.
    assert (stats.hits, stats.misses) == (180, 2 * 20)
    assert (stats.hits, stats.misses) == (server.hits, server.misses)


def test_soft_expiry_is_a_redis_hit_and_a_recomputation(real_redis: Any, cache_monitor: Any) -> None:
    region = region_on(real_redis, expiration_time=0.05)
    computed: list[int] = []

    @region.cache_on_arguments()
    def report(day: int) -> int:
        computed.append(day)
        return day

    report(1)
    time.sleep(0.1)  # past dogpile's expiration_time (stored in the value), before Redis's TTL
    cache_monitor.reset()
    with real_redis.counting() as server:
        report(1)

    stats = cache_monitor.stats()
    assert computed == [1, 1]
    assert stats.hits >= 1 and stats.misses == 0  # Redis answered: the soft miss counts as hits
    assert (stats.hits, stats.misses) == (server.hits, server.misses)


def test_distributed_lock_release_reads_inside_lua(real_redis: Any, cache_monitor: Any) -> None:
    region = region_on(real_redis, distributed_lock=True)

    @region.cache_on_arguments()
    def cube(value: int) -> int:
        return value**3

    with real_redis.counting() as server:
        assert [cube(3), cube(3)] == [27, 27]

    stats = cache_monitor.stats()
    assert server.calls["evalsha"] >= 1 and stats.commands["EVALSHA"] == server.calls["evalsha"]
    # the lock's release script GETs the lock key inside Lua: one server hit per release the plugin cannot see
    assert server.misses == stats.misses
    assert server.hits == stats.hits + 1
