"""End to end: cache_ttl reads real TTLs; cache_forbid sees commands inside Lua; server-side stats."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from pytest_cachecheck.observe.server_stats import ServerCounters, difference, parse_counters


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_ttl_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ttl="""
        import pytest

        @pytest.mark.cache_ttl(max_s=600)
        def test_set_without_ex(cache_redis):
            cache_redis.set("user:1:profile", b"a", ex=300)
            cache_redis.set("user:2:profile", b"b")
            cache_redis.hset("user:3:tags", "x", 1)

        @pytest.mark.cache_ttl(min_s=30, max_s=600)
        def test_bounds(cache_redis):
            cache_redis.set("page:home", b"a", ex=3600)
            cache_redis.set("page:about", b"b", px=500)
            cache_redis.set("page:faq", b"c", ex=30)  # exactly min_s: passes however long the test takes

        @pytest.mark.cache_ttl(max_s=600)
        def test_expire_after_write_and_deleted_keys(cache_redis):
            cache_redis.set("a", 1)
            cache_redis.expire("a", 60)
            cache_redis.set("gone", 1)
            cache_redis.delete("gone")

        @pytest.mark.cache_ttl(min_s=1, max_s=1)
        def test_write_after_expire_keeps_the_ttl(cache_redis):
            import time
            cache_redis.hset("cart:1", "a", 1)
            cache_redis.expire("cart:1", 1)
            time.sleep(0.3)
            cache_redis.hset("cart:1", "b", 2)  # HSET keeps the TTL set 0.3 s earlier: still exactly 1 s

        @pytest.mark.cache_ttl(pattern="session:*", required=False, max_s=60)
        def test_pattern_and_optional(cache_redis):
            cache_redis.set("config", 1)
            cache_redis.set("session:1", 1)
            cache_redis.set("session:2", 1, ex=30)

        @pytest.mark.cache_ttl()
        def test_no_writes(cache_redis):
            cache_redis.get("x")

        @pytest.mark.cache_ttl(min_s=10, max_s=1)
        def test_bad_order():
            pass
        """
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3, failed=3, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*test_expire_after_write_and_deleted_keys PASSED*",
            "*test_write_after_expire_keeps_the_ttl PASSED*",
            "*test_pattern_and_optional PASSED*",
            "*cache_ttl: 2 of 3 keys written in this test have no TTL: user:2:profile, user:3:tags",
            "*cache_ttl: 1 key(s) have a TTL below min_s=30: page:about (0.5* s); "
            "1 key(s) have a TTL above max_s=600: page:home (3600 s)",
            "*cache_ttl: no writes of keys were observed in this test*so no TTL could be checked",
            "*@pytest.mark.cache_ttl: 'min_s' (10) must not be greater than 'max_s' (1)",
        ]
    )


@pytest.mark.parametrize("backend", ["fake", "server"])
def test_ttl_shown_is_the_one_given_however_slow_the_round_trips(pytester: pytest.Pytester, backend: str) -> None:
    """Every reply held 50 ms in the application's connection class: the measured interval of each
    TTL is 50 ms wide, its lower bound 3599.95 s; the message shows the 3600 s the key was given."""
    if backend == "server" and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    pytester.makepyfile(
        test_slow="""
        import time

        import pytest
        import redis

        class SlowReplies(redis.Connection):
            def read_response(self, *args, **kwargs):
                reply = super().read_response(*args, **kwargs)
                time.sleep(0.05)
                return reply

        @pytest.mark.cache_ttl(min_s=3601, max_s=3602)
        def test_slow(cache_url):
            client = redis.Redis.from_url(cache_url, connection_class=SlowReplies)
            client.set("page:home", b"x", ex=3600)
            client.set("page:about", b"x", px=3602500)
            client.set("page:ok", b"x", px=3601500)
            client.close()
        """
    )
    result = run(pytester, "--cache-backend", backend)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cache_ttl: 1 key(s) have a TTL below min_s=3601: page:home (3600 s); "
            "1 key(s) have a TTL above max_s=3602: page:about (3602.5 s)"
        ]
    )


def test_ttl_of_a_pipelined_write_is_dated_by_the_whole_round_trip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe="""
        import pytest

        @pytest.mark.cache_ttl(min_s=600, max_s=600)
        def test_pipelined(cache_redis):
            pipe = cache_redis.pipeline()
            for index in range(2000):  # a long round trip, shared out between the commands
                pipe.set(f"page:{index}", b"x", ex=600)
            pipe.execute()
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_ttl_set_inside_lua_counts(pytester: pytest.Pytester) -> None:
    """The TTL is read from the server, so an EXPIRE done by a script is seen; a script's SET without one too."""
    pytester.makepyfile(
        test_lua="""
        import pytest

        SET_WITH_TTL = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('EXPIRE', KEYS[1], 60)"

        @pytest.mark.cache_ttl(max_s=120)
        def test_script_sets_ttl(cache_redis):
            cache_redis.eval(SET_WITH_TTL, 1, "report:1", "data")

        @pytest.mark.cache_ttl()
        def test_script_forgets_ttl(cache_redis):
            cache_redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "report:2", "data")
        """
    )
    result = run(pytester, "--cache-backend", "server")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*cache_ttl: 1 of 1 keys written in this test have no TTL: report:2"])


FORBID_TESTS = """
import pytest

@pytest.mark.cache_forbid("KEYS", "flushall")
def test_keys_in_lua(cache_redis):
    cache_redis.set("item:1", 1)
    cache_redis.eval("for _, k in ipairs(redis.call('KEYS', 'item:*')) do redis.call('DEL', k) end", 0)

@pytest.mark.cache_forbid("KEYS")
def test_keys_from_client(cache_redis):
    cache_redis.keys("item:*")

@pytest.mark.cache_forbid("KEYS", "FLUSHALL")
def test_clean(cache_redis, cache_monitor):
    with cache_monitor.warmup():  # set-up the check must not blame on the code under test
        cache_redis.keys("*")
    cache_redis.set("item:1", 1)
    cache_redis.delete("item:1")

@pytest.mark.cache_forbid("CONFIG")
def test_subcommands(cache_redis):
    cache_redis.config_get("maxmemory")

@pytest.mark.cache_forbid()
def test_no_command():
    pass

@pytest.mark.cache_forbid("KEYS *")
def test_not_a_command():
    pass
"""


@pytest.mark.parametrize("backend", ["server", "fake"])
def test_forbid_sees_keys_inside_eval(pytester: pytest.Pytester, backend: str) -> None:
    """On fake too: the fake server's own view counts what scripts run."""
    pytester.makepyfile(test_forbid=FORBID_TESTS)
    result = run(pytester, "--cache-backend", backend, "-v")
    result.assert_outcomes(passed=1, failed=3, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*test_clean PASSED*",
            "*cache_forbid: KEYS ran 1 time(s) on the server but never from the client: inside Lua scripts or "
            "functions (1 script call(s) observed client-side)",
            "*cache_forbid: KEYS issued 1 time(s) by the client (first: KEYS)",
            # fakeredis has no CONFIG GET: the test fails on its error reply there
            "*cache_forbid: CONFIG issued 1 time(s) by the client (first: CONFIG GET)"
            if backend == "server"
            else "*test_subcommands FAILED*",
            "*@pytest.mark.cache_forbid: give at least one command*",
            "*@pytest.mark.cache_forbid: argument 'KEYS [*]' must be a Redis command name such as 'KEYS'*",
        ]
    )


def test_server_stats_are_recorded_per_test(pytester: pytest.Pytester) -> None:
    """``TestContext.data["server_stats"]``: keyspace hits and misses, calls per command, Lua included."""
    pytester.makeconftest(
        """
        import pytest
        from pytest_cachecheck.plugin import RUN_KEY

        SEEN = {}

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):
            result = yield
            SEEN[item.name] = item.config.stash[RUN_KEY].context.data.get("server_stats")
            return result

        def pytest_sessionfinish(session):
            stats = SEEN["test_reads"][-1]
            print("STATS", stats.keyspace_hits, stats.keyspace_misses, stats.calls["GET"], stats.calls["EVAL"])
            print("DESCRIBE", stats.describe())
            print("EMPTY", SEEN["test_nothing"][-1].total_calls)
        """
    )
    pytester.makepyfile(
        test_stats="""
        def test_reads(cache_redis):
            cache_redis.set("a", 1)
            cache_redis.get("a")
            cache_redis.get("missing")
            cache_redis.eval("redis.call('GET', 'a'); return redis.call('GET', 'nope')", 0)

        def test_nothing(cache_redis):
            pass
        """
    )
    result = run(pytester, "--cache-backend", "server", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*STATS 2 2 4 1",
            "DESCRIBE server-side: 6 commands (GET 4, *) in * ms, keyspace 2 hits / 2 misses",
            "EMPTY 0",
        ]
    )


def test_parse_counters_sums_cluster_nodes_and_ignores_info() -> None:
    node = {"cmdstat_get": {"calls": 3, "usec": 30}, "cmdstat_config|set": {"calls": 1, "usec": 5}}
    single = parse_counters({"keyspace_hits": 4, "keyspace_misses": 1}, node)
    assert single.calls == Counter({"GET": 3, "CONFIG SET": 1})
    cluster = parse_counters(
        {"n1": {"keyspace_hits": 4, "keyspace_misses": 1}, "n2": {"keyspace_hits": 1, "keyspace_misses": 0}},
        {"n1": node, "n2": {"cmdstat_get": {"calls": 2, "usec": 10}, "cmdstat_info": {"calls": 9, "usec": 90}}},
    )
    assert (cluster.keyspace_hits, cluster.keyspace_misses) == (5, 1)
    assert cluster.calls["GET"] == 5
    empty = ServerCounters(0, 0, Counter(), Counter())
    delta = difference(empty, cluster)
    assert "INFO" not in delta.calls and delta.count("CONFIG") == 1 and delta.total_ms == pytest.approx(0.045)
    assert delta.hit_rate == pytest.approx(5 / 6)


needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

ON_EVERY_MASTER = """
def key_on_every_master(client, prefix):
    '''One key per master of the three: a script runs on the master that owns its key's slot.'''
    keys = {}
    for i in range(1000):
        keys.setdefault(client.get_node_from_key(f"{prefix}{i}").name, f"{prefix}{i}")
    assert len(keys) == 3
    return sorted(keys.values())
"""

CLUSTER_FORBID_TESTS = (
    ON_EVERY_MASTER
    + """
import pytest

@pytest.mark.cache_forbid("KEYS")
def test_keys_in_lua_on_every_master(cache_redis):
    for key in key_on_every_master(cache_redis, "item:"):
        cache_redis.set(key, 1)
        cache_redis.eval("return #redis.call('KEYS', 'item:*')", 1, key)

@pytest.mark.cache_forbid("KEYS")
def test_clean_lua_on_every_master(cache_redis):
    for key in key_on_every_master(cache_redis, "item:"):
        cache_redis.set(key, 1)
        cache_redis.eval("return redis.call('GET', KEYS[1])", 1, key)
"""
)


@needs_redis_server
def test_forbid_sees_keys_inside_eval_on_every_cluster_master(pytester: pytest.Pytester) -> None:
    """Server-side counters are summed over the primaries, not read from redis-py's one default node."""
    pytester.makepyfile(test_forbid=CLUSTER_FORBID_TESTS)
    result = run(pytester, "--cache-backend", "cluster", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*test_clean_lua_on_every_master PASSED*",
            "*cache_forbid: KEYS ran 3 time(s) on the server but never from the client: inside Lua scripts or "
            "functions (3 script call(s) observed client-side)",
        ]
    )


@needs_redis_server
def test_cluster_keyspace_hits_and_misses_equal_client_side_ones(pytester: pytest.Pytester) -> None:
    """Plain GETs spread over the three masters: the server-side deltas add up to what the client saw."""
    pytester.makeconftest(
        """
        import json
        import pytest
        from pytest_cachecheck.plugin import RUN_KEY

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):
            result = yield
            context = item.config.stash[RUN_KEY].context
            server, client = context.data["server_stats"][-1], context.monitor.stats()
            with open("keyspace.json", "w") as out:
                json.dump(
                    {
                        "server": [server.keyspace_hits, server.keyspace_misses, server.count("GET")],
                        "client": [client.hits, client.misses, client.commands["GET"]],
                    },
                    out,
                )
            return result
        """
    )
    pytester.makepyfile(
        test_gets="""
        def test_gets_on_every_master(cache_redis):
            present = [f"user:{i}" for i in range(40)]
            missing = [f"ghost:{i}" for i in range(20)]
            for keys in (present, missing):
                assert len({cache_redis.get_node_from_key(key).name for key in keys}) == 3
            for key in present:
                cache_redis.set(key, 1)
            for key in present + missing:
                cache_redis.get(key)
        """
    )
    run(pytester, "--cache-backend", "cluster").assert_outcomes(passed=1)
    counts = json.loads((pytester.path / "keyspace.json").read_text())
    assert counts["server"] == counts["client"] == [40, 20, 60]


# ---------------------------------------------------------------- what the server counts beyond observed calls

OWN_AND_HANDSHAKE_TESTS = """
import pytest
import redis
from pytest_cachecheck.checks.ttl import WrittenKey, read_ttls
from pytest_cachecheck.observe.instrument import unobserved

@pytest.mark.cache_forbid("PTTL")
def test_stale_read_probe_pttl(cache_consistency, cache_redis):
    truth = {}
    def write(key, value):
        truth[key] = value  # the cache is never filled: every final read diverges from the truth
    def read(key):
        return cache_redis.get(f"cache:{key}")
    report = cache_consistency.run(read, write, keys=2, threads=1, ops=10, amplify=False, seed=1, truth=truth.get)
    assert len(report.divergences) == 2  # so the check asked the server for the keys' PTTL

@pytest.mark.cache_forbid("PTTL", "MULTI")
def test_plugin_helpers_pttl(cache_redis):
    cache_redis.set("page:1", 1, ex=60)
    assert [ttl.key for ttl in read_ttls(cache_redis, [WrittenKey("page:1", 0, 0)])] == ["page:1"]
    with unobserved():
        cache_redis.pttl("page:1")
        pipe = cache_redis.pipeline(transaction=True)
        pipe.pttl("page:1")
        pipe.execute()

@pytest.mark.cache_forbid("HELLO", "CLIENT SETINFO", "CLIENT SETNAME", "SELECT", "AUTH", "READONLY")
def test_fresh_client_handshake(cache_url):
    client = redis.Redis.from_url(cache_url, client_name="app")
    client.get("user:1")
    client.close()

@pytest.mark.cache_forbid("CLIENT SETNAME")
def test_handshake_command_issued_by_the_code(cache_redis):
    cache_redis.client_setname("app")

@pytest.mark.cache_forbid("KEYS", "HELLO")
def test_keys_in_lua_from_a_fresh_client(cache_url):
    client = redis.Redis.from_url(cache_url)
    client.eval("return #redis.call('KEYS', 'item:*')", 0)
    client.close()

@pytest.mark.cache_forbid("KEYS")
def test_keys_from_an_unobserved_connection(cache_redis):
    connection = cache_redis.connection_pool.make_connection()  # get_connection's signature differs across redis-py 5/6
    try:
        connection.send_command("KEYS", "item:*")  # below execute_command: no observed client call
        connection.read_response()
    finally:
        connection.disconnect()
"""


@needs_redis_server
def test_forbid_leaves_out_the_plugins_own_commands_and_connection_handshakes(pytester: pytest.Pytester) -> None:
    """Server-side excess the code under test did not cause is not blamed on it; a forbidden
    command that really ran (in Lua, or from a connection the plugin does not see) still fails."""
    pytester.makepyfile(test_forbid_origin=OWN_AND_HANDSHAKE_TESTS)
    result = run(pytester, "--cache-backend", "server", "-v", "--cache-report", "run.json")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*test_stale_read_probe_pttl PASSED*",
            "*test_plugin_helpers_pttl PASSED*",
            "*test_fresh_client_handshake PASSED*",
            "*cache_forbid: CLIENT SETNAME issued 1 time(s) by the client (first: CLIENT SETNAME)",
            "*cache_forbid: KEYS ran 1 time(s) on the server but never from the client: inside Lua scripts or "
            "functions (1 script call(s) observed client-side)",
            "*cache_forbid: KEYS ran 1 time(s) on the server but never from an observed client: inside Lua scripts "
            "or functions, or from a client the plugin does not observe",
        ]
    )
    checks = {
        test["nodeid"].rsplit("::", 1)[1]: test["checks"][0]
        for test in json.loads((pytester.path / "run.json").read_text())["tests"]
    }
    # Passing for the right reason: the server did count these, and they were left out.
    assert "left out server-side: 2 PTTL call(s) of the plugin's own" in checks["test_stale_read_probe_pttl"]["message"]
    own = checks["test_plugin_helpers_pttl"]["message"]
    assert "3 PTTL call(s) of the plugin's own, 1 MULTI call(s) of the plugin's own" in own
    handshake = checks["test_fresh_client_handshake"]
    assert "call(s) from connection handshakes" in handshake["message"]
    assert "CLIENT SETNAME" in handshake["message"]  # client_name= makes redis-py send it on connecting
    assert "redis-py sends a handshake whenever a client connects" in handshake["message"]
    assert handshake["metrics"]["client_setname_calls"] == handshake["metrics"]["hello_calls"] == 0
    assert "KEYS" in checks["test_keys_in_lua_from_a_fresh_client"]["message"]
    assert "HELLO" not in checks["test_keys_in_lua_from_a_fresh_client"]["message"]


def test_difference_subtracts_the_plugins_own_commands() -> None:
    """Counted per name; a subcommand comes off its container on servers that count only that."""
    before = ServerCounters(
        10, 5, Counter({"GET": 1}), Counter({"GET": 10}), own_calls=Counter({"PTTL": 1}), own_keyspace_hits=1
    )
    after = ServerCounters(
        14,
        8,
        Counter({"GET": 5, "PTTL": 4, "CLIENT": 3, "SAVE": 1, "INFO": 2}),
        Counter({"GET": 50, "PTTL": 40, "CLIENT": 30, "SAVE": 1000, "INFO": 9}),
        own_calls=Counter({"PTTL": 4, "CLIENT SETNAME": 1, "SAVE": 1, "INFO": 2}),
        own_keyspace_hits=3,
        own_keyspace_misses=1,
    )
    delta = difference(before, after)
    assert delta.calls == Counter({"GET": 4, "PTTL": 1, "CLIENT": 2})
    assert delta.plugin_calls == Counter({"PTTL": 3, "CLIENT": 1, "SAVE": 1})
    assert delta.usec == Counter({"GET": 40, "PTTL": 10, "CLIENT": 20})  # in proportion to the calls left
    assert (delta.keyspace_hits, delta.keyspace_misses) == (2, 2)


def test_only_the_plugins_unobserved_commands_are_counted() -> None:
    """``unobserved()`` counts names (and keyspace effects); the cluster re-entry guard and observed calls do not."""
    from pytest_cachecheck.observe import instrument
    from pytest_cachecheck.observe.monitor import CacheMonitor

    replies = {"PTTL": -2, "EXISTS": 1, "GET": b"v"}

    class Client:
        def execute_command(self, *args: object, **options: object) -> object:
            return replies.get(str(args[0]))

    class Cluster:
        def execute_command(self, *args: object, **options: object) -> object:
            Client().execute_command("CLUSTER SLOTS")  # through a node client, as on a slot-map refresh
            return replies.get(str(args[0]))

    class Pipeline:
        transaction = True

        def __init__(self) -> None:
            self.command_stack: list[tuple[tuple[str, str], dict[str, object]]] = [
                (("PTTL", "a"), {}),
                (("GET", "b"), {}),
            ]

        def execute(self) -> list[object]:
            return [-1, None]

    Client.execute_command = instrument._wrap_command(Client.execute_command)  # type: ignore[method-assign]
    Cluster.execute_command = instrument._wrap_command(Cluster.execute_command, guard=True)  # type: ignore[method-assign]
    Pipeline.execute = instrument._wrap_pipeline(Pipeline.execute)  # type: ignore[method-assign]
    calls, hits, misses = instrument.own_commands()
    monitor = CacheMonitor()
    monitor.activate()
    try:
        Client().execute_command("GET", "x")
        Cluster().execute_command("GET", "y")
        with instrument.unobserved():
            Client().execute_command("PTTL", "a")
            Client().execute_command("EXISTS", "a", "b")
            Client().execute_command("client", "setname", "x")
            Cluster().execute_command("GET", "z")
            Pipeline().execute()
    finally:
        monitor.deactivate()
    assert [record[2][0] for record in monitor.records] == ["GET", "GET"]  # not the guarded node call
    now, now_hits, now_misses = instrument.own_commands()
    assert now - calls == Counter(
        {"PTTL": 2, "EXISTS": 1, "CLIENT SETNAME": 1, "GET": 2, "CLUSTER SLOTS": 1, "MULTI": 1, "EXEC": 1}
    )
    # hits: EXISTS' 1 of 2 keys, the cluster's GET, the pipeline's PTTL -1; misses: PTTL -2, EXISTS' other,
    # the pipeline's GET of nothing
    assert (now_hits - hits, now_misses - misses) == (3, 3)


def test_a_misspelt_command_is_one_line_with_a_suggestion(pytester: pytest.Pytester) -> None:
    """``cache_forbid("FLUSHAL")`` would forbid a command nobody runs and always pass: an error instead,
    for every marker argument that names a command (``cache_latency(command=...)`` too)."""
    pytester.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.cache_forbid("KEYS", "FLUSHAL")
        def test_forbid(cache_redis):
            pass

        @pytest.mark.cache_latency(max_ms=50, command="hgetal")
        def test_latency(cache_redis):
            cache_redis.get("a")

        @pytest.mark.cache_forbid("ft.search", "config set", "XGROUP CREATE")
        def test_module_and_subcommands(cache_redis):
            cache_redis.get("a")
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.cache_forbid: argument 'FLUSHAL' is not a Redis command; did you mean 'FLUSHALL'?",
            "*@pytest.mark.cache_latency: argument 'command': 'hgetal' is not a Redis command; did you mean 'HGETALL'?",
        ]
    )
    assert "Traceback" not in result.stdout.str()
