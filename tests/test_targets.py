"""Run-wide targets: validation of target files, evaluation, exit status, TTL hygiene and the summary maths."""

from __future__ import annotations

import random
import textwrap

import pytest

from pytest_cachecheck.checks.target_file import Target
from pytest_cachecheck.checks.targets import evaluate_targets
from pytest_cachecheck.observe.aggregate import percentile
from pytest_cachecheck.observe.events import classify_raw
from pytest_cachecheck.observe.expiry import keys_without_ttl
from pytest_cachecheck.observe.summary import LatencyHistogram, RunSummary


@pytest.fixture(autouse=True)
def _no_github_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _project(pytester: pytest.Pytester, targets: str, tests: str) -> None:
    pytester.makefile(".toml", pyproject=textwrap.dedent(targets))
    pytester.makepyfile(test_app=textwrap.dedent(tests))


CACHE_ASIDE = """
    def test_cache_aside(cache_redis):
        for _ in range(4):
            for user in range(10):
                if cache_redis.get(f"user:{user}") is None:
                    cache_redis.set(f"user:{user}", "profile", ex=60)
"""


# ---------------------------------------------------------------- met / missed / no data, exit status


def test_met_target_exits_zero_and_shows_met(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        name = "users"
        pattern = "user:*"
        hit_rate = 0.7
        keys_without_ttl = 0
        """,
        CACHE_ASIDE,
    )
    result = pytester.runpytest("--cache-targets")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*- cachecheck -*",
            "Metric*Value*Target*Status",
            "users: hit_rate*75.0%*>= 70.0%*met",
            "users: keys_without_ttl*0*<= 0*met",
            "pattern*reads*hits*misses*hit%*p50ms*p95ms*p99ms*cmds",
            "user:[*]*40*30*10*75.0%*50",
        ]
    )
    assert result.stdout.lines[-1] == "cachecheck: all 2 targets met"


def test_missed_target_fails_the_session_although_tests_pass(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        name = "users"
        pattern = "user:*"
        hit_rate = 0.9
        """,
        CACHE_ASIDE,
    )
    result = pytester.runpytest("--cache-targets")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.stdout.lines[-3:] == [
        "cachecheck: 1 of 1 targets missed:",
        "  users hit_rate 75.0% (target >= 90.0%): missed",
        "    30 hits, 10 misses; most misses: user:* (10)",
    ]


def test_unmeasured_metric_is_no_data_and_names_the_fixture(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        name = "profile invalidation"
        pattern = "user:*"
        invalidation_ms = 10
        """,
        CACHE_ASIDE,
    )
    result = pytester.runpytest("--cache-targets")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "profile invalidation: invalidation_ms*-*<= 10.0 ms*no data",
            "*profile invalidation invalidation_ms - (target <= 10.0 ms): no data",
            "    the run never measured invalidation_ms for keys matching 'user:[*]'; a test",
            "    calling cache_invalidation.measure(...) would",
        ]
    )


def test_failing_tests_keep_their_exit_status(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        hit_rate = 0.99
        """,
        CACHE_ASIDE + "\n    def test_broken():\n        assert False\n",
    )
    result = pytester.runpytest("--cache-targets")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  [*] hit_rate 75.0% (target >= 99.0%): missed"])


def test_targets_file_given_explicitly_and_latency_ceilings(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        targets=textwrap.dedent(
            """
            [[target]]
            name = "everything"
            p50_ms = 10000
            p99_ms = 10000
            max_ms = 25
            """
        ),
    )
    pytester.makepyfile(
        test_app=textwrap.dedent(CACHE_ASIDE),
        test_slow="""
        def test_one_slow_read(cache_redis, cache_faults):
            with cache_faults.latency(ms=50):  # the code's commands, not the machine's round trip
                cache_redis.get("user:1")
        """,
    )
    result = pytester.runpytest("--cache-targets", "targets.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "everything: p50_ms*<= 10000.0 ms*met",
            "everything: p99_ms*<= 10000.0 ms*met",
            "everything: max_ms*<= 25.0 ms*missed",
        ]
    )


MEASURING_CONFTEST = """
    import pytest
    from pytest_cachecheck.checks.base import Measurement
    from pytest_cachecheck.plugin import RUN_KEY

    @pytest.fixture
    def measure(request):
        def record(metric, value, *keys):
            request.config.stash[RUN_KEY].context.measurements.append(Measurement(metric, value, keys))
        return record
"""


def test_bytes_per_call_is_shown_in_bytes_like_every_size(pytester: pytest.Pytester) -> None:
    """bytes_per_call is a BYTES metric: its value and limit read as sizes (1.1 KB), its limit must be whole bytes."""
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        name = "pages"
        pattern = "product:*"
        round_trips_per_call = 1
        bytes_per_call = 1024

        [[tool.cachecheck.target]]
        name = "all"
        bytes_per_call = 4096
        """,
        """
        KEYS = [f"product:{index}" for index in range(10)]

        def test_page(cache_redis, cache_bench):
            cache_redis.mset({key: b"x" * 100 for key in KEYS})
            cost = cache_bench.cost(lambda: cache_redis.mget(KEYS), calls=2)
            assert cost.bytes == 1094  # 94 bytes of MGET and its keys sent, 10 x 100 received
        """,
    )
    result = pytester.runpytest("--cache-targets")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "pages: round_trips_per_call*1*<= 1*met",
            "pages: bytes_per_call*1.1 KB*<= 1.0 KB*missed",
            "all: bytes_per_call*1.1 KB*<= 4.0 KB*met",
        ]
    )
    assert result.stdout.lines[-3:] == [
        "cachecheck: 1 of 3 targets missed:",
        "  pages bytes_per_call 1.1 KB (target <= 1.0 KB): missed",
        "    1 measurement(s); worst 1.1 KB in test_app.py::test_page",
    ]


def test_fixture_measurements_combine_per_metric_and_pattern(pytester: pytest.Pytester) -> None:
    """invalidation_ms: ceiling on the max; stale_reads: on the sum; speedup: floor on the min."""
    pytester.makeconftest(textwrap.dedent(MEASURING_CONFTEST))
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        name = "users"
        pattern = "user:*"
        invalidation_ms = 5
        stale_reads = 2
        speedup = 2.0

        [[tool.cachecheck.target]]
        name = "orders"
        pattern = "order:*"
        invalidation_ms = 5
        """,
        """
        def test_one(measure):
            measure("invalidation_ms", 1.5, "user:1")
            measure("invalidation_ms", 4.0, "user:2")
            measure("stale_reads", 1, "user:1")
            measure("speedup", 3.0, "user:1")

        def test_two(measure):
            measure("invalidation_ms", 9.0, "order:7")
            measure("stale_reads", 1, "user:3")
            measure("speedup", 1.5, "user:4", "other")
        """,
    )
    result = pytester.runpytest("--cache-targets")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "users: invalidation_ms*4.000 ms*<= 5.000 ms*met",
            "users: stale_reads*2*<= 2*met",
            "users: speedup*1.50x*>= 2.00x*missed",
            "orders: invalidation_ms*9.000 ms*<= 5.000 ms*missed",
        ]
    )
    result.stdout.fnmatch_lines(["*2 measurement(s); worst 1.50x in test_app.py::test_two"])


# ---------------------------------------------------------------- invalid target files


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[tool.cachecheck.target]]\nname = "api"\nhit_rat = 0.8\n',
            "--cache-targets pyproject.toml, target 'api': unknown key 'hit_rat'; did you mean 'hit_rate'?",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\nhit_rate = 80\n',
            "--cache-targets pyproject.toml, target 'api': key 'hit_rate' must be a number from 0 to 1 "
            "(fraction of reads that hit), got 80",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\np99_ms = "5ms"\n',
            "--cache-targets pyproject.toml, target 'api': key 'p99_ms' must be a number of milliseconds > 0, "
            "got '5ms'",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\nstale_reads = 0.5\n',
            "--cache-targets pyproject.toml, target 'api': key 'stale_reads' must be a whole number >= 0, got 0.5",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\nbytes_per_call = 1.5\n',
            "--cache-targets pyproject.toml, target 'api': key 'bytes_per_call' must be a whole number of bytes >= 0 "
            "(payload bytes sent and received), got 1.5",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\nspeedup = true\n',
            "--cache-targets pyproject.toml, target 'api': key 'speedup' must be a number > 0 "
            "(cached/uncached ratio), got True",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\npattern = "user:[ab"\nhit_rate = 0.5\n',
            "--cache-targets pyproject.toml, target 'api': key 'pattern' must be a glob with balanced [ ] "
            "brackets, got 'user:[ab'",
        ),
        (
            "[[tool.cachecheck.target]]\nhit_rate = 0.5\n\n[[tool.cachecheck.target]]\nhit_rat = 0.5\n",
            "--cache-targets pyproject.toml, target #2: unknown key 'hit_rat'; did you mean 'hit_rate'?",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "api"\npattern = "api:*"\n',
            "--cache-targets pyproject.toml, target 'api': sets no metric; add at least one of hit_rate, mean_ms, p50_ms,*",
        ),
        (
            '[[tool.cachecheck.target]]\nname = "a"\nhit_rate = 0.5\n[[tool.cachecheck.target]]\nname = "a"\n'
            "speedup = 2\n",
            "--cache-targets pyproject.toml, target 'a': key 'name' repeats an earlier target's name*",
        ),
        ("[tool.cachecheck]\n", "--cache-targets pyproject.toml: no [[][[]tool.cachecheck.target]] entries"),
    ],
    ids=[
        "unknown-key",
        "out-of-range",
        "wrong-type",
        "count-not-whole",
        "bytes-not-whole",
        "bool-is-not-a-number",
        "bad-glob",
        "unnamed-target",
        "no-metric",
        "duplicate-name",
        "no-targets",
    ],
)
def test_invalid_target_file_is_a_one_line_usage_error(pytester: pytest.Pytester, toml: str, message: str) -> None:
    pytester.makefile(".toml", pyproject=toml)
    pytester.makepyfile(test_never_runs="def test_x():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest("--cache-targets")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()
    assert "must not run" not in result.stdout.str()


def test_targets_file_that_is_not_toml(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", targets="[[target]\nhit_rate = 0.5\n")
    result = pytester.runpytest("--cache-targets", "targets.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --cache-targets targets.toml: not valid TOML: Expected ']]' *(at line 1, column 9)"]
    )


def test_missing_targets_file(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--cache-targets", "nowhere.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --cache-targets: file 'nowhere.toml' not found (looked in *)"])


# ---------------------------------------------------------------- keys without TTL


def _ttl_of(*commands: tuple[tuple[object, ...], object]) -> list[str]:
    records = [(index, 1000, args, reply, 0, 1) for index, (args, reply) in enumerate(commands)]
    return keys_without_ttl(classify_raw(records), records)


def test_set_without_expiry_counts_and_set_with_expiry_does_not() -> None:
    assert _ttl_of(
        (("SET", "a", "1"), True),
        (("SET", "b", "1", "EX", 10), True),
        (("SET", "c", "1", "PX", 10), True),
        (("SETEX", "d", 10, "1"), True),
        (("SET", b"e", "1", b"keepttl"), True),
    ) == ["a"]


def test_new_collection_without_expire_counts_until_expire_follows() -> None:
    assert _ttl_of(
        (("HSET", "h", "f", "v"), 1),
        (("RPUSH", "l", "x"), 1),
        (("EXPIRE", "l", 60), 1),
        (("SADD", "s", "m"), 1),
        (("PEXPIRE", "s", 600), 1),
        (("INCR", "counter"), 1),
    ) == ["h", "counter"]


def test_plain_set_and_persist_remove_a_ttl_and_delete_forgets_the_key() -> None:
    assert _ttl_of(
        (("SET", "a", "1", "EX", 5), True),
        (("SET", "a", "2"), True),
        (("SET", "b", "1", "EX", 5), True),
        (("PERSIST", "b"), 1),
        (("SET", "gone", "1"), True),
        (("DEL", "gone"), 1),
        (("SET", "nx", "1", "NX"), None),
        (("HSET", "h", "f", "v"), 1),
        (("EXPIRE", "h", 9), 1),
        (("HSET", "h", "g", "v"), 1),
    ) == ["a", "b"]


def test_getdel_of_an_existing_key_forgets_it() -> None:
    assert _ttl_of(
        (("SET", "taken", "1"), True),
        (("GETDEL", "taken"), b"1"),
        (("SET", "kept", "1"), True),
        (("GETDEL", "never-written"), None),
    ) == ["kept"]


def test_rename_carries_the_state_and_failed_commands_do_not_count() -> None:
    assert _ttl_of(
        (("SET", "a", "1", "EX", 5), True),
        (("RENAME", "a", "b"), True),
        (("SET", "c", "1"), True),
        (("RENAME", "c", "d"), True),
        (("SET", "e", "1"), ConnectionError("down")),
    ) == ["d"]


def test_keys_without_ttl_target_counts_per_pattern(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        [[tool.cachecheck.target]]
        name = "sessions"
        pattern = "session:*"
        keys_without_ttl = 0
        """,
        """
        def test_sessions(cache_redis):
            cache_redis.set("session:1", "a", ex=60)
            cache_redis.set("session:2", "a")
            cache_redis.hset("session:3", "k", "v")
            cache_redis.set("config", "forever")
        """,
    )
    result = pytester.runpytest("--cache-targets")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "sessions: keys_without_ttl*2*<= 0*missed",
            "    2 of 3 keys written have no TTL, e.g. session:2, session:3",
        ]
    )


# ---------------------------------------------------------------- the summary's maths


def test_histogram_percentiles_stay_within_its_precision_of_the_exact_ones() -> None:
    rng = random.Random(7)
    durations = [int(rng.lognormvariate(11, 1.2)) for _ in range(20_000)]
    histogram = LatencyHistogram()
    histogram.record_many(durations)
    exact = sorted(d / 1e6 for d in durations)
    for fraction in (0.5, 0.9, 0.95, 0.99, 0.999):
        estimate = histogram.percentile_ms(fraction)
        assert estimate is not None
        true_value = percentile(exact, fraction)
        assert true_value <= estimate <= true_value * (1 + 1 / 64) + 1e-9, fraction
    assert histogram.max_ns == max(durations)


def test_merged_histograms_equal_one_histogram_of_everything() -> None:
    rng = random.Random(3)
    parts = [[rng.randrange(1, 10**8) for _ in range(500)] for _ in range(3)]
    merged, whole = LatencyHistogram(), LatencyHistogram()
    for part in parts:
        piece = LatencyHistogram()
        piece.record_many(part)
        merged.merge(LatencyHistogram.from_data(piece.to_data()))
        whole.record_many(part)
    assert merged.buckets == whole.buckets
    assert (merged.count, merged.max_ns) == (whole.count, whole.max_ns)


def test_worker_summaries_merge_to_the_single_process_counts() -> None:
    def records_for(test: int) -> list[tuple[int, int, tuple[object, ...], object, int]]:
        return [
            (0, 1000 + test, ("GET", f"user:{test}"), None if test % 3 else b"x", 0, 1),
            (0, 2000, ("SET", f"user:{test}", "x"), True, 0, 1),
            (0, 3000, ("MGET", f"user:{test}", "cart:1"), [b"x", None], 0, 1),
        ]

    single, workers = RunSummary(["user:*"]), [RunSummary(["user:*"]), RunSummary(["user:*"])]
    for test in range(30):
        records = records_for(test)
        single.add_test(f"t::{test}", classify_raw(records), records)
        workers[test % 2].add_test(f"t::{test}", classify_raw(records), records)
    merged = RunSummary(["user:*"])
    for worker in workers:
        merged.merge(RunSummary.from_json(worker.to_json()))
    for pattern in ("*", "user:*"):
        mine, theirs = merged.patterns[pattern], single.patterns[pattern]
        assert (mine.hits, mine.misses, mine.writes, mine.commands) == (
            theirs.hits,
            theirs.misses,
            theirs.writes,
            theirs.commands,
        )
        assert mine.latency.buckets == theirs.latency.buckets
        assert (mine.keys_written, mine.keys_without_ttl) == (theirs.keys_written, theirs.keys_without_ttl)
    assert sorted(merged.shapes) == sorted(single.shapes) == ["cart:*", "user:*"]
    assert merged.patterns["user:*"].hit_rate == single.patterns["user:*"].hit_rate == 40 / 60


def _summary_with_latencies(durations_ms: list[float]) -> RunSummary:
    summary = RunSummary()
    summary.patterns["*"].latency.record_many(int(duration * 1e6) for duration in durations_ms)
    return summary


@pytest.mark.parametrize(
    ("durations_ms", "status"),
    [
        ([1.0] * 98 + [10.0] * 2, "inconclusive"),  # p99 is 10 ms, but 100 samples prove nothing about it
        ([1.0] * 9_000 + [10.0] * 1_000, "missed"),  # 10 % of commands at 10 ms: p99 is clearly above 5 ms
        ([1.0] * 10_000, "met"),
    ],
)
def test_percentile_targets_fail_on_clear_evidence_only(durations_ms: list[float], status: str) -> None:
    target = Target(name="ops", pattern="*", limits=(("p99_ms", 5.0),))
    (result,) = evaluate_targets([target], _summary_with_latencies(durations_ms))
    assert result.status == status
    assert result.failed == (status == "missed")
    if status != "met":
        assert "at 99.9% confidence" in result.detail
