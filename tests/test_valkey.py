"""valkey-py (the redis-py fork with its own ``valkey`` module) is observed like redis-py, end to end.

Skipped when valkey-py is not installed; the ``valkey`` and ``newest`` cells of the version matrix
(noxfile.py) install it.
"""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("valkey", reason="valkey-py is not installed (the noxfile's valkey cell installs it)")

TESTS = """
import asyncio

import pytest
import valkey
import valkey.asyncio


def cached(client, key):
    value = client.get(key)
    if value is None:
        value = b"loaded"
        client.set(key, value, ex=60)
    return value


@pytest.mark.cache_hit_rate(0.8)
@pytest.mark.cache_ttl(max_s=120)
def test_sync_client_and_pipeline(cache_url, cache_monitor):
    client = valkey.Valkey.from_url(cache_url)
    for request in range(20):
        assert cached(client, f"user:{request % 2}") == b"loaded"
    with client.pipeline(transaction=True) as pipe:
        pipe.get("user:0").get("user:9")
        assert pipe.execute() == [b"loaded", None]
    client.close()
    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses, stats.writes) == (19, 3, 2)
    assert [event.command for event in cache_monitor.events][-2:] == ["GET", "GET"]


def test_async_client(cache_url, cache_monitor):
    async def workload():
        client = valkey.asyncio.Valkey.from_url(cache_url)
        await client.set("a", 1)
        await client.get("a")
        await client.get("b")
        await client.aclose()

    asyncio.run(workload())
    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses, stats.writes) == (1, 1, 1)


@pytest.mark.cache_hit_rate(0.8)
def test_a_cache_that_never_hits(cache_url):
    client = valkey.Valkey.from_url(cache_url)
    for request in range(10):
        cached(client, f"user:{request}")
    client.close()


@pytest.mark.cache_forbid("KEYS")
def test_forbidden_command(cache_url):
    valkey.Valkey.from_url(cache_url).keys("user:*")
"""


@pytest.mark.parametrize(
    "backend",
    [
        "fake",
        pytest.param(
            "server",
            marks=pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
        ),
    ],
)
def test_valkey_clients_are_observed(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(test_app=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", backend)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*cache_hit_rate: hit rate 0.0% over 10 reads of all keys (0 hits, 10 misses) is below the minimum 80.0%*",
            "*cache_forbid*KEYS*",
        ],
        consecutive=False,
    )
    assert "Traceback" not in result.stdout.str()
