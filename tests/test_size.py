"""End to end: value sizes (``cache_size(max_value_bytes=)``), memory (``memory_kb=``), bytes in reports."""

from __future__ import annotations

import json

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


REPORTED = """
def test_users(cache_redis):
    for index in range(20):
        cache_redis.set(f"user:{index}:profile", b"p" * 500, ex=60)
    cache_redis.set("page:home", b"h" * 3000, ex=60)
    for index in range(20):
        cache_redis.get(f"user:{index}:profile")
    cache_redis.mget("page:home", "page:none")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_bytes_and_memory_in_every_report(pytester: pytest.Pytester, backend: str) -> None:
    """Value bytes, the biggest value and memory per pattern: terminal table, JSON, Markdown and HTML."""
    pytester.makepyfile(test_reported=REPORTED)
    pytester.makefile(
        ".toml",
        targets="""
        [[tool.cachecheck.target]]
        name = "users"
        pattern = "user:*"
        hit_rate = 0.5
        """,
    )
    result = run(
        pytester,
        "--cache-backend",
        backend,
        "--cache-targets",
        "targets.toml",
        "--cache-report",
        "run.json",
        "--cache-report",
        "run.md",
        "--cache-report",
        "run.html",
    )
    result.assert_outcomes(passed=1)
    patterns = json.loads((pytester.path / "run.json").read_text())["patterns"]
    users, everything = patterns["user:*"], patterns["*"]
    assert (users["bytes_written"], users["bytes_read"], users["max_value_bytes"]) == (10_000, 10_000, 500)
    assert (everything["bytes_written"], everything["bytes_read"], everything["max_value_bytes"]) == (
        13_000,
        13_000,
        3000,
    )
    assert everything["max_value_key"] == "page:home"
    assert users["memory_keys"] == 20 and everything["memory_keys"] == 21
    if backend == "fake":  # key + value bytes, exactly
        assert users["memory_kb"] == round(sum(len(f"user:{i}:profile") + 500 for i in range(20)) / 1024, 3)
        assert users["memory_source"] == "estimate"
    else:  # the server's own accounting: more than the payload
        assert users["memory_kb"] > 10_000 / 1024
        assert users["memory_source"] == "MEMORY USAGE"
    estimate = "~" if backend == "fake" else ""
    result.stdout.fnmatch_lines(
        [
            "pattern*written*read*max value*memory*local hits",
            f"[*]  *12.7 KB  *12.7 KB  *2.9 KB  *{estimate}1*.* KB  *0",
            f"user:[*]  *9.8 KB  *9.8 KB  *500 B  *{estimate}*KB  *0",
        ]
    )
    markdown = (pytester.path / "run.md").read_text()
    assert "### Values and memory per pattern" in markdown
    assert "| `user:*` | 9.8 KB | 9.8 KB | 500 B |" in markdown
    html = (pytester.path / "run.html").read_text()
    assert '<section id="sizes">' in html and "<td class=\"num\">500 B</td>" in html
    assert ("estimated by the fake backend" in html) == (backend == "fake")
