"""Observation of real redis-py clients: every command, once, with per-key outcomes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from pytest_cachecheck.observe import instrument
from pytest_cachecheck.observe.commands import classify, sent_key_bytes, sent_key_text
from pytest_cachecheck.observe.instrument import unobserved


def outcomes(monitor) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(event.command, event.keys, event.outcomes) for event in monitor.events]


def test_mget_counts_each_key(cache_redis, cache_monitor) -> None:
    cache_redis.set("a", 1)
    cache_redis.set("c", 3)
    cache_monitor.reset()
    assert cache_redis.mget("a", "b", "c") == [b"1", None, b"3"]
    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses, stats.reads) == (2, 1, 3)
    assert outcomes(cache_monitor) == [("MGET", ("a", "b", "c"), ("hit", "miss", "hit"))]
    assert cache_monitor.events[0].outcome == "miss"


def test_read_outcomes_follow_the_spec(cache_redis, cache_monitor) -> None:
    cache_redis.hset("h", mapping={"f": "v"})
    cache_redis.sadd("s", "m")
    cache_monitor.reset()
    cache_redis.hget("h", "f")
    cache_redis.hget("h", "nope")
    cache_redis.hmget("h", ["f", "nope"])
    cache_redis.hgetall("h")
    cache_redis.hgetall("missing")
    cache_redis.smembers("missing")
    cache_redis.exists("h", "missing")
    cache_redis.delete("s")
    cache_redis.ping()
    assert outcomes(cache_monitor) == [
        ("HGET", ("h",), ("hit",)),
        ("HGET", ("h",), ("miss",)),
        ("HMGET", ("h", "h"), ("hit", "miss")),
        ("HGETALL", ("h",), ("hit",)),
        ("HGETALL", ("missing",), ("miss",)),
        ("SMEMBERS", ("missing",), ("miss",)),
        ("EXISTS", ("h", "missing"), ("hit", "miss")),
        ("DEL", ("s",), ("delete",)),
        ("PING", (), ("other",)),
    ]
    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses, stats.deletes) == (4, 5, 1)
    assert stats.commands["HGET"] == 2


def test_pipeline_pairs_each_command_with_its_reply(cache_redis, cache_monitor) -> None:
    cache_redis.set("page:1", "cached", ex=60)
    cache_monitor.reset()
    pipe = cache_redis.pipeline(transaction=False)
    pipe.ttl("page:1").get("page:1").get("page:2")
    ttl, hit, miss = pipe.execute()
    assert hit == b"cached" and miss is None and 0 < ttl <= 60
    events = cache_monitor.events
    assert [(event.command, event.outcome) for event in events] == [("TTL", "other"), ("GET", "hit"), ("GET", "miss")]
    assert len({event.pipeline_id for event in events}) == 1 and events[0].pipeline_id > 0


def test_transaction_and_watch_are_observed_once(cache_redis, cache_monitor) -> None:
    cache_redis.set("counter", 1)
    cache_monitor.reset()
    with cache_redis.pipeline() as pipe:
        pipe.watch("counter")
        current = int(pipe.get("counter"))
        pipe.multi()
        pipe.set("counter", current + 1)
        pipe.get("counter")
        pipe.execute()
    commands = [event.command for event in cache_monitor.events]
    assert commands == ["WATCH", "GET", "SET", "GET"]
    assert cache_monitor.stats().hits == 2


def test_scripts_inside_pipelines_are_not_double_counted(cache_redis, cache_monitor) -> None:
    script = cache_redis.register_script("return redis.call('GET', KEYS[1])")
    pipe = cache_redis.pipeline()
    script(keys=["k"], client=pipe)
    pipe.execute()
    commands = [event.command for event in cache_monitor.events]
    assert commands == ["EVALSHA"], commands  # SCRIPT EXISTS/LOAD issued inside execute() are not counted


def test_errors_are_recorded_as_error(cache_redis, cache_monitor) -> None:
    cache_redis.set("s", "text")
    with pytest.raises(redis.ResponseError):
        cache_redis.incr("s")
    assert cache_monitor.events[-1].outcome == "error"
    assert cache_monitor.stats().errors == 1


def test_async_client_and_async_pipeline(cache_redis_async, cache_monitor) -> None:
    async def workload() -> None:
        await cache_redis_async.set("a", 1)
        await cache_redis_async.get("a")
        await cache_redis_async.get("b")
        async with cache_redis_async.pipeline(transaction=True) as pipe:
            pipe.get("a").mget("a", "b")
            await pipe.execute()

    asyncio.run(workload())
    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses, stats.writes) == (3, 2, 1)
    assert [event.command for event in cache_monitor.events] == ["SET", "GET", "GET", "GET", "MGET"]


def test_clients_the_app_builds_from_cache_url_are_observed(cache_url, cache_monitor) -> None:
    app_client = redis.Redis.from_url(cache_url, decode_responses=True)
    app_client.set("greeting", "hello")
    assert app_client.get("greeting") == "hello"
    app_client.close()
    assert cache_monitor.stats().hits == 1
    assert cache_url.startswith("redis://127.0.0.1:")


def test_cache_url_and_cache_redis_share_the_data(cache_url, cache_redis) -> None:
    cache_redis.set("shared", "yes")
    with redis.Redis.from_url(cache_url) as other:
        assert other.get("shared") == b"yes"


def test_unobserved_commands_and_patterns(cache_redis, cache_monitor) -> None:
    with unobserved():
        cache_redis.set("hidden", 1)
    cache_redis.get("user:1")
    cache_redis.get("session:1")
    assert [event.command for event in cache_monitor.events] == ["GET", "GET"]
    assert cache_monitor.stats("user:*").reads == 1
    assert cache_monitor.stats("user:*").commands == {"GET": 1}
    assert cache_monitor.stats("nothing:*").hit_rate is None
    assert cache_monitor.stats().latency.count == 2
    assert cache_monitor.stats().latency.p99_ms is not None


def test_warmup_blocks_are_excluded_but_counted_raw(cache_redis, cache_monitor) -> None:
    with cache_monitor.warmup():
        cache_redis.get("cold")
    cache_redis.set("cold", 1)
    cache_redis.get("cold")
    assert cache_monitor.stats().misses == 0 and cache_monitor.stats().hits == 1
    assert cache_monitor.raw_count == 3


@pytest.mark.parametrize(
    ("args", "reply", "expected"),
    [
        (("GET", "k"), None, ("GET", ("k",), ("miss",))),
        (("GET", b"k"), b"v", ("GET", ("k",), ("hit",))),
        (("MSET", "a", 1, "b", 2), True, ("MSET", ("a", "b"), ("write", "write"))),
        (("EVALSHA", "abc", 2, "x", "y", "arg"), 1, ("EVALSHA", ("x", "y"), ("other", "other"))),
        (("SET", "k", "v", "EX", 10), True, ("SET", ("k",), ("write",))),
        (("UNLINK", "a", "b"), 2, ("UNLINK", ("a", "b"), ("delete", "delete"))),
        (("FLUSHALL",), True, ("FLUSHALL", (), ("delete",))),
        (("CLIENT SETNAME", "x"), True, ("CLIENT SETNAME", (), ("other",))),
        (("GET", "k"), redis.ConnectionError("down"), ("GET", ("k",), ("error",))),
        (("GET", b"\xff\xfe"), None, ("GET", ("\\xff\\xfe",), ("miss",))),
        (("get", "k"), b"v", ("GET", ("k",), ("hit",))),
        (("DEL", "k"), 1, ("DEL", ("k",), ("delete",))),
        (("EXISTS", "a"), 0, ("EXISTS", ("a",), ("miss",))),
        (("EXISTS", "a", "b", "c"), 2, ("EXISTS", ("a", "b", "c"), ("hit", "hit", "miss"))),
        (("JSON.MGET", "a", "b", "$"), [b"[1]", None], ("JSON.MGET", ("a", "b"), ("hit", "miss"))),
        (("SUNIONSTORE", "d", "a", "b"), 2, ("SUNIONSTORE", ("d", "a", "b"), ("write", "other", "other"))),
        (
            ("ZUNIONSTORE", "d", 2, "a", "b", "WEIGHTS", 1, 2),
            3,
            ("ZUNIONSTORE", ("d", "a", "b"), ("write", "other", "other")),
        ),
        (("BITOP", "AND", "d", "a", "b"), 1, ("BITOP", ("d",), ("write",))),
        (("ZRANGESTORE", "d", "s", 0, -1), 2, ("ZRANGESTORE", ("d",), ("write",))),
        (
            ("GEOSEARCHSTORE", "d", "s", "FROMLONLAT", 0, 0, "BYRADIUS", 1, "km"),
            0,
            ("GEOSEARCHSTORE", ("d",), ("write",)),
        ),
        (("SORT", "l", "BY", "nosort", "GET", "#", "STORE", "d"), 3, ("SORT", ("d",), ("write",))),
        (("SORT", "l", "BY", "store", "ALPHA"), [b"a"], ("SORT", (), ("other",))),
        (("BLMOVE", "a", "b", "LEFT", "RIGHT", 0), b"x", ("BLMOVE", ("a", "b"), ("write", "write"))),
        (("BRPOPLPUSH", "a", "b", 0), None, ("BRPOPLPUSH", ("a", "b"), ("write", "write"))),
        (("COPY", "a", "b"), 1, ("COPY", ("a", "b"), ("write", "write"))),
        (("XGROUP CREATE", "s", "g", "$", "MKSTREAM"), True, ("XGROUP CREATE", ("s",), ("write",))),
        (("XGROUP CREATE", "s", "g", "$"), True, ("XGROUP CREATE", (), ("other",))),
        (("JSON.MSET", "a", "$", "1", "b", "$", "2"), True, ("JSON.MSET", ("a", "b"), ("write", "write"))),
    ],
)
def test_command_table(args, reply, expected) -> None:
    assert classify(args, reply) == expected


def test_a_store_command_is_a_write_of_its_destination(cache_redis, cache_monitor) -> None:
    cache_redis.sadd("a", 1)
    cache_monitor.reset()
    cache_redis.sunionstore("dest", "a", "b")
    (event,) = cache_monitor.events
    assert (event.keys, event.outcomes, event.outcome) == (("dest", "a", "b"), ("write", "other", "other"), "write")
    assert (cache_monitor.stats().writes, cache_monitor.stats("a").writes) == (1, 0)


def test_written_keys_outlive_reset_and_keep_their_bytes(cache_redis, cache_monitor) -> None:
    """Clean-up on somebody else's server deletes these; a text stand-in would leave the real key behind."""
    with cache_monitor.warmup():
        cache_redis.set(b"bin:\xff\xfe", 1)
    cache_redis.hset("hash", "f", "v")
    cache_redis.sadd("members", "m")
    cache_monitor.reset()
    cache_redis.sunionstore("union", "members", "absent")
    cache_redis.eval("return 1", 1, "scripted")
    cache_redis.get("only-read")
    written = cache_monitor.written_keys()
    assert {sent_key_bytes(key) for key in written} == {b"bin:\xff\xfe", b"hash", b"members", b"union", b"scripted"}
    cache_monitor.reset()
    assert {sent_key_bytes(key) for key in cache_monitor.written_keys()} == {sent_key_bytes(key) for key in written}


class _Timeout(instrument.Interceptor):
    """The server may have run a command whose reply never came."""

    def before(self, commands) -> None:
        raise redis.TimeoutError("reply lost")


def test_a_write_that_failed_may_have_run_and_counts_as_written(cache_redis, cache_monitor) -> None:
    with instrument.intercepting(_Timeout()), pytest.raises(redis.TimeoutError):
        cache_redis.set("maybe", 1)
    assert cache_monitor.events[-1].outcome == "error"
    assert cache_monitor.written_keys() == {"maybe"}


@pytest.mark.parametrize("key", ["text", "ünï", b"\xff\x00raw", 42, 1.5, memoryview(b"view")])
def test_sent_key_text_round_trips_to_the_bytes_redis_py_sends(key) -> None:
    assert sent_key_bytes(sent_key_text(key)) == redis.connection.Encoder("utf-8", "strict", False).encode(key)


class _Sleeper(instrument.Interceptor):
    """Sleeps in ``pause`` (a harness delay) or in ``before`` (an injected slow server)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def pause(self, commands) -> None:
        if self.where == "pause":
            time.sleep(0.03)

    def before(self, commands) -> None:
        if self.where == "before":
            time.sleep(0.03)


@pytest.mark.parametrize(("where", "counted"), [("pause", False), ("before", True)])
def test_harness_pauses_are_not_command_latency_but_injected_delays_are(
    cache_redis, cache_monitor, where, counted
) -> None:
    with instrument.intercepting(_Sleeper(where)):
        cache_redis.get("k")
        cache_redis.pipeline().get("k").execute()
    durations = [event.duration_ns / 1e6 for event in cache_monitor.events]
    assert len(durations) == 2
    assert all((duration >= 30) == counted for duration in durations), durations


class _Forwarding:
    def execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        return self._execute_command(*args, **options)

    def _execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        return ("base", args, options)


class _ForwardingChild(_Forwarding):
    def _execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        return ("child", args, options)


class _Busy(_Forwarding):
    def execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        return self._execute_command(*args[:1], **options)


class _Defaulted(_Forwarding):
    def execute_command(self, *args, extra=1, **options):  # type: ignore[no-untyped-def]
        return self._execute_command(*args, **options)


class _KeywordOnly(_Forwarding):
    def execute_command(self, *args, extra, **options):  # type: ignore[no-untyped-def]
        return self._execute_command(*args, **options)


class _Proxy:
    """Like wrapt's FunctionWrapper (OpenTelemetry, ddtrace): attributes, ``__code__`` included, come
    from the wrapped function, but calling it runs the tracer's code first."""

    def __init__(self, wrapped: Any) -> None:
        self.__wrapped__ = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)


def test_a_method_that_only_forwards_is_replaced_not_wrapped() -> None:
    """The wrapper calls the forwarded-to method itself (one frame less per command), with the
    same result, subclass overrides included; anything that does more keeps the generic path."""
    from pytest_cachecheck.observe.instrument import forwarded_name
    from pytest_cachecheck.observe.monitor import CacheMonitor

    assert forwarded_name(_Forwarding.execute_command) == "_execute_command"
    assert forwarded_name(_Busy.execute_command) is None
    assert forwarded_name(_Defaulted.execute_command) is None
    assert forwarded_name(_KeywordOnly.execute_command) is None  # forwarding would drop 'extra'
    assert forwarded_name(_Proxy(_Forwarding.execute_command)) is None  # a tracer's wrapper keeps running
    wrapped = instrument._wrap_command(_Forwarding.execute_command)
    monitor = CacheMonitor()
    monitor.activate()
    try:
        reply = wrapped(_ForwardingChild(), "GET", "k", keys=["k"])
    finally:
        monitor.deactivate()
    assert reply == ("child", ("GET", "k"), {"keys": ["k"]})
    assert [(record[2], record[3]) for record in monitor.records] == [(("GET", "k"), reply)]
