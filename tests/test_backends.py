"""Backends end to end: isolation, one server per xdist worker, url safety rails, clear errors."""

from __future__ import annotations

import os
import re
import shutil
import uuid

import pytest
import redis

ISOLATION_TESTS = """
import os

def test_first_writes(cache_redis, cache_server):
    assert cache_redis.dbsize() == 0
    cache_redis.set("leak", "from-first")
    print("SERVER", cache_server.backend, cache_server.url, cache_server.version, os.getpid())

def test_second_sees_nothing(cache_redis):
    assert cache_redis.get("leak") is None
    assert cache_redis.dbsize() == 0
    cache_redis.set("leak", "from-second")

def test_url_database_is_empty_too(cache_url):
    import redis
    with redis.Redis.from_url(cache_url) as client:
        assert client.dbsize() == 0
        client.set("leak", "from-url")
"""


@pytest.mark.parametrize("backend", ["fake", "server"])
def test_each_test_starts_with_an_empty_database(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makepyfile(test_isolation=ISOLATION_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--cache-backend", backend)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*SERVER {backend} *"])


def test_server_backend_info_and_stop_at_session_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_info="""
        def test_info(cache_server):
            assert cache_server.backend == "server"
            assert cache_server.host == "127.0.0.1" and cache_server.port > 0
            assert cache_server.url == f"redis://127.0.0.1:{cache_server.port}/0"
            assert cache_server.version.count(".") == 2
            assert cache_server.client().ping()
            print("PORT", cache_server.port)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--cache-backend", "server")
    result.assert_outcomes(passed=1)
    port = int(re.search(r"PORT (\d+)", result.stdout.str()).group(1))
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=0.5).ping()


def test_fake_backend_info_is_a_usable_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_info="""
        import redis

        def test_info(cache_server, cache_redis):
            assert cache_server.backend == "fake" and cache_server.version.startswith("fakeredis ")
            assert cache_server.url == f"redis://127.0.0.1:{cache_server.port}/0" and cache_server.port > 0
            cache_redis.set("shared", b"1")
            assert redis.Redis.from_url(cache_server.url).get("shared") == b"1"  # the same in-process data
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_each_xdist_worker_gets_its_own_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_workers="""
        import os, pytest

        @pytest.mark.parametrize("n", range(8))
        def test_write_and_read(cache_redis, cache_server, n):
            assert cache_redis.dbsize() == 0
            cache_redis.set("k", n)
            assert cache_redis.get("k") == str(n).encode()
            print("WORKER", os.environ["PYTEST_XDIST_WORKER"], "PORT", cache_server.port)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-rA", "--cache-backend", "server")
    result.assert_outcomes(passed=8)
    pairs = set(re.findall(r"WORKER (gw\d) PORT (\d+)", result.stdout.str()))
    assert {worker for worker, _ in pairs} == {"gw0", "gw1"}
    assert len({port for _, port in pairs}) == 2, pairs


def test_missing_server_binary_is_a_one_line_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(cache_redis): pass")
    result = pytester.runpytest("--cache-backend", "server", "--cache-server-bin", "/nonexistent/redis-server")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --cache-server-bin: '/nonexistent/redis-server' is not an executable on PATH*"]
    )


def test_server_that_fails_to_start_shows_its_log(pytester: pytest.Pytester) -> None:
    fake_binary = pytester.path / "broken-redis-server"
    fake_binary.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: pretend failure' >&2\nexit 1\n")
    fake_binary.chmod(0o755)
    pytester.makepyfile(test_x="def test_x(cache_redis): pass\ndef test_y(cache_redis): pass")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--cache-backend", "server", "--cache-server-bin", str(fake_binary)
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*cache backend 'server': redis-server exited with code 1: *broken-redis-server --port * its log: FATAL CONFIG FILE ERROR: pretend failure"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_server_binary_that_cannot_run_is_one_line_and_leaves_no_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_program = pytester.path / "garbage-redis-server"
    not_a_program.write_bytes(b"\x00\x01 not an executable format")
    not_a_program.chmod(0o755)
    temp = pytester.mkdir("temp")
    monkeypatch.setenv("TMPDIR", str(temp))
    pytester.makepyfile(test_x="def test_x(cache_redis): pass")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--cache-backend", "server", "--cache-server-bin", str(not_a_program)
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--cache-server-bin: cannot run '*garbage-redis-server' (Exec format error)*"])
    assert "Traceback" not in result.stdout.str()
    assert [path.name for path in temp.iterdir() if path.name.startswith("cachecheck-redis-")] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cache-backend", "memcached"],
            "ERROR: --cache-backend: expected one of fake, server, docker, url, cluster, got 'memcached'",
        ),
        (
            ["--cache-backend", "url"],
            "ERROR: --cache-backend url needs --cache-url (e.g. --cache-url redis://127.0.0.1:6379/15)",
        ),
        (
            ["--cache-url", "127.0.0.1:6379"],
            "ERROR: --cache-url: expected a URL starting with redis://, rediss://, unix://, redis+cluster://, got '127.0.0.1:6379'",
        ),
        (
            ["--cache-report", "out.txt"],
            "ERROR: --cache-report: expected a file path ending in .json, .md or .html (e.g. cache.json), got 'out.txt'",
        ),
    ],
)
def test_bad_options_are_one_line_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ini_settings_apply_and_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncachecheck_backend = server\n")
    pytester.makepyfile(test_x="def test_x(cache_server):\n    print('BACKEND', cache_server.backend)")
    pytester.runpytest("-s", "-p", "no:cacheprovider").stdout.fnmatch_lines(["*BACKEND server"])
    pytester.runpytest("-s", "-p", "no:cacheprovider", "--cache-backend", "fake").stdout.fnmatch_lines(
        ["*BACKEND fake"]
    )


# ------------------------------------------------ url backend against somebody else's server (127.0.0.1:6379)

OTHERS_SERVER = "redis://127.0.0.1:6379"


@pytest.fixture
def others_db() -> tuple[redis.Redis, int]:
    """A database number on the machine's shared Redis; skipped when that server is not there."""
    db = 10 + (os.getpid() % 5)  # distinct per xdist worker of this suite
    client = redis.Redis.from_url(f"{OTHERS_SERVER}/{db}")
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis listens on 127.0.0.1:6379 (the url backend's safety tests need one)")
    if client.dbsize():
        pytest.skip(f"database {db} on 127.0.0.1:6379 is in use by somebody else; not touching it")
    return client, db


URL_WORKLOAD = """
def test_writes(cache_redis):
    cache_redis.set("run:key", "ours")
    cache_redis.hset("run:hash", "f", "v")
    cache_redis.get("{seed}")

def test_clean_between_tests(cache_redis):
    assert cache_redis.get("run:key") is None
    assert cache_redis.exists("run:hash") == 0
"""


def test_url_backend_refuses_a_nonempty_database(pytester: pytest.Pytester, others_db) -> None:
    client, db = others_db
    seed = f"someone-elses:{uuid.uuid4().hex}"
    client.set(seed, "precious")
    try:
        pytester.makepyfile(test_url=URL_WORKLOAD.format(seed=seed))
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", f"{OTHERS_SERVER}/{db}"
        )
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(
            [
                f"*--cache-url {OTHERS_SERVER}/{db}: database {db} holds 1 keys and the plugin never deletes data it did not create*--cache-allow-nonempty*"
            ]
        )
        assert client.get(seed) == b"precious" and client.dbsize() == 1
    finally:
        client.delete(seed)


def _run_allowing_nonempty(pytester: pytest.Pytester, db: int) -> pytest.RunResult:
    return pytester.runpytest(
        "-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", f"{OTHERS_SERVER}/{db}",
        "--cache-allow-nonempty",
    )  # fmt: skip


def test_url_backend_with_allow_nonempty_deletes_only_what_the_run_wrote(pytester: pytest.Pytester, others_db) -> None:
    client, db = others_db
    seed = f"someone-elses:{uuid.uuid4().hex}"
    client.set(seed, "precious")
    client.expire(seed, 3600)
    try:
        pytester.makepyfile(test_url=URL_WORKLOAD.format(seed=seed))
        result = _run_allowing_nonempty(pytester, db)
        result.assert_outcomes(passed=2)
        assert client.get(seed) == b"precious" and 0 < client.ttl(seed) <= 3600
        assert client.keys("*") == [seed.encode()]
    finally:
        client.delete(seed)


RESET_WORKLOAD = """
from pytest_cachecheck.observe.instrument import unobserved

def test_writes_then_resets(cache_redis, cache_monitor):
    cache_redis.set("run:before-reset", "ours")
    cache_redis.set(b"run:\\xff\\xfe", "not utf-8")
    cache_redis.sadd("run:members", "m")
    cache_monitor.reset()
    with unobserved():  # as if another client of that server wrote it meanwhile
        cache_redis.sadd("{foreign}", "theirs")
    cache_redis.sunionstore("run:union", "run:members", "{foreign}")
    cache_redis.get("{seed}")

def test_next_test_finds_none_of_it(cache_redis):
    assert not any(cache_redis.exists(key) for key in {run_keys!r})
"""
RESET_RUN_KEYS = (b"run:before-reset", b"run:\xff\xfe", b"run:members", b"run:union")


def test_url_backend_deletes_keys_written_before_a_monitor_reset(pytester: pytest.Pytester, others_db) -> None:
    """Clean-up deletes every key the test wrote, exactly as sent, and nothing else."""
    client, db = others_db
    seed, foreign = f"someone-elses:{uuid.uuid4().hex}", f"someone-elses:set:{uuid.uuid4().hex}"
    client.set(seed, "precious", ex=3600)
    try:
        pytester.makepyfile(test_url=RESET_WORKLOAD.format(seed=seed, foreign=foreign, run_keys=RESET_RUN_KEYS))
        result = _run_allowing_nonempty(pytester, db)
        result.assert_outcomes(passed=2)
        assert client.get(seed) == b"precious" and 0 < client.ttl(seed) <= 3600
        assert sorted(client.keys("*")) == sorted([seed.encode(), foreign.encode()])
        assert client.smembers(foreign) == {b"theirs"}
    finally:
        client.delete(seed, foreign, *RESET_RUN_KEYS)  # a failed run must not leave its keys either


def test_url_backend_on_an_empty_database_leaves_it_empty(pytester: pytest.Pytester, others_db) -> None:
    client, db = others_db
    pytester.makepyfile(test_url=URL_WORKLOAD.format(seed="absent"))
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", f"{OTHERS_SERVER}/{db}"
    )
    result.assert_outcomes(passed=2)
    assert client.dbsize() == 0


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
@pytest.mark.parametrize("backend", ["fake", "server"])
def test_async_client_takes_200_concurrent_tasks(pytester: pytest.Pytester, backend: str) -> None:
    """redis-py 8's asyncio pool stops at 100 connections by default (MaxConnectionsError); ours does not."""
    pytester.makepyfile(
        test_it="""
        import asyncio

        def test_many(cache_redis_async):
            async def main():
                await asyncio.gather(*(cache_redis_async.set(f"k:{n}", n) for n in range(200)))
                return await cache_redis_async.dbsize()
            assert asyncio.run(main()) == 200
        """
    )
    pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", backend).assert_outcomes(passed=1)
