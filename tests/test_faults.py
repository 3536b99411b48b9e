"""``cache_faults`` end to end: client-layer outage, latency and errors; real outages of the server."""

from __future__ import annotations

import pytest
from docker_support import docker_image_or_skip

APP = """
import redis

class Source:
    '''The source of truth (a database): slow, always right.'''
    def __init__(self):
        self.calls = 0
    def price(self, item):
        self.calls += 1
        return f"price-of-{item}"

class FragileCache:
    def __init__(self, client, source):
        self.client, self.source = client, source
    def price(self, item):
        cached = self.client.get(f"price:{item}")
        if cached is not None:
            return cached.decode()
        value = self.source.price(item)
        self.client.set(f"price:{item}", value, ex=60)
        return value

class GracefulCache(FragileCache):
    def price(self, item):
        try:
            return super().price(item)
        except redis.ConnectionError:
            return self.source.price(item)
"""


def test_outage_fails_a_fragile_cache_and_a_graceful_one_degrades_and_recovers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=APP)
    pytester.makepyfile(
        test_app="""
        import pytest
        import redis
        from app import FragileCache, GracefulCache, Source

        def test_fragile_cache_raises_when_redis_is_down(cache_redis, cache_faults):
            cache = FragileCache(cache_redis, Source())
            with cache_faults.outage():
                cache.price("apple")

        def test_graceful_cache_answers_from_the_source_and_recovers(cache_redis, cache_faults, cache_monitor):
            source = Source()
            cache = GracefulCache(cache_redis, source)
            cache.price("apple")
            with cache_faults.outage() as outage:
                assert [cache.price("apple") for _ in range(5)] == ["price-of-apple"] * 5
            assert outage.injected == 5 and source.calls == 6
            assert cache_monitor.stats().commands["GET"] == 6
            cache_monitor.reset()
            assert [cache.price("apple") for _ in range(10)] == ["price-of-apple"] * 10
            assert cache_monitor.stats().hit_rate == 1.0

        @pytest.mark.cache_hit_rate(0.9)
        def test_hit_rate_marker_sees_the_outage(cache_redis, cache_faults):
            cache = GracefulCache(cache_redis, Source())
            cache.price("apple")
            with cache_faults.outage():
                for _ in range(5):
                    cache.price("apple")
            for _ in range(4):
                cache.price("apple")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_fragile_cache_raises_when_redis_is_down*",
            "*ConnectionError: cachecheck: injected outage (cache_faults.outage), Redis is down",
        ]
    )
    result.stdout.fnmatch_lines(["*FAILED*test_hit_rate_marker_sees_the_outage*"])


def test_latency_counts_in_observed_latency_sync_async_and_pipelines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_latency="""
        import asyncio
        import time

        def test_sync_and_pipeline(cache_redis, cache_faults, cache_monitor):
            with cache_faults.latency(ms=30) as fault:
                started = time.perf_counter()
                cache_redis.set("a", 1)
                pipe = cache_redis.pipeline()
                pipe.get("a").get("b")
                pipe.execute()
                elapsed = time.perf_counter() - started
            assert fault.commands == 2 and fault.injected == 2
            assert elapsed >= 0.06
            stats = cache_monitor.stats()
            assert stats.latency.count == 3
            assert stats.latency.max_ms >= 30
            cache_monitor.reset()
            cache_redis.get("a")
            assert cache_monitor.stats().latency.max_ms < 30

        def test_async_does_not_block_the_loop(cache_redis_async, cache_faults, cache_monitor):
            async def main():
                with cache_faults.latency(ms=50):
                    started = time.perf_counter()
                    await asyncio.gather(*(cache_redis_async.get(f"k{i}") for i in range(20)))
                    return time.perf_counter() - started
            elapsed = asyncio.run(main())
            assert 0.05 <= elapsed < 0.5, elapsed  # blocking the loop would take 20 x 50 ms = 1 s
            assert cache_monitor.stats().latency.p50_ms >= 50
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_errors_fail_a_seeded_fraction_of_commands(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_errors="""
        import redis

        def failures(client, faults, seed):
            pattern = []
            with faults.errors(rate=0.3, seed=seed) as fault:
                for i in range(400):
                    try:
                        client.get(f"k{i}")
                        pattern.append(0)
                    except redis.ConnectionError:
                        pattern.append(1)
            assert fault.injected == sum(pattern)
            return pattern

        def test_rate_and_replay(cache_redis, cache_faults, cache_monitor):
            first = failures(cache_redis, cache_faults, seed=7)
            assert 80 <= sum(first) <= 160
            assert failures(cache_redis, cache_faults, seed=7) == first
            assert failures(cache_redis, cache_faults, seed=8) != first
            errors = [event for event in cache_monitor.events if event.outcomes == ("error",)]
            assert len(errors) == sum(first) * 2 + sum(failures(cache_redis, cache_faults, seed=8))

        def test_rate_zero_and_one(cache_redis, cache_faults):
            assert sum(failures(cache_redis, cache_faults, seed=1)) > 0
            with cache_faults.errors(rate=0.0):
                assert cache_redis.get("x") is None
            with cache_faults.errors(rate=1.0) as fault:
                for _ in range(3):
                    try:
                        cache_redis.get("x")
                    except redis.ConnectionError:
                        pass
            assert fault.injected == 3
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_bad_arguments_are_one_line_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        def test_latency(cache_faults):
            with cache_faults.latency(ms=-5):
                pass

        def test_rate(cache_faults):
            with cache_faults.errors(rate=1.5):
                pass

        def test_mode(cache_faults):
            with cache_faults.outage(mode="pause"):
                pass

        def test_real_on_fake(cache_faults):
            with cache_faults.outage(real=True):
                pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*ValueError: cache_faults.latency: ms must be a number >= 0, got -5",
            "*ValueError: cache_faults.errors: rate must be a number from 0 to 1, got 1.5",
            "*ValueError: cache_faults.outage: mode must be one of stop, hang, got 'pause'",
            "*BackendError: cache_faults.outage(real=True) needs the server or docker backend, this run uses 'fake'*",
        ]
    )
    assert "faults.py" not in result.stdout.str()


def test_client_faults_need_the_monitor(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nomon="""
        def test_outage(cache_faults):
            with cache_faults.outage():
                pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-no-monitor")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: cache_faults.outage() injects faults at the client layer*"])


REAL_OUTAGE_TESTS = """
import socket
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

def no_retry(port, timeout):
    # redis-py >= 6 retries failed commands with backoff; an outage test wants the failure now
    return redis.Redis(port=port, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False

def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3) as conn:
            conn.sendall(b"PING\\r\\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False

def test_stop_refuses_connections_and_comes_back_with_its_data(cache_server, cache_redis, cache_faults):
    cache_redis.set("kept", "value")
    cache_redis.hset("hash", mapping={"a": 1})
    with cache_faults.outage(real=True, mode="stop"):
        assert not connects(cache_server.port)
        with pytest.raises(redis.ConnectionError):
            no_retry(cache_server.port, 0.5).get("kept")
    assert answers(cache_server.port)
    assert cache_redis.get("kept") == b"value"
    assert cache_redis.hgetall("hash") == {b"a": b"1"}

def test_hang_freezes_the_server_until_the_client_times_out(cache_server, cache_redis, cache_faults):
    cache_redis.set("kept", "value")
    impatient = no_retry(cache_server.port, 0.3)
    with cache_faults.outage(real=True, mode="hang"):
        assert not answers(cache_server.port)
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            impatient.get("kept")
    assert impatient.get("kept") == b"value"

def test_next_test_still_isolated(cache_redis):
    assert cache_redis.dbsize() == 0
"""


def test_real_outage_on_server_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_real=REAL_OUTAGE_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "server")
    result.assert_outcomes(passed=3)


def test_real_outage_on_docker_backend(pytester: pytest.Pytester) -> None:
    image = docker_image_or_skip()
    pytester.makepyfile(test_real=REAL_OUTAGE_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "docker", "--cache-image", image)
    result.assert_outcomes(passed=3)


def test_plugin_frames_are_hidden_from_the_users_traceback(pytester: pytest.Pytester) -> None:
    """An injected outage reads test -> redis-py -> ConnectionError: no observer or fault frame between."""
    pytester.makepyfile(
        test_it="""
        def test_down(cache_redis, cache_faults):
            with cache_faults.outage():
                cache_redis.get("k")

        def test_pipeline_down(cache_redis, cache_faults):
            with cache_faults.errors(1.0):
                cache_redis.pipeline().get("k").execute()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert "injected outage" in output and "injected error" in output
    for frame in ("instrument.py:", "faults.py:", "pytest_cachecheck/"):  # a frame's "file:line" or path
        assert frame not in output, frame
