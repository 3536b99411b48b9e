"""End to end, on ``fake`` and ``server``: what runs inside scripts is seen, INFO answers, errors are replies."""

from __future__ import annotations

import pytest

BACKENDS = pytest.mark.parametrize("backend", ["fake", "server"])


def run(pytester: pytest.Pytester, backend: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--cache-backend", backend, *args)


@BACKENDS
def test_forbid_sees_keys_inside_eval(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_forbid="""
        import pytest

        CLEAR = "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1"

        @pytest.mark.cache_forbid("KEYS")
        def test_clear_with_keys(cache_redis):
            cache_redis.set("ns:1", 1)
            cache_redis.eval(CLEAR, 0, "ns:*")

        @pytest.mark.cache_forbid("KEYS")
        def test_script_without_keys(cache_redis):
            cache_redis.eval("return redis.call('DEL', KEYS[1])", 1, "ns:1")
        """
    )
    result = run(pytester, backend, "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*test_script_without_keys PASSED*",
            "*cache_forbid: KEYS ran 1 time(s) on the server but never from the client: inside Lua scripts*",
        ]
    )


@BACKENDS
def test_ttl_judges_keys_made_inside_scripts(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_lua_ttl="""
        import pytest

        @pytest.mark.cache_ttl()
        def test_sadd_in_lua_without_ttl(cache_redis):
            cache_redis.set("page:1", b"x", ex=60)
            cache_redis.eval("return redis.call('SADD', 'schemes:page', 'id')", 0)

        @pytest.mark.cache_ttl(max_s=120)
        def test_set_ex_in_lua(cache_redis):
            cache_redis.eval("return redis.call('SET', KEYS[1], ARGV[1], 'EX', 60)", 1, "report:1", "data")

        @pytest.mark.cache_ttl(max_s=30)
        def test_set_ex_in_lua_above_max(cache_redis):
            cache_redis.eval("return redis.call('SET', 'hidden', 'v', 'EX', 60)", 0)
        """
    )
    result = run(pytester, backend, "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*test_set_ex_in_lua PASSED*",
            "*cache_ttl: 1 of 2 keys written in this test have no TTL: schemes:page",
            "*cache_ttl: 1 key(s) have a TTL above max_s=30: hidden (*",
        ]
    )


@BACKENDS
@pytest.mark.parametrize("clear", ["loop", "unpack"])
def test_lua_keys_and_del_fails_o1_on_counts(pytester: pytest.Pytester, backend: str, clear: str) -> None:
    """Counted, so --cache-timing report (clock-measured misses only warn) must not let it pass."""
    if backend == "server" and clear == "unpack":
        pytest.skip("a real server counts EVAL, KEYS and one DEL at every size: only the fake server counts keys")
    script = {
        "loop": "for _, k in ipairs(redis.call('KEYS', 'item:*')) do redis.call('DEL', k) end return 1",
        "unpack": "local ks = redis.call('KEYS', 'item:*') if #ks > 0 then redis.call('DEL', unpack(ks)) end",
    }[clear]
    pytester.makepyfile(
        test_scaling=f"""
        import pytest

        @pytest.mark.cache_invalidation(o1=True)
        def test_clear(cache_redis, cache_invalidation):
            def populate(size):
                cache_redis.mset({{f"item:{{i}}": 1 for i in range(size)}})

            cache_invalidation.scaling(populate, lambda: cache_redis.eval({script!r}, 0), sizes=(10, 100, 400),
                                       repeats=1)
        """
    )
    result = run(pytester, backend, "--cache-timing", "report")
    result.assert_outcomes(failed=1)
    grows = "server-side calls grow with the cache" if clear == "loop" else "keys touched server-side grow"
    result.stdout.fnmatch_lines([f"*cache_invalidation: not O(1): *{grows}*"])


def test_info_on_fake_answers_a_version(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_info="""
        import redis

        def test_info(cache_redis, cache_url):
            assert cache_redis.info("server")["redis_version"].count(".") == 2
            over_tcp = redis.Redis.from_url(cache_url)
            info = over_tcp.info()
            assert info["redis_version"] and "keyspace_hits" in info and "used_memory" in info
            cache_redis.set("a", 1)
            cache_redis.get("a")
            cache_redis.get("missing")
            stats = over_tcp.info("stats")
            assert stats["keyspace_hits"] >= 1 and stats["keyspace_misses"] >= 1
            assert over_tcp.info("commandstats")["cmdstat_get"]["calls"] >= 2
            assert over_tcp.info("keyspace")["db0"]["keys"] == 1
        """
    )
    run(pytester, "fake").assert_outcomes(passed=1)


@BACKENDS
def test_script_error_over_cache_url_is_an_immediate_error_reply(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_errors="""
        import time
        import pytest
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        @pytest.mark.parametrize("call", [
            lambda client: client.eval("return no_such_function()", 0),
            lambda client: client.eval("return redis.call('NOSUCHCOMMAND')", 0),
            lambda client: client.fcall("no_such_function", 0),
        ])
        def test_error(cache_url, call):
            # one connection, never reconnected: the server must keep serving it after an error reply
            # (fakeredis before 2.41 closed it; the fake backend keeps it open on every fakeredis)
            client = redis.Redis.from_url(
                cache_url, socket_timeout=5, single_connection_client=True, retry=Retry(NoBackoff(), 0)
            )
            for _ in range(5):
                start = time.monotonic()
                with pytest.raises(redis.ResponseError) as error:
                    call(client)
                assert time.monotonic() - start < 1
                assert "\\n" not in str(error.value)
                assert client.ping()
            client.close()
        """
    )
    run(pytester, backend).assert_outcomes(passed=3)


def test_a_fakeredis_without_the_seam_degrades_to_no_server_side_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """Internals moved (another signature): a warning, no view, and the fake backend still works."""
    from fakeredis._socket._base import BaseFakeSocket

    from pytest_cachecheck.backends.fake import FakeBackend
    from pytest_cachecheck.observe import fake_server

    def moved(self: object, command: object) -> None:
        raise AssertionError("never called")

    monkeypatch.setattr(BaseFakeSocket, "_run_command", moved)
    with pytest.warns(fake_server.FakeViewWarning, match="no server-side view"):
        assert fake_server.install() is False
    backend = FakeBackend()
    try:
        with pytest.warns(fake_server.FakeViewWarning):
            backend.start()
        assert backend.server_view is None
    finally:
        backend.stop()


def test_conditional_writes_that_did_not_happen_are_not_writes() -> None:
    from pytest_cachecheck.observe.commands import OTHER, WRITE, classify

    assert classify(("SET", "k", "v", "NX"), None)[2] == (OTHER,)
    assert classify(("SET", "k", "v", "NX"), True)[2] == (WRITE,)
    assert classify(("SET", "k", "v", "GET"), None)[2] == (WRITE,)  # GET's nil: there was no old value
    assert classify(("SETNX", "k", "v"), False)[2] == (OTHER,)
    assert classify(("MSETNX", "a", "1", "b", "2"), 0)[2] == (OTHER, OTHER)


def test_the_empty_key_and_odd_values_print_on_one_visible_line() -> None:
    from pytest_cachecheck.observe.patterns import key_shape, shown_key, shown_value

    assert key_shape("") == shown_key("") == "''"
    assert shown_key("a\nb") == "a\\nb"
    assert "\n" not in shown_value(b"\x80\x04\x95\n\x00pickled") and "\x00" not in shown_value(b"a\x00b")


@BACKENDS
def test_a_test_that_only_wrote_is_told_so(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_writes="""
        import pytest

        @pytest.mark.cache_hit_rate(0.5)
        def test_only_writes(cache_redis):
            cache_redis.set("a", 1, ex=60)
            cache_redis.set("b", 1, ex=60)
            assert cache_redis.set("b", 2, nx=True) is None  # not a write: the key was there

        @pytest.mark.cache_ttl()
        def test_empty_key(cache_redis):
            cache_redis.set("", 1)
        """
    )
    result = run(pytester, backend)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*cache_hit_rate: 2 writes, no reads of all keys: the test filled the cache but never read from it*",
            "*cache_ttl: 1 of 1 keys written in this test have no TTL: ''",
        ]
    )


@BACKENDS
def test_keys_without_ttl_target_and_cache_ttl_marker_agree_on_keys_made_in_lua(
    pytester: pytest.Pytester, backend: str
) -> None:
    pytester.makefile(
        ".toml",
        pyproject="""
        [[tool.cachecheck.target]]
        name = "schemes"
        pattern = "schemes:*"
        keys_without_ttl = 0
        """,
    )
    pytester.makepyfile(
        test_app="""
        import pytest

        @pytest.mark.cache_ttl(pattern="schemes:*")
        def test_fill(cache_redis):
            cache_redis.eval("redis.call('SADD', 'schemes:user', 'id') return 1", 0)
        """
    )
    result = run(pytester, backend, "--cache-targets")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*cache_ttl: 1 of 1 keys matching 'schemes:[*]' written in this test have no TTL: schemes:user",
            "schemes: keys_without_ttl*1*<= 0*missed",
        ]
    )


def test_cache_ttl_on_url_with_scripts_warns_instead_of_passing(pytester: pytest.Pytester) -> None:
    """On ``url`` only declared and written keys are judged: a passing verdict after scripts is inconclusive."""
    import shutil

    from pytest_cachecheck.backends.server import ServerBackend

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH")
    backend = ServerBackend("redis-server")
    info = backend.start()
    try:
        pytester.makepyfile(
            test_url="""
            import pytest

            @pytest.mark.cache_ttl(max_s=120)
            def test_script(cache_redis):
                cache_redis.eval("redis.call('SET', KEYS[1], 'v', 'EX', 60) redis.call('SADD', 'hidden', 1)", 1, "k")
            """
        )
        result = run(pytester, "url", "--cache-url", info.url, "-W", "default")
        result.assert_outcomes(passed=1, warnings=2)
        result.stdout.fnmatch_lines(
            ["*InconclusiveCheckWarning: cache_ttl: 1 keys have TTLs within bounds, but 1 Lua*"]
        )
        # the script's undeclared key: the url backend cannot know it is the run's, so it stays, said
        result.stdout.fnmatch_lines(["*LeftoverKeysWarning: *1 keys in database 0 were not written*"])
    finally:
        backend.stop()


@BACKENDS
def test_reads_inside_scripts_are_reported_beside_client_side_ones(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(
        test_reads="""
        import pytest

        @pytest.mark.cache_hit_rate(0.9)
        def test_lua_reads(cache_redis):
            cache_redis.set("a", 1)
            cache_redis.eval("redis.call('GET', 'a') redis.call('GET', 'b') return 1", 0)
        """
    )
    result = run(pytester, backend)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 writes, no reads*; server-side: * keyspace 1 hit / 1 miss*"])
