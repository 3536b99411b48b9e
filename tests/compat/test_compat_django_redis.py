"""django-redis: plain GET/MGET/EXISTS reads match the server; ``incr`` and ``ttl`` are documented exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

django = pytest.importorskip("django")
pytest.importorskip("django_redis")

from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402


@pytest.fixture
def django_cache(real_redis: Any) -> Iterator[Any]:
    if not settings.configured:
        settings.configure()
        django.setup()
    from django.core.cache import caches

    location = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": real_redis.url, "KEY_PREFIX": "compat"}
    with override_settings(CACHES={"default": location}):
        cache = caches["default"]
        yield cache
        cache.close()


def test_read_through_hits_and_misses_equal_the_servers(
    django_cache: Any, real_redis: Any, cache_monitor: Any, workload: list[int]
) -> None:
    with real_redis.counting() as server:
        for user in workload:
            if django_cache.get(f"profile:{user}") is None:
                django_cache.set(f"profile:{user}", {"user": user}, timeout=300)
        found = django_cache.get_many([f"profile:{user}" for user in (1, 2, 99)])
        assert django_cache.has_key("profile:3") and not django_cache.has_key("profile:404")

    stats = cache_monitor.stats()
    assert sorted(found) == ["profile:1", "profile:2"]
    assert (stats.hits, stats.misses) == (180 + 2 + 1, 20 + 1 + 1)
    assert (stats.hits, stats.misses) == (server.hits, server.misses)


def test_incr_reads_inside_lua_are_counted_by_the_server_only(
    django_cache: Any, real_redis: Any, cache_monitor: Any
) -> None:
    django_cache.set("counter", 1, timeout=60)
    cache_monitor.reset()
    with real_redis.counting() as server:
        assert django_cache.incr("counter") == 2

    stats = cache_monitor.stats()
    assert stats.commands == {"EVAL": 1}
    assert (stats.hits, stats.misses) == (0, 0)
    assert (server.hits, server.misses) == (1, 0)  # the EXISTS inside django-redis's Lua script


def test_ttl_lookup_is_a_server_read_but_not_a_cache_read(
    django_cache: Any, real_redis: Any, cache_monitor: Any
) -> None:
    django_cache.set("session", "x", timeout=60)
    cache_monitor.reset()
    with real_redis.counting() as server:
        assert 0 < django_cache.ttl("session") <= 60

    stats = cache_monitor.stats()
    assert stats.commands == {"EXISTS": 1, "TTL": 1}
    assert (stats.hits, stats.misses) == (1, 0)
    assert (server.hits, server.misses) == (2, 0)
