"""End to end: cache_latency ceilings, cache_bench.speedup / load and the cache_speedup marker."""

from __future__ import annotations

import pytest

# A read-through cache. SlowHitConnection is a proxy that holds every value read for 20 ms (inside
# the Redis command, where the plugin times it); misses and writes go through at once.
LAYERS = """
import time

import redis


class SlowHitConnection(redis.Connection):
    def read_response(self, *args, **kwargs):
        response = super().read_response(*args, **kwargs)
        if isinstance(response, bytes) and response != b"OK":
            time.sleep(0.020)
        return response


def client(url, slow_hits=False):
    if slow_hits:
        return redis.Redis.from_url(url, connection_class=SlowHitConnection)
    return redis.Redis.from_url(url)


def spin(seconds):
    \"\"\"Stand-in for a database query or rendering: CPU work, like the real thing.\"\"\"
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class ProductPage:
    \"\"\"Cold: query (2 ms) + render (1 ms); warm: render only -> a real ~3x speedup.\"\"\"

    def __init__(self, client, store=True):
        self.client, self.store = client, store

    def get(self, product_id):
        key = f"product:{product_id}"
        data = self.client.get(key)
        if data is None:
            spin(0.002)
            data = f"product {product_id}".encode()
            if self.store:
                self.client.set(key, data, ex=300)
        spin(0.001)
        return data

    def clear(self, product_id):
        self.client.delete(f"product:{product_id}")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(layers=LAYERS)
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest("-p", "no:cacheprovider", "--cache-backend", "server", *args)


def test_latency_ceiling_fails_a_slow_layer_and_passes_a_healthy_one(project: pytest.Pytester) -> None:
    """Fake backend: the healthy layer's commands run in-process, so a loaded CI machine cannot slow them
    past 5 ms; the slow layer goes through a real TCP connection (fakeredis served on loopback)."""
    project.makepyfile(
        test_latency="""
        import pytest
        from layers import ProductPage, client

        def browse(page):
            for request in range(120):
                page.get(request % 10)

        @pytest.mark.cache_latency(p95_ms=5)
        def test_healthy(cache_redis):
            browse(ProductPage(cache_redis))

        @pytest.mark.cache_latency(p95_ms=5)
        def test_slow_hits(cache_url):
            browse(ProductPage(client(cache_url, slow_hits=True)))
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_healthy PASSED*",
            "*cache_latency: p95 * ms is above the ceiling 5 ms (lower bound * ms at 99.9% confidence; "
            "slowest: GET product:* (*); over 130 commands; server-side execution * ms per call over 130 calls*",
        ]
    )


def test_max_ceiling_with_server_side_time(project: pytest.Pytester) -> None:
    """On a real server the message tells server execution time from network and client time."""
    project.makepyfile(
        test_max="""
        import pytest
        from layers import ProductPage, client

        @pytest.mark.cache_latency(max_ms=15, pattern="product:*", command="get")
        def test_slow_hits_max(cache_url):
            page = ProductPage(client(cache_url, slow_hits=True))
            for request in range(20):
                page.get(request % 2)
        """
    )
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cache_latency: max * ms is above the ceiling 15 ms (1* commands over it: GET product:* (1*)); "
            "over 20 GET commands on keys matching 'product:*'; server-side execution 0.* ms per call over 20 calls "
            "(the rest is network and client)",
        ]
    )


def test_too_few_samples_is_a_warning_not_a_failure(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_few="""
        import pytest

        @pytest.mark.cache_latency(p99_ms=50)
        def test_few(cache_redis):
            for index in range(20):
                cache_redis.get(f"k{index}")
        """
    )
    result = run(project)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*InconclusiveCheckWarning: cache_latency inconclusive: p99 * ms vs ceiling 50 ms: 20 samples are too "
            "few to show it below the ceiling (needs >= 299)*",
        ]
    )


def test_latency_marker_arguments(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.cache_latency()
        def test_no_ceiling():
            pass

        @pytest.mark.cache_latency(p95_ms="5")
        def test_text():
            pass

        @pytest.mark.cache_latency(p95_ms=5)
        def test_no_commands():
            pass
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.cache_latency: give at least one ceiling: p50_ms, p95_ms, p99_ms or max_ms*",
            "*@pytest.mark.cache_latency: argument 'p95_ms' must be a number > 0, got '5'",
            "*cache_latency: no commands were observed*",
        ]
    )


def test_speedup_of_a_real_cache_passes_and_a_no_op_cache_fails(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_speedup="""
        import pytest
        from layers import ProductPage, client

        @pytest.mark.cache_speedup(2)
        def test_real_cache(cache_url, cache_bench):
            page = ProductPage(client(cache_url))
            result = cache_bench.speedup(lambda: page.get(1), cold=lambda: page.clear(1))
            assert result.ratio > 1.5, result.describe()
            assert result.low <= result.ratio <= result.high and result.warm_misses == 0

        @pytest.mark.cache_speedup(2)
        def test_no_op_cache(cache_url, cache_bench):
            page = ProductPage(client(cache_url), store=False)
            cache_bench.speedup(lambda: page.get(1), cold=lambda: page.clear(1))

        @pytest.mark.cache_speedup(2)
        def test_not_measured(cache_url):
            pass
        """
    )
    result = run(project, "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_real_cache PASSED*",
            "*cache_speedup: speedup *x (99% CI *x-*x) over 21 rounds: cold * ms, warm * ms, warm calls read 0 hits "
            "/ 21 misses is below the minimum 2x; the warm calls never hit the cache",
            "*cache_speedup: no speedup was measured; call cache_bench.speedup(call, cold) in the test",
        ]
    )


def test_a_clear_speedup_passes_without_an_inconclusive_warning(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_clear_speedup="""
        import pytest
        from layers import client, spin

        class ReportPage:
            # cold: a 20 ms query; warm: one GET -> far above 2x, decided even on a loaded machine
            def __init__(self, client):
                self.client = client

            def get(self):
                data = self.client.get("report:1")
                if data is None:
                    spin(0.020)
                    data = b"report"
                    self.client.set("report:1", data, ex=300)
                return data

        @pytest.mark.cache_speedup(2)
        def test_clear(cache_url, cache_bench):
            page = ReportPage(client(cache_url))
            result = cache_bench.speedup(page.get, cold=lambda: page.client.delete("report:1"))
            assert result.low >= 2, result.describe()
        """
    )
    result = run(project, "-W", "error::pytest_cachecheck.InconclusiveCheckWarning")
    result.assert_outcomes(passed=1)


def test_load_run_reports_percentiles_and_hit_rate(project: pytest.Pytester) -> None:
    """The FastAPI report's claim as a test: 30 concurrent users, p99 <= 10 ms... and the hit rate."""
    project.makepyfile(
        test_load="""
        import asyncio
        import pytest
        import redis.asyncio
        from layers import client

        @pytest.mark.cache_hit_rate(0.9)
        def test_threads(cache_url, cache_bench):
            redis_client = client(cache_url)

            def endpoint():
                value = redis_client.get("stats")
                if value is None:
                    redis_client.set("stats", b"42", ex=30)
                return value

            result = cache_bench.load(endpoint, concurrency=30, requests=600)
            assert len(result.latencies_ms) == 600 and result.errors == 0
            assert result.p50_ms <= result.p95_ms <= result.p99_ms <= result.p999_ms <= result.max_ms
            assert 0.9 <= result.hit_rate < 1 and result.misses >= 1
            assert result.bounds(0.99).upper is not None
            print(result.describe())

        def test_tasks_and_errors(cache_url, cache_bench):
            async def scenario():
                redis_client = redis.asyncio.Redis.from_url(cache_url)
                calls = 0

                async def endpoint():
                    nonlocal calls
                    calls += 1
                    if calls % 10 == 0:
                        raise ConnectionError("backend down")
                    return await redis_client.get("stats")

                result = await cache_bench.load(endpoint, concurrency=8, requests=200)
                await redis_client.aclose()
                return result

            result = asyncio.run(scenario())
            assert (result.errors, len(result.latencies_ms)) == (20, 180)
            assert result.first_error == "ConnectionError: backend down"
            assert result.hit_rate == 0.0
        """
    )
    result = run(project, "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*600 requests, 30 concurrent, * req/s: p50 * ms, p95 * ms, p99 * ms, p99.9 * ms, *"])


def test_bench_argument_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        def test_bad(cache_bench):
            with pytest.raises(ValueError, match="'rounds' must be a whole number >= 3, got 1"):
                cache_bench.speedup(lambda: None, lambda: None, rounds=1)
            with pytest.raises(ValueError, match="'concurrency' must be a whole number >= 1, got 0"):
                cache_bench.load(lambda: None, concurrency=0)
            with pytest.raises(TypeError, match="'call' and 'cold' must be callables"):
                cache_bench.speedup(None, lambda: None)

        @pytest.mark.cache_speedup(0)
        def test_zero():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.cache_speedup: argument 'min' must be a number > 0, got 0"])


def test_timing_report_mode_warns_on_clock_checks_and_still_fails_counts(project: pytest.Pytester) -> None:
    """``--cache-timing report``: latency and speedup misses (marker and target) become warnings; a hit-rate
    miss, a count, still fails the test and the run."""
    project.makefile(
        ".toml",
        targets="""
        [[tool.cachecheck.target]]
        name = "products"
        pattern = "product:*"
        p99_ms = 5
        hit_rate = 0.99
        """,
    )
    project.makepyfile(
        test_report_mode="""
        import pytest
        from layers import ProductPage, client

        @pytest.mark.cache_latency(p95_ms=5)
        def test_slow_hits(cache_url):
            page = ProductPage(client(cache_url, slow_hits=True))
            for request in range(120):
                page.get(request % 10)

        @pytest.mark.cache_speedup(2)
        def test_no_op_cache(cache_url, cache_bench):
            page = ProductPage(client(cache_url), store=False)
            cache_bench.speedup(lambda: page.get(1), cold=lambda: page.clear(1))

        @pytest.mark.cache_hit_rate(0.99, pattern="product:*")
        def test_hit_rate(cache_redis):
            page = ProductPage(cache_redis)
            for request in range(20):
                page.get(request % 10)
        """
    )
    args = ("-p", "no:cacheprovider", "-v", "--cache-targets", "targets.toml")
    result = project.runpytest(*args, "--cache-timing", "report", "--cache-report", "report.md")
    result.assert_outcomes(passed=2, failed=1)
    markdown = (project.path / "report.md").read_text()
    assert "0 of 2 targets met." in markdown and "| ⚠️ not enforced |" in markdown
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_slow_hits PASSED*",
            "*test_no_op_cache PASSED*",
            "*test_hit_rate FAILED*",
            "*TimingNotEnforcedWarning: cache_latency: p95 * ms is above the ceiling 5 ms*"
            "[[]not enforced: --cache-timing report[]]",
            "*TimingNotEnforcedWarning: cache_speedup: speedup *x * is below the minimum 2x*",
            "products: p99_ms * ms  <= 5.000 ms  not enforced",
            "cachecheck: 1 of 2 targets missed:",
            "cachecheck: 1 of 2 timing targets missed, not enforced (--cache-timing report):",
            "  products p99_ms * ms (target <= 5.000 ms): not enforced",
            "  products hit_rate *% (target >= 99.0%): missed",
        ]
    )
    enforced = project.runpytest(*args, "-k", "slow_hits")
    enforced.assert_outcomes(failed=1)
    enforced.stdout.fnmatch_lines(["cachecheck: 2 of 2 targets missed:"])
    bad = project.runpytest("-p", "no:cacheprovider", "--cache-timing", "lax")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--cache-timing: expected one of enforce, report, got 'lax'"])
