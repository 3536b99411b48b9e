"""The observation under each redis-py's own defaults: retries, RESP2 and RESP3, the forwarding shortcut.

Each major release changed something the observation path must follow: redis-py 6 retries failed
commands by default (a retry could swallow an injected fault, or repeat its delay), 8 speaks RESP3
by default (maps, sets, doubles and nulls arrive as other Python types), and the observed path of
``Redis.execute_command`` leans on its bytecode (``instrument.forwarded_name``). Every cell of the
version matrix (noxfile.py) runs these tests against its own redis-py, with that release's defaults:
no client here sets ``retry``, ``socket_timeout`` or ``protocol`` unless the test is about it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio

from pytest_cachecheck.observe import instrument
from pytest_cachecheck.observe.instrument import forwarded_name

REDIS_MAJOR = int(redis.__version__.split(".")[0])


def counting_connection(base: type) -> Any:
    """A real connection class that counts its attempts to put a command on the wire.

    ``drop`` makes that many next attempts fail the way a dropped socket does (before anything is
    sent): the failure redis-py's own retries are for. A fresh class per test keeps counts apart.
    """

    class Counting(base):  # type: ignore[misc, valid-type]
        attempts = 0
        drop = 0

        def _fail_or_count(self) -> None:
            cls = type(self)
            cls.attempts += 1
            if cls.drop:
                cls.drop -= 1
                raise redis.ConnectionError("test: the connection dropped")

    if issubclass(base, redis.asyncio.Connection):

        async def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
            self._fail_or_count()
            await base.send_packed_command(self, command, check_health)

    else:

        def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:  # type: ignore[misc]
            self._fail_or_count()
            base.send_packed_command(self, command, check_health)

    Counting.send_packed_command = send_packed_command  # type: ignore[attr-defined]
    return Counting


def default_client(module: Any, cache_url: str, how: str, connection: type) -> Any:
    """A client as an application builds one, with this redis-py's defaults, on ``connection``.

    The two ways differ: ``Redis(host=..., port=...)`` hands its default ``retry`` to its pool
    (3 retries from redis-py 6, 10 in 8.1); ``Redis.from_url`` builds the pool from the URL alone,
    whose connections do not retry unless the URL asks.
    """
    if how == "from_url":
        client = module.Redis.from_url(cache_url)
    else:
        parts = urlsplit(cache_url)
        client = module.Redis(host=parts.hostname, port=parts.port, db=int(parts.path.strip("/") or 0))
    client.connection_pool.connection_class = connection  # before the pool made any connection
    return client


CONSTRUCTIONS = pytest.mark.parametrize("how", ["constructor", "from_url"])


def test_redis_py_defaults_retry_a_dropped_connection_from_6_on(cache_url) -> None:
    """The premise of the next tests: under this redis-py's defaults a real dropped connection is
    retried, hidden from the caller, from redis-py 6 on (5.x raises it), for a client built with
    ``Redis(host=..., port=...)``."""
    connection = counting_connection(redis.Connection)
    client = default_client(redis, cache_url, "constructor", connection)
    client.ping()
    connection.attempts, connection.drop = 0, 1
    try:
        hidden = client.get("k") is None
    except redis.ConnectionError:
        hidden = False
    finally:
        client.close()
    assert hidden == (REDIS_MAJOR >= 6), (redis.__version__, hidden)
    if hidden:  # the GET again, after the reconnection's own handshake (HELLO, CLIENT SETINFO ...)
        assert connection.attempts >= 2
    else:
        assert connection.attempts == 1


@CONSTRUCTIONS
def test_injected_faults_reach_the_caller_at_once_under_the_default_retries(
    cache_url, cache_faults, cache_monitor, how
) -> None:
    """An injected outage or error is raised to the code under test on the first attempt, every time:
    the interceptor decides once per call, nothing goes on the wire, no retry repeats or hides it."""
    connection = counting_connection(redis.Connection)
    client = default_client(redis, cache_url, how, connection)
    client.ping()
    connection.attempts = 0
    with cache_faults.outage() as outage:
        for index in range(20):
            with pytest.raises(redis.ConnectionError, match="injected outage"):
                client.get(f"k{index}")
        with pytest.raises(redis.ConnectionError, match="injected outage"):
            client.pipeline().get("a").set("b", 1).execute()
    with cache_faults.errors(rate=1.0) as errors:
        for index in range(10):
            with pytest.raises(redis.ConnectionError, match="injected error"):
                client.get(f"k{index}")
    assert (outage.commands, outage.injected) == (21, 21)
    assert (errors.commands, errors.injected) == (10, 10)
    assert connection.attempts == 0, "an injected fault went on the wire (a retry below the fault?)"
    assert cache_monitor.stats().errors == 20 + 2 + 10
    # the client is healthy right after: one attempt per command again
    assert client.get("k0") is None
    assert connection.attempts == 1
    client.close()


@CONSTRUCTIONS
def test_an_injected_delay_is_paid_once_per_command_under_the_default_retries(cache_url, cache_faults, how) -> None:
    connection = counting_connection(redis.Connection)
    client = default_client(redis, cache_url, how, connection)
    client.ping()
    connection.attempts = 0
    with cache_faults.latency(ms=1) as fault:
        for index in range(5):
            client.get(f"k{index}")
        client.pipeline().get("a").get("b").execute()
    assert (fault.commands, fault.injected, connection.attempts) == (6, 6, 6)
    client.close()


@CONSTRUCTIONS
def test_injected_faults_reach_asyncio_callers_at_once_under_the_default_retries(cache_url, cache_faults, how) -> None:
    connection = counting_connection(redis.asyncio.Connection)

    async def workload() -> tuple[int, int, list[str]]:
        client = default_client(redis.asyncio, cache_url, how, connection)
        await client.ping()
        connection.attempts = 0
        raised = []
        with cache_faults.outage() as outage:
            for index in range(10):
                try:
                    await client.get(f"k{index}")
                except redis.ConnectionError as exc:
                    raised.append(str(exc))
            try:
                await client.pipeline().get("a").get("b").execute()
            except redis.ConnectionError as exc:
                raised.append(str(exc))
        attempts = connection.attempts
        assert await client.get("k0") is None
        await client.aclose() if hasattr(client, "aclose") else await client.close()
        return outage.commands, attempts, raised

    commands, attempts, raised = asyncio.run(workload())
    assert (commands, attempts, len(raised)) == (11, 0, 11)
    assert all("injected outage" in message for message in raised)
    assert connection.attempts == 1


def test_a_real_outage_reaches_a_default_client_and_it_recovers_after(pytester: pytest.Pytester) -> None:
    """``outage(real=True)``: refused connections reach a client the app builds from ``cache_url``
    with this redis-py's defaults as a ``ConnectionError`` inside the block. (``from_url`` clients do
    not retry on redis-py 5 to 8; a ``Redis(host=..., port=...)`` client of 6.x/7.x backs off for
    seconds: docs/backends-faults.md.)"""
    pytester.makepyfile(
        test_real="""
        import time
        import pytest
        import redis

        class Counting(redis.Connection):
            connects = 0
            def _connect(self):
                type(self).connects += 1
                return super()._connect()

        def test_refused(cache_server, cache_url, cache_faults):
            client = redis.Redis.from_url(cache_url, connection_class=Counting)
            client.set("kept", "value")
            with cache_faults.outage(real=True, mode="stop"):
                Counting.connects = 0
                started = time.monotonic()
                with pytest.raises(redis.ConnectionError):
                    client.get("kept")
                elapsed = time.monotonic() - started
            assert Counting.connects >= 1
            assert elapsed < 10, elapsed  # refused at once: no backoff to wait out
            assert client.get("kept") == b"value"
            client.close()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "server")
    result.assert_outcomes(passed=1)


RESP_TESTS = """
import asyncio
import pytest
import redis
import redis.asyncio
from pytest_cachecheck.observe.expiry import keys_without_ttl


def workload(client, p):
    k = lambda name: f"{p}:{name}"
    client.set(k("str"), "v", ex=60)
    client.set(k("forever"), "v")
    client.set(k("str"), "other", nx=True)       # not written: a null reply (RESP3 '_')
    client.get(k("str")); client.get(k("absent"))
    client.mget(k("str"), k("absent"), k("forever"))
    client.hset(k("hash"), mapping={"f": "1", "g": "2"}); client.expire(k("hash"), 60)
    client.hgetall(k("hash")); client.hgetall(k("absent"))  # a RESP3 map
    client.hget(k("hash"), "f"); client.hget(k("hash"), "nope")
    client.hmget(k("hash"), ["f", "nope"])
    client.hexists(k("hash"), "g"); client.hexists(k("hash"), "nope")
    client.hkeys(k("hash")); client.hvals(k("absent"))
    client.sadd(k("set"), "a", "b")
    client.smembers(k("set")); client.smembers(k("absent"))  # a RESP3 set
    client.sismember(k("set"), "a"); client.sismember(k("set"), "z")
    client.zadd(k("zset"), {"a": 1.5, "b": 2})
    client.zscore(k("zset"), "a"); client.zscore(k("zset"), "z")  # a RESP3 double
    client.zrange(k("zset"), 0, -1, withscores=True); client.zrange(k("absent"), 0, -1, withscores=True)
    client.zmscore(k("zset"), ["a", "z"]); client.zincrby(k("zset"), 1, "a")
    client.rpush(k("list"), 1, 2); client.lrange(k("list"), 0, -1); client.lindex(k("list"), 5)
    client.exists(k("str"), k("absent"), k("hash"))
    client.ttl(k("str")); client.pttl(k("absent"))
    client.getex(k("forever"), ex=30)
    client.setnx(k("str"), "x"); client.hsetnx(k("hash"), "f", "x")  # false replies: nothing written
    with pytest.raises(redis.ResponseError):
        client.incr(k("hash"))                    # WRONGTYPE: an error reply
    with client.pipeline(transaction=True) as pipe:
        pipe.get(k("str")).hgetall(k("hash")).ttl(k("str")).smembers(k("absent")).zscore(k("zset"), "b")
        pipe.execute()
    client.delete(k("list"), k("absent"))


async def async_workload(client, p):
    await client.set(f"{p}:a", "1", ex=60)
    await client.get(f"{p}:a"); await client.get(f"{p}:b")
    await client.hset(f"{p}:h", "f", "v")
    await client.hgetall(f"{p}:h"); await client.hgetall(f"{p}:none")
    async with client.pipeline(transaction=False) as pipe:
        pipe.smembers(f"{p}:none").zscore(f"{p}:none", "m").mget(f"{p}:a", f"{p}:b")
        await pipe.execute()


def observed(monitor, p):
    unprefixed = lambda key: key.split(":", 1)[1]
    events = [(e.command, tuple(map(unprefixed, e.keys)), e.outcomes) for e in monitor.events]
    stats = monitor.stats(f"{p}:*")
    no_ttl = [unprefixed(key) for key in keys_without_ttl(monitor.events, monitor.records)]
    return events, (stats.hits, stats.misses, stats.writes, stats.deletes, stats.errors, dict(stats.commands)), no_ttl


def run(monitor, make, protocol):
    monitor.reset()
    client = make(protocol)
    try:
        workload(client, f"p{protocol}")
    finally:
        client.close()
    return observed(monitor, f"p{protocol}")


def test_sync_replies_classify_the_same_on_both_protocols(cache_url, cache_monitor):
    make = lambda protocol: redis.Redis.from_url(cache_url, protocol=protocol)
    resp2, resp3 = run(cache_monitor, make, 2), run(cache_monitor, make, 3)
    assert resp2 == resp3
    events, stats, no_ttl = resp3
    assert stats[:5] == (20, 15, 8, 2, 1), stats  # hits, misses, writes, deletes, errors
    assert no_ttl == ["set", "zset"]
    assert ("HGETALL", ("absent",), ("miss",)) in events and ("ZSCORE", ("zset",), ("hit",)) in events
    assert ("SET", ("str",), ("other",)) in events  # the SET NX that wrote nothing, on both protocols


def test_decoded_replies_classify_the_same_on_both_protocols(cache_url, cache_monitor):
    make = lambda protocol: redis.Redis.from_url(cache_url, protocol=protocol, decode_responses=True)
    assert run(cache_monitor, make, 2) == run(cache_monitor, make, 3)


def test_async_replies_classify_the_same_on_both_protocols(cache_url, cache_monitor):
    async def one(protocol):
        client = redis.asyncio.Redis.from_url(cache_url, protocol=protocol)
        try:
            await async_workload(client, f"p{protocol}")
        finally:
            await client.aclose() if hasattr(client, "aclose") else await client.close()

    results = []
    for protocol in (2, 3):
        cache_monitor.reset()
        asyncio.run(one(protocol))
        results.append(observed(cache_monitor, f"p{protocol}"))
    assert results[0] == results[1]
    assert results[1][1][:2] == (3, 5), results[1]


@pytest.mark.cache_ttl(max_s=120)
@pytest.mark.parametrize("protocol", [2, 3])
def test_ttl_check_judges_both_protocols_alike(cache_url, protocol):
    client = redis.Redis.from_url(cache_url, protocol=protocol)
    client.set("with-ttl", 1, ex=60)
    client.set("with-ttl", 2, nx=True)
    client.hset("no-ttl", "f", 1)
    client.close()
"""


@pytest.mark.parametrize("backend", ["fake", "server"])
def test_resp2_and_resp3_replies_classify_the_same(pytester: pytest.Pytester, backend: str) -> None:
    """The same workload over RESP2 and RESP3 clients gives the same events, outcomes, statistics and
    keys without TTL, on the fake server and on a real one; the ``cache_ttl`` check fails both alike."""
    pytester.makepyfile(test_resp=RESP_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", backend)
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_ttl_check_judges_both_protocols_alike?2? _*",
            "cache_ttl: 1 of 2 keys written in this test have no TTL: no-ttl",
            "*_ test_ttl_check_judges_both_protocols_alike?3? _*",
            "cache_ttl: 1 of 2 keys written in this test have no TTL: no-ttl",
        ]
    )


# --- the forwarding shortcut -------------------------------------------------------------------


def test_where_the_shortcut_is_taken_it_names_a_method_of_the_class() -> None:
    """Every wrapped client method of the installed redis-py (and valkey-py) either forwards to a
    method its class has, which the observed path then calls itself, or takes the generic path."""
    seen = 0
    for module_name, class_name, method_name, _ in instrument._TARGETS:
        try:
            module = __import__(module_name, fromlist=[class_name])
        except ImportError:
            continue
        cls = getattr(module, class_name, None)
        wrapped = cls.__dict__.get(method_name) if cls is not None else None
        original = getattr(wrapped, "__cachecheck_original__", None)
        if original is None:
            continue
        seen += 1
        name = forwarded_name(original)
        if name is not None:
            assert callable(getattr(cls, name, None)), (module_name, class_name, method_name, name)
    assert seen >= 6  # redis.client and redis.asyncio.client at least


def test_a_subclass_that_overrides_the_forwarded_method_is_observed_through_it(cache_url, cache_monitor) -> None:
    """With the shortcut (redis-py 5.1+), the observed path calls ``self._execute_command``: a
    subclass's override of it runs, once per command, as it would without the plugin."""
    if not hasattr(redis.Redis, "_execute_command"):
        pytest.skip(f"redis-py {redis.__version__} has no Redis._execute_command (the generic path is taken)")

    class Audited(redis.Redis):
        audited: list[Any] = []

        def _execute_command(self, *args: Any, **options: Any) -> Any:
            Audited.audited.append(args[0])
            return super()._execute_command(*args, **options)

    client = Audited.from_url(cache_url)
    client.set("a", 1, ex=60)
    client.get("a")
    client.get("b")
    client.close()
    assert Audited.audited == ["SET", "GET", "GET"]
    assert [(event.command, event.outcome) for event in cache_monitor.events] == [
        ("SET", "write"), ("GET", "hit"), ("GET", "miss"),
    ]  # fmt: skip


def test_a_subclass_with_its_own_execute_command_is_observed_once(cache_url, cache_monitor) -> None:
    class Traced(redis.Redis):
        traced: list[Any] = []

        def execute_command(self, *args: Any, **options: Any) -> Any:
            Traced.traced.append(args[0])
            return super().execute_command(*args, **options)

    client = Traced.from_url(cache_url)
    client.set("a", 1, ex=60)
    client.mget("a", "b")
    client.close()
    assert Traced.traced == ["SET", "MGET"]
    assert [(event.command, event.outcomes) for event in cache_monitor.events] == [
        ("SET", ("write",)), ("MGET", ("hit", "miss")),
    ]  # fmt: skip


FALLBACK_CONFTEST = """
import redis

original = redis.Redis.__dict__["execute_command"]
calls = []


def execute_command(self, *args, **options):
    '''Not a pure forwarder (a tracer, or a redis-py whose bytecode differs): it must keep running.'''
    calls.append(args[0])
    return original(self, *args, **options)


redis.Redis.execute_command = execute_command  # before the plugin wraps it (pytest_configure)
"""

FALLBACK_TESTS = """
import asyncio
import conftest
import redis
from pytest_cachecheck.observe.instrument import forwarded_name


def test_the_generic_path_is_taken_and_the_replacement_runs_once_per_command(cache_url, cache_monitor):
    wrapped = redis.Redis.__dict__["execute_command"]
    assert wrapped.__cachecheck_original__ is conftest.execute_command
    assert forwarded_name(conftest.execute_command) is None
    client = redis.Redis.from_url(cache_url)
    before = len(conftest.calls)
    client.set("a", 1, ex=60)
    client.get("a"); client.get("b"); client.mget("a", "b"); client.hgetall("h")
    with client.pipeline(transaction=True) as pipe:
        pipe.watch("a")            # immediate, through Pipeline.immediate_execute_command
        pipe.get("a")
        pipe.multi()
        pipe.set("a", 2, ex=60)
        pipe.execute()
    sent = conftest.calls[before:]
    client.close()
    assert sent == ["SET", "GET", "GET", "MGET", "HGETALL"]  # pipelines do not go through it
    assert [(e.command, e.outcomes) for e in cache_monitor.events] == [
        ("SET", ("write",)), ("GET", ("hit",)), ("GET", ("miss",)), ("MGET", ("hit", "miss")),
        ("HGETALL", ("miss",)), ("WATCH", ("other",)), ("GET", ("hit",)), ("SET", ("write",)),
    ]
    stats = cache_monitor.stats()
    assert (stats.hits, stats.misses, stats.writes, stats.latency.count) == (3, 3, 2, 8)


def test_the_fixture_client_goes_through_it_too(cache_redis, cache_monitor):
    before = len(conftest.calls)
    cache_redis.get("x")
    assert conftest.calls[before:] == ["GET"]
    assert [e.command for e in cache_monitor.events] == ["GET"]
"""


def test_a_replaced_execute_command_takes_the_generic_path_and_stays_observed(pytester: pytest.Pytester) -> None:
    """Where ``Redis.execute_command`` is not the forwarder the shortcut expects (replaced before the
    plugin wrapped it, as a tracer or another redis-py would), the observed path calls it: it runs
    once per command and every command is recorded once with the right outcome. Its own process:
    the suite's plugin has wrapped the class already."""
    pytester.makeconftest(FALLBACK_CONFTEST)
    pytester.makepyfile(test_fallback=FALLBACK_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
