"""The url backend on a shared server never deletes, moves or changes data the run did not create (SPEC 8).

Each test starts its own redis-server on a free port, seeds several databases with
"somebody else's" data (strings, hashes, sets, streams; with and without TTLs), runs pytest
against it as a user would, and compares a full dump (type, value, TTL) of every database
before and after: 0 foreign keys changed or lost, 0 test keys left.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from pytest_cachecheck.backends.base import free_port, ping

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

SEEDED = (0, 2, 5)  # databases holding somebody else's data
DATABASES = 8  # a small server: "more workers than databases" is cheap to reach


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """A real redis-server of our own (never the machine's shared one), seeded; its URL without a database."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--databases", str(DATABASES), "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not ping("127.0.0.1", port):
            assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
            time.sleep(0.02)
        url = f"redis://127.0.0.1:{port}"
        for db in SEEDED:
            seed(redis.Redis.from_url(f"{url}/{db}"), db)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def seed(client: redis.Redis, db: int) -> None:
    pipe = client.pipeline()
    for index in range(40):
        pipe.set(f"foreign:{db}:s{index}", f"value {index}")
        pipe.set(f"foreign:{db}:ttl{index}", "x", ex=3600)
    pipe.hset(f"foreign:{db}:hash", mapping={"a": "1", "b": "2"})
    pipe.sadd(f"foreign:{db}:set", "m1", "m2")
    pipe.xadd(f"foreign:{db}:stream", {"f": "v"})
    pipe.set(b"foreign:\xff\x00binary", b"\x00\x01")
    pipe.set("run:key", f"somebody's run:key in db {db}")  # the same name the tests write
    pipe.execute()


def dump(url: str) -> dict[int, dict[bytes, tuple[bytes, bytes | None, bool]]]:
    """Every key of every database: (type, DUMP payload, has a TTL)."""
    state = {}
    for db in range(DATABASES):
        client = redis.Redis.from_url(f"{url}/{db}")
        keys = sorted(client.scan_iter(count=1000))
        state[db] = {key: (client.type(key), client.dump(key), client.pttl(key) > 0) for key in keys}
        client.close()
    return state


def run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", url, *args, timeout=120
    )  # fmt: skip


WORKLOAD = """
import pytest

def test_writes(cache_redis):
    cache_redis.set("run:key", "ours")
    cache_redis.hset("run:hash", "f", "v")
    cache_redis.execute_command("XGROUP", "CREATE", "run:stream", "g", "$", "MKSTREAM")
    cache_redis.geoadd("run:geo", (13.36, 38.11, "palermo"))
    cache_redis.execute_command("GEORADIUS", "run:geo", 15, 37, 200, "km", "STORE", "run:geo:near")
    assert cache_redis.exists("run:stream", "run:geo:near") == 2

@pytest.mark.parametrize("n", range(4))
def test_clean_between_tests(cache_redis, n):
    assert cache_redis.exists("run:hash", "run:stream", "run:geo", "run:geo:near") == 0
    cache_redis.set(f"run:param:{n}", n)
"""


def test_concurrent_foreign_writer_keeps_its_keys_on_an_empty_database(pytester, server) -> None:
    """Another client writes into the run's (empty at start) database during the run: all of it survives."""
    started = pytester.path / "run-started"
    pytester.makepyfile(
        test_it="import pathlib\ndef test_aaa_started(cache_redis):\n    pathlib.Path('run-started').touch()\n"
        + WORKLOAD
        + "\nimport time\ndef test_slow():\n    time.sleep(0.5)\n"
    )
    foreign = redis.Redis.from_url(f"{server}/7")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        # from the moment the run holds the database (found empty) until it ends
        while not stop.is_set() and not started.exists():
            time.sleep(0.002)
        while not stop.is_set():
            foreign.set(f"foreign:late:{len(written)}", 1)
            written.append(1)
            time.sleep(0.002)

    before = dump(server)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = run(pytester, f"{server}/7")
    finally:
        stop.set()
        thread.join()
    result.assert_outcomes(passed=7)
    after = dump(server)
    late = {key for key in after[7] if key.startswith(b"foreign:late:")}
    assert len(late) == len(written) > 10, "every key the foreign writer wrote is still there"
    assert set(after[7]) == late, "only the foreign writer's keys are left in database 7"
    assert {db: keys for db, keys in after.items() if db != 7} == {db: keys for db, keys in before.items() if db != 7}
    result.stdout.fnmatch_lines(["*LeftoverKeysWarning*keys in database 7 were not written by an observed command*"])


def test_allow_nonempty_deletes_only_what_the_run_wrote(pytester, server) -> None:
    pytester.makepyfile(test_it=WORKLOAD)
    before = dump(server)
    result = run(pytester, f"{server}/5", "--cache-allow-nonempty")
    result.assert_outcomes(passed=5)
    after = dump(server)
    assert after[5].pop(b"run:key")[0] == b"string"  # there before the run: overwritten by the test, not deleted
    before[5].pop(b"run:key")
    assert after == before


def test_query_db_is_the_database_in_effect(pytester, server) -> None:
    """``/5?db=6``: redis-py uses database 6, and so does the plugin (database 5 is seeded: left alone)."""
    pytester.makepyfile(
        test_it="""
def test_db(cache_redis, cache_url):
    assert cache_redis.connection_pool.connection_kwargs["db"] == 6
    assert cache_url.endswith("/6")
    cache_redis.set("run:key", "ours")
"""
    )
    before = dump(server)
    run(pytester, f"{server}/5?db=6").assert_outcomes(passed=1)
    assert dump(server) == before


@pytest.mark.parametrize("path", ["/abc", "/-1", "/?db=x"])
def test_a_database_that_is_not_a_number_is_a_one_line_error(pytester, server, path) -> None:
    pytester.makepyfile(test_it="def test_it(cache_redis):\n    cache_redis.set('k', 1)\n")
    result = run(pytester, f"{server}{path}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--cache-url *: the database (* must be a number 0, 1, 2, ...*"])
    assert "Traceback" not in result.stdout.str()


def test_select_and_flushes_by_the_code_under_test_are_refused(pytester, server) -> None:
    """A SELECT carried over on the shared pool, then a clear(), must not reach database 2."""
    pytester.makepyfile(
        test_it="""
import pytest
from redis import ResponseError

def test_select(cache_redis):
    with pytest.raises(ResponseError, match="SELECT 2 refused: the run's database is 7"):
        cache_redis.execute_command("SELECT", 2)
    cache_redis.execute_command("SELECT", 7)  # its own database: fine

@pytest.mark.parametrize("command", [("FLUSHDB",), ("FLUSHALL",), ("SWAPDB", 2, 7), ("MOVE", "k", 2)])
def test_refused(cache_redis, command):
    cache_redis.set("k", 1)
    with pytest.raises(ResponseError, match="refused"):
        cache_redis.execute_command(*command)

def test_clear_like_django(cache_redis):
    with pytest.raises(ResponseError, match="FLUSHDB refused"):
        cache_redis.flushdb()
"""
    )
    before = dump(server)
    run(pytester, f"{server}/7").assert_outcomes(passed=6)
    assert dump(server) == before


def test_monitor_reset_racing_writer_threads_loses_no_written_key(pytester, server) -> None:
    pytester.makepyfile(
        test_it="""
import threading

def test_race(cache_redis, cache_monitor):
    stop = threading.Event()
    def writer(n):
        index = 0
        while not stop.is_set():
            cache_redis.set(f"run:{n}:{index}", index)
            index += 1
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(300):
        cache_monitor.reset()
    stop.set()
    for thread in threads:
        thread.join()
    assert cache_monitor.written_keys() >= {"run:0:0", "run:7:0"}
"""
    )
    before = dump(server)
    run(pytester, f"{server}/5", "--cache-allow-nonempty").assert_outcomes(passed=1)
    assert dump(server) == before


def test_more_workers_than_databases_is_a_one_line_refusal(pytester, server) -> None:
    pytester.makepyfile(test_it="def test_it(cache_redis):\n    cache_redis.set('run:key', 1)\n" * 1)
    before = dump(server)
    result = run(pytester, f"{server}/7", "-n", "2")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("errors", 0) == 1
    if outcomes.get("errors"):  # the test ran on gw1, which would need database 8 of 0-7
        result.stdout.fnmatch_lines(
            ["*the server has no database 8 (worker gw1: the URL's database + 1); run fewer xdist workers*"]
        )
    assert dump(server) == before


def test_two_runs_on_one_database_never_share_it(pytester, server) -> None:
    """Two CI jobs on one URL at once: the second is refused while the first holds the lease."""
    pytester.makepyfile(
        test_it="""
import os
import time
import pytest

@pytest.mark.parametrize("n", range(10))
def test_mine(cache_redis, n):
    cache_redis.set("run:key", n)
    deadline = time.monotonic() + 60
    while n == 0 and not os.path.exists("second-run-done") and time.monotonic() < deadline:
        time.sleep(0.01)  # hold the database while the second run tries to take it
    assert cache_redis.get("run:key") == str(n).encode(), "my key vanished mid-test"
"""
    )
    before = dump(server)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cache-backend", "url",
               "--cache-url", f"{server}/7"]  # fmt: skip
    first = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        watcher = redis.Redis.from_url(server)
        deadline = time.monotonic() + 60
        while not any(client["name"].startswith("cachecheck-") for client in watcher.client_list()):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lease"
            time.sleep(0.01)
        second = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=120)
        (pytester.path / "second-run-done").touch()
        first_output, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert "10 passed" in first_output, first_output
    assert "in use by another pytest-cachecheck run (cachecheck-" in second.stdout, second.stdout
    assert "vanished" not in first_output + second.stdout
    assert dump(server) == before


def test_a_killed_run_leaves_nothing_that_blocks_the_next(pytester, server) -> None:
    """``os._exit`` mid-run: the next run deletes the dead run's keys (its journal) and proceeds."""
    pytester.makepyfile(
        test_it="""
import os

def test_first(cache_redis):
    cache_redis.set("run:first", 1)

def test_dies(cache_redis):
    cache_redis.set("run:dies", 1)
    cache_redis.hset("run:dies:hash", "f", "v")
    os._exit(3)
"""
    )
    before = dump(server)
    result = run(pytester, f"{server}/7")
    assert result.ret == 3
    assert set(dump(server)[7]) == {b"run:dies", b"run:dies:hash"}
    pytester.makepyfile(test_it="def test_next(cache_redis):\n    assert cache_redis.dbsize() == 0\n")
    run(pytester, f"{server}/7").assert_outcomes(passed=1)
    assert dump(server) == before


def test_keyboard_interrupt_still_cleans_up(pytester, server) -> None:
    pytester.makepyfile(
        test_it="""
def test_interrupted(cache_redis):
    cache_redis.set("run:mine", "ours")
    cache_redis.set("run:other", "ours")
    raise KeyboardInterrupt
"""
    )
    before = dump(server)
    result = run(pytester, f"{server}/5", "--cache-allow-nonempty")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    after = dump(server)
    assert after == before


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "redis://127.0.0.1:{closed}/0",
            "*--cache-url redis://127.0.0.1:*/0: cannot use that server (ConnectionError: *",
        ),
        ("redis://127.0.0.1:{port}/99", "*the server has no database 99*"),
        (
            "redis://nobody:s3cret@127.0.0.1:{port}/0",
            "*--cache-url redis://nobody:***@127.0.0.1:*/0: cannot use that server (AuthenticationError*",
        ),
        ("rediss://127.0.0.1:{port}/0", "*cannot use that server (*"),
        ("unix:///nonexistent/redis.sock", "*cannot use that server (ConnectionError*"),
        ("redis://127.0.0.1:abc/0", "*cannot use that server (ValueError*"),
        ("redis://127.0.0.1:{port}/0?protocol=9", "*cannot use that server (*"),
        ("redis+cluster://127.0.0.1:{port}", "*cannot use that cluster (*"),
    ],
)
def test_a_server_that_cannot_be_used_is_one_line(pytester, server, url, expected) -> None:
    port = server.rsplit(":", 1)[1]
    url = url.format(port=port, closed=free_port())
    pytester.makepyfile(test_it="def test_it(cache_redis):\n    pass\n")
    result = run(pytester, url)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([expected])
    output = result.stdout.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output and "s3cret" not in output
    assert "During handling" not in output  # the error is printed once


def test_async_client_takes_200_concurrent_tasks(pytester, server) -> None:
    pytester.makepyfile(
        test_it="""
import asyncio

def test_many(cache_redis_async):
    async def main():
        await asyncio.gather(*(cache_redis_async.set(f"run:{n}", n) for n in range(200)))
        return await cache_redis_async.dbsize()
    assert asyncio.run(main()) == 200
"""
    )
    before = dump(server)
    run(pytester, f"{server}/7").assert_outcomes(passed=1)
    assert dump(server) == before


def test_no_monitor_is_refused_on_the_url_backend(pytester, server) -> None:
    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    result = run(pytester, f"{server}/7", "--cache-no-monitor")
    result.stderr.fnmatch_lines(["ERROR: --cache-no-monitor cannot be used with --cache-backend url: *"])
