"""End to end: the cache_hit_rate marker on a correct cache, a buggy cache, and bad arguments."""

from __future__ import annotations

import pytest

CACHE_LAYER = """
import time

import pytest


def cached_profile(client, user_id, load):
    key = f"user:{user_id}:profile"
    value = client.get(key)
    if value is None:
        value = load(user_id)
        client.set(key, value, ex=60)
    return value


def buggy_cached_profile(client, user_id, load):
    key = f"user:{user_id}:profile:{time.time_ns()}"  # a timestamp in the key: never hits
    value = client.get(key)
    if value is None:
        value = load(user_id)
        client.set(key, value, ex=60)
    return value


def load_from_db(user_id):
    return f"profile-{user_id}".encode()
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(cache_layer=CACHE_LAYER)
    return pytester


def test_correct_cache_passes_and_buggy_cache_fails_with_details(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_app="""
        import pytest
        from cache_layer import buggy_cached_profile, cached_profile, load_from_db

        @pytest.mark.cache_hit_rate(0.8)
        def test_correct(cache_redis):
            for request in range(100):
                assert cached_profile(cache_redis, request % 5, load_from_db) == load_from_db(request % 5)

        @pytest.mark.cache_hit_rate(0.8)
        def test_buggy(cache_redis):
            for request in range(100):
                assert buggy_cached_profile(cache_redis, request % 5, load_from_db) == load_from_db(request % 5)
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cache_hit_rate: hit rate 0.0% over 100 reads of all keys (0 hits, 100 misses) "
            "is below the minimum 80.0%; most misses: user:*:profile:* (100)*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_pattern_and_warmup_arguments(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_app="""
        import pytest
        from cache_layer import cached_profile, load_from_db

        # 10 users, each read 3 times: 10 misses then 20 hits -> 66.7% overall, 100% after warmup=10
        @pytest.mark.cache_hit_rate(0.99, warmup=10)
        def test_warmup_argument(cache_redis):
            for request in range(30):
                cached_profile(cache_redis, request % 10, load_from_db)

        @pytest.mark.cache_hit_rate(0.99)
        def test_warmup_block(cache_redis, cache_monitor):
            with cache_monitor.warmup():
                for user in range(10):
                    cached_profile(cache_redis, user, load_from_db)
            for request in range(20):
                cached_profile(cache_redis, request % 10, load_from_db)
            assert cache_monitor.stats().misses == 0

        @pytest.mark.cache_hit_rate(0.99, pattern="user:*")
        def test_pattern_ignores_other_keys(cache_redis):
            cache_redis.get("session:missing")
            cache_redis.set("user:1:profile", b"x")
            cache_redis.get("user:1:profile")

        @pytest.mark.cache_hit_rate(0.7)
        def test_without_warmup_fails(cache_redis):
            for request in range(30):
                cached_profile(cache_redis, request % 10, load_from_db)
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*hit rate 66.7% over 30 reads*below the minimum 70.0%*"])


def test_no_reads_fails_and_says_why(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_app="""
        import pytest

        @pytest.mark.cache_hit_rate(0.5)
        def test_nothing_read(cache_redis):
            cache_redis.set("a", 1)
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cache_hit_rate: 1 writes, no reads of all keys: the test filled the cache*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("cache_hit_rate(1.5)", "@pytest.mark.cache_hit_rate: argument 'min' must be a number from 0 to 1, got 1.5"),
        (
            "cache_hit_rate('high')",
            "@pytest.mark.cache_hit_rate: argument 'min' must be a number from 0 to 1, got 'high'",
        ),
        ("cache_hit_rate()", "@pytest.mark.cache_hit_rate: missing argument 'min'; signature cache_hit_rate(min, *, *"),
        (
            "cache_hit_rate(0.5, warmup=-1)",
            "@pytest.mark.cache_hit_rate: argument 'warmup' must be a whole number >= 0, got -1",
        ),
        ("cache_hit_rate(0.5, patern='a:*')", "@pytest.mark.cache_hit_rate: unknown argument 'patern'; signature *"),
        (
            "cache_hit_rate(0.5, pattern='a[')",
            "@pytest.mark.cache_hit_rate: argument 'pattern' must be a glob with balanced*",
        ),
        ("cache_hit_rate(0.5, 0.6)", "@pytest.mark.cache_hit_rate: takes 1 positional argument(s), got 2*"),
        (
            "cache_latency(p95_ms=10**400)",
            "@pytest.mark.cache_latency: argument 'p95_ms' must be a number > 0, got an int of about 401 digits",
        ),
        (
            "cache_hitrate(0.5)",
            "@pytest.mark.cache_hitrate is not a cachecheck marker; did you mean @pytest.mark.cache_hit_rate?",
        ),
    ],
)
def test_bad_marker_arguments_give_one_line_errors(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        test_app=f"""
        import pytest

        @pytest.mark.{marker}
        def test_it(cache_redis):
            cache_redis.get("a")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    output = result.stdout.str()
    assert "Traceback" not in output and "pytest_cachecheck/" not in output


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.cache_hit_rate(min, *, pattern='*', warmup=0): hit rate over*"])


def test_no_monitor_makes_data_markers_error(project: pytest.Pytester, cache_redis, cache_monitor) -> None:
    project.makepyfile(
        test_app="""
        import pytest

        @pytest.mark.cache_hit_rate(0.5)
        def test_it(cache_redis):
            cache_redis.get("a")

        def test_monitor_fixture(cache_monitor):
            pass

        def test_plain(cache_redis):
            cache_redis.set("a", 1)
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--cache-no-monitor")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*cache_hit_rate needs observed commands, but the run has --cache-no-monitor*"])
    # a nested run without instrumentation must not switch off the outer run's observation
    cache_monitor.reset()
    cache_redis.get("still-observed")
    assert [event.keys for event in cache_monitor.events] == [("still-observed",)]


def test_a_users_own_registered_cache_marker_is_left_alone(pytester: pytest.Pytester) -> None:
    """pytest's own rule: a registered marker is the user's; only unregistered cache_* names are ours to judge."""
    pytester.makeini("[pytest]\nmarkers =\n    cache_warm: tests that need a warm cache (the user's own)\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cache_warm
        def test_mine():
            pass

        @pytest.mark.cache_wram
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.cache_wram is not a cachecheck marker; did you mean*"])
    result.stdout.fnmatch_lines(["cachecheck: backend fake, timing enforce"])
