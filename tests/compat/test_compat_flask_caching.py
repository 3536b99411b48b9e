"""flask-caching (cachelib RedisCache): reads match the server; memoize adds version-key reads; clear uses KEYS."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

flask = pytest.importorskip("flask")
flask_caching = pytest.importorskip("flask_caching")

_apps = itertools.count()


def make_app(real_redis: Any) -> tuple[Any, Any]:
    app = flask.Flask(f"compat{next(_apps)}")
    cache = flask_caching.Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_HOST": real_redis.host,
            "CACHE_REDIS_PORT": real_redis.port,
            "CACHE_KEY_PREFIX": "compat:",
            "CACHE_DEFAULT_TIMEOUT": 300,
        },
    )
    return app, cache


def test_cached_view_hits_and_misses_equal_the_servers(
    real_redis: Any, cache_monitor: Any, workload: list[int]
) -> None:
    app, cache = make_app(real_redis)
    rendered: list[int] = []

    @app.route("/users/<int:user>")
    @cache.cached(timeout=120)
    def user_page(user: int) -> str:
        rendered.append(user)
        return f"user {user}"

    client = app.test_client()
    with real_redis.counting() as server:
        for user in workload:
            assert client.get(f"/users/{user}").text == f"user {user}"
        with app.app_context():
            assert cache.get_many("view//users/1", "nothing")[1] is None
            assert not cache.has("nothing")

    stats = cache_monitor.stats()
    assert len(rendered) == 20
    assert (stats.hits, stats.misses) == (180 + 1, 20 + 1 + 1)
    assert (stats.hits, stats.misses) == (server.hits, server.misses)


def test_memoize_reads_a_version_key_on_every_call(real_redis: Any, cache_monitor: Any) -> None:
    app, cache = make_app(real_redis)

    @cache.memoize(60)
    def square(value: int) -> int:
        return value * value

    with app.app_context(), real_redis.counting() as server:
        for value in (3, 3, 3, 3):
            assert square(value) == 9

    total = cache_monitor.stats()
    versions = cache_monitor.stats("*_memver")
    assert versions.reads >= 4  # at least one version lookup per call: scope hit-rate targets with a pattern
    assert (total.hits - versions.hits, total.misses - versions.misses) == (3, 1)
    assert (total.hits, total.misses) == (server.hits, server.misses)


def test_clear_issues_keys(real_redis: Any, cache_monitor: Any) -> None:
    app, cache = make_app(real_redis)
    with app.app_context(), real_redis.counting() as server:
        cache.set("a", 1)
        cache.clear()

    assert cache_monitor.stats().commands["KEYS"] == 1 == server.calls["keys"]
