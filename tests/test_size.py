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


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_and_memory_limits(pytester: pytest.Pytester, backend: str) -> None:
    """A 10 kB value fails max_value_bytes=1000; 100 keys of 1 kB fail memory_kb=16; evidence missing fails."""
    pytester.makepyfile(test_sizes=SIZES)
    result = pytester.runpytest("--cache-backend", backend, "-v")
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
    result = pytester.runpytest(
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
    assert '<section id="sizes">' in html and '<td class="num">500 B</td>' in html
    assert ("estimated by the fake backend" in html) == (backend == "fake")


TARGETED = """
def test_user_1(cache_redis):
    for index in range(40):
        cache_redis.set(f"u:1:q:{index}", b"r" * 1024, ex=60)

def test_user_2(cache_redis):
    for index in range(4):
        cache_redis.set(f"u:2:q:{index}", b"r" * 1024, ex=60)
    cache_redis.set("u:2:avatar", b"a" * 70_000, ex=60)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_size_targets(pytester: pytest.Pytester, backend: str) -> None:
    """max_value_bytes and memory_kb targets: the largest value and the largest test's memory, per pattern."""
    pytester.makepyfile(test_targeted=TARGETED)
    pytester.makefile(
        ".toml",
        targets="""
        [[tool.cachecheck.target]]
        name = "user 1"
        pattern = "u:1:*"
        memory_kb = 16
        max_value_bytes = 65536

        [[tool.cachecheck.target]]
        name = "users"
        pattern = "u:*"
        max_value_bytes = 65536

        [[tool.cachecheck.target]]
        name = "user 2"
        pattern = "u:2:*"
        memory_kb = 512

        [[tool.cachecheck.target]]
        name = "nobody"
        pattern = "nobody:*"
        memory_kb = 1
        """,
    )
    result = pytester.runpytest(
        "--cache-backend", backend, "--cache-targets", "targets.toml", "--cache-report", "r.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    source = "estimate: key + value bytes (fake backend)" if backend == "fake" else "MEMORY USAGE"
    result.stdout.fnmatch_lines_random(
        [
            "user 1: memory_kb  *KB  *<= 16.0 KB  *missed",
            "user 1: max_value_bytes  *1.0 KB  *<= 64.0 KB  *met",
            "users: max_value_bytes  *68.4 KB  *<= 64.0 KB  *missed",
            "user 2: memory_kb  *KB  *<= 512.0 KB  *met",
            "nobody: memory_kb  *-  *<= 1.0 KB  *no data",
            "    40 keys at the end of test_targeted.py::test_user_1, the largest test",
            f"    ({source})",
            "*largest u:2:avatar in test_targeted.py::test_user_2*",
            "cachecheck: 3 of 5 targets missed:",
        ]
    )
    targets = json.loads((pytester.path / "r.json").read_text())["targets"]
    memory = {row["name"]: row["value"] for row in targets if row["metric"] == "memory_kb"}
    if backend == "fake":  # key + value bytes, exactly
        assert memory["user 1"] == sum(len(f"u:1:q:{i}") + 1024 for i in range(40)) / 1024
    else:  # the server's own accounting, above the payload
        assert 40 < memory["user 1"] < 4 * 40
    assert memory["user 2"] > 70_000 / 1024 and memory["nobody"] is None
    assert [(row["name"], row["metric"], row["value"]) for row in targets if row["metric"] == "max_value_bytes"] == [
        ("user 1", "max_value_bytes", 1024),
        ("users", "max_value_bytes", 70_000),
    ]


def test_bad_arguments_are_one_line_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.cache_size()
        def test_nothing_to_check():
            pass

        @pytest.mark.cache_size(max_value_bytes=-1)
        def test_negative():
            pass

        @pytest.mark.cache_size(max_value_bytes=1.5)
        def test_fraction_of_a_byte():
            pass

        @pytest.mark.cache_size(memory_kb=0)
        def test_no_memory():
            pass

        @pytest.mark.cache_size(memory_kb=True)
        def test_bool():
            pass

        @pytest.mark.cache_size(1000)
        def test_positional():
            pass

        @pytest.mark.cache_size(max_value_bytes=10, pattern="[a")
        def test_bad_pattern():
            pass

        @pytest.mark.cache_size(max_bytes=10)
        def test_unknown():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=8)
    result.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.cache_size: give max_value_bytes=, memory_kb= or both (e.g. cache_size(max_value_bytes=65536))",
            "*@pytest.mark.cache_size: argument 'max_value_bytes' must be a whole number >= 0, got -1",
            "*@pytest.mark.cache_size: argument 'max_value_bytes' must be a whole number >= 0, got 1.5",
            "*@pytest.mark.cache_size: argument 'memory_kb' must be a number > 0, got 0",
            "*@pytest.mark.cache_size: argument 'memory_kb' must be a number > 0, got True",
            "*@pytest.mark.cache_size: takes 0 positional argument(s), got 1; signature *",
            "*@pytest.mark.cache_size: argument 'pattern' must be a glob with balanced [[] []] brackets, got '[[]a'",
            "*@pytest.mark.cache_size: unknown argument 'max_bytes'; signature "
            "cache_size(*, max_value_bytes=None, memory_kb=None, pattern='*')",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_bad_size_targets_are_one_line_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    for text, expected in (
        ("max_value_bytes = 1.5", "*target 'x': key 'max_value_bytes' must be a whole number of bytes >= 0, got 1.5"),
        ("memory_kb = 0", "*target 'x': key 'memory_kb' must be a number of KB > 0 (1 KB = 1024 bytes), got 0"),
        ("memory_kb = 'big'", "*target 'x': key 'memory_kb' must be a number of KB > 0 (1 KB = 1024 bytes), got 'big'"),
    ):
        pytester.makefile(".toml", targets=f'[[tool.cachecheck.target]]\nname = "x"\n{text}\n')
        result = pytester.runpytest("--cache-targets", "targets.toml")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([expected])
