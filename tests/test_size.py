"""End to end: value sizes (``cache_size(max_value_bytes=)``), memory (``memory_kb=``), bytes in reports."""

from __future__ import annotations

import pytest

BACKENDS = ["fake", "server"]

SIZES = """
import pytest

@pytest.mark.cache_size(max_value_bytes=1000)
def test_big_value(cache_redis):
    cache_redis.set("page:small", b"x" * 200)
    cache_redis.set("page:home", b"x" * 10_000, ex=60)
    assert cache_redis.get("page:home")

@pytest.mark.cache_size(max_value_bytes=1000, pattern="page:*")
def test_small_values_pass(cache_redis):
    cache_redis.set("page:a", b"x" * 1000)
    cache_redis.set("blob", b"x" * 50_000)  # another pattern

@pytest.mark.cache_size(memory_kb=16)
def test_many_keys(cache_redis):
    for index in range(100):
        cache_redis.set(f"user:{index}:profile", b"v" * 1024)

@pytest.mark.cache_size(memory_kb=200, pattern="user:*")
def test_memory_within(cache_redis):
    for index in range(100):
        cache_redis.set(f"user:{index}:profile", b"v" * 1024)

@pytest.mark.cache_size(max_value_bytes=10)
def test_no_writes(cache_redis):
    cache_redis.get("nothing")

@pytest.mark.cache_size(memory_kb=1)
def test_no_keys_left(cache_redis):
    cache_redis.set("gone", b"x")
    cache_redis.delete("gone")
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_and_memory_limits(pytester: pytest.Pytester, backend: str) -> None:
    """A 10 kB value fails max_value_bytes=1000; 100 keys of 1 kB fail memory_kb=16; evidence missing fails."""
    pytester.makepyfile(test_sizes=SIZES)
    result = run(pytester, "--cache-backend", backend, "-v")
    result.assert_outcomes(passed=2, failed=4)
    source = "estimate: key + value bytes (fake backend)" if backend == "fake" else "MEMORY USAGE"
    result.stdout.fnmatch_lines_random(
        [
            "*test_small_values_pass PASSED*",
            "*test_memory_within PASSED*",
            "*cache_size: the largest value written to keys is 10000 bytes, above max_value_bytes=1000; "
            "1 write(s) above it: page:home (9.8 KB, SET)",
            f"*cache_size: the 100 keys at the end of the test use 1*.* KB ({source}), above memory_kb=16; largest: *",
            "*cache_size: no writes of keys were observed in this test, so no value size could be checked*",
            "*cache_size: no keys were in the database at the end of the test, so their memory could not be measured*",
        ]
    )
