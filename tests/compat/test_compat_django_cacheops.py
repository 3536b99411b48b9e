"""django-cacheops on server and fake: it asks ``INFO server`` first (answered by the fake server
too), caches ``get`` reads under ``GET`` and fills the cache inside Lua (``cache_thing``:
``SETEX``, ``SADD`` of its ``schemes:*`` and ``conj:*`` sets, with the empty key ``''`` as
``KEYS[1]``), which only the server side sees."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
import redis

django = pytest.importorskip("django")
if importlib.util.find_spec("cacheops") is None:  # not imported here: importing it reads the Django settings
    pytest.skip("django-cacheops is not installed", allow_module_level=True)

from django.conf import settings  # noqa: E402

USERS = 20


def _configure() -> None:
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "cacheops"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            CACHEOPS_REDIS="redis://127.0.0.1:1/0",  # replaced per test: the pool of the backend under test
            CACHEOPS={"auth.user": {"ops": "get", "timeout": 300}},
            USE_TZ=True,
        )
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    elif "cacheops" not in settings.INSTALLED_APPS:
        pytest.skip("Django was configured without cacheops by an earlier test in this process")


@pytest.fixture
def users(either_redis: Any) -> Iterator[Any]:
    _configure()
    from cacheops.redis import redis_client
    from django.contrib.auth.models import User

    redis_client.connection_pool = redis.ConnectionPool(host=either_redis.host, port=either_redis.port)
    if not User.objects.exists():
        User.objects.bulk_create(User(id=index + 1, username=f"user{index + 1}") for index in range(USERS))
    yield User
    redis_client.connection_pool.disconnect()


def test_get_hits_and_misses_and_the_lua_fill(
    users: Any, either_redis: Any, cache_monitor: Any, workload: list[int]
) -> None:
    with either_redis.counting() as server:
        for user in workload:
            assert users.objects.get(pk=user + 1).username == f"user{user + 1}"

    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses) == (180, 20)
    assert server.calls["get"] == 200
    # the server also counts, as hits, the TTL that cache_thing reads inside Lua for each of the 20 fills
    assert server.calls["ttl"] == 20 and server.calls["setex"] == 20 and server.calls["sadd"] == 40
    assert (server.hits, server.misses) == (stats.hits + 20, stats.misses)


def test_the_schemes_set_made_inside_lua_has_no_ttl(users: Any, either_redis: Any) -> None:
    """What ``cache_ttl`` reports on cacheops (the fake and server backends judge keys made in scripts)."""
    users.objects.get(pk=1)
    client = redis.Redis(host=either_redis.host, port=either_redis.port)
    try:
        assert client.ttl("schemes:auth_user") == -1
        assert client.ttl("conj:auth_user:id=1") > 0
    finally:
        client.close()
