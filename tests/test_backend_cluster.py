"""``cluster`` backend on a real local Redis Cluster, and the ``url`` backend on an existing cluster."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable

import pytest
import redis.cluster

from pytest_cachecheck.backends import cluster as cluster_module
from pytest_cachecheck.backends.base import BackendError, ServerInfo, free_port, ping
from pytest_cachecheck.backends.cluster import MASTERS, ClusterBackend

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

WORKLOAD = """
import json
import random

import pytest

PATTERNS = ("user:*", "product:*", "session:*", "*")


def workload(client):
    '''Reads, writes, hashes and pipelines over many slots; the same for any client.'''
    rng = random.Random(42)
    for i in range(60):
        client.set(f"user:{i}", i)
        client.hset(f"product:{i}", mapping={"name": f"p{i}", "price": i})
    for _ in range(300):
        i = rng.randrange(100)
        client.get(f"user:{i}")
        client.hget(f"product:{i}", "name")
        client.exists(f"session:{i}")
    pipe = client.pipeline(transaction=False)
    for i in range(0, 100, 3):
        pipe.get(f"user:{i}").hgetall(f"product:{i}").set(f"session:{i}", "s", ex=30)
    pipe.execute()


def test_workload(cache_redis, cache_monitor, cache_server):
    workload(cache_redis)
    result = {}
    for pattern in PATTERNS:
        stats = cache_monitor.stats(pattern)
        result[pattern] = [stats.hits, stats.misses, stats.writes, stats.hit_rate, dict(stats.commands)]
    with open(f"stats-{cache_server.backend}.json", "w") as out:
        json.dump(result, out)
"""


def test_cluster_hit_rates_equal_single_server_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_workload=WORKLOAD)
    for backend in ("cluster", "server"):
        pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", backend).assert_outcomes(passed=1)
    cluster = json.loads((pytester.path / "stats-cluster.json").read_text())
    server = json.loads((pytester.path / "stats-server.json").read_text())
    assert cluster == server
    hits, misses, writes, hit_rate, commands = cluster["*"]
    assert hits > 0 and misses > 0 and 0 < hit_rate < 1
    assert commands["GET"] == 300 + 34 and commands["SET"] == 60 + 34


def test_cluster_fixtures_pipelines_and_isolation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cluster="""
        import asyncio
        import redis
        import redis.cluster

        def test_fixtures_give_a_cluster(cache_server, cache_redis, cache_url):
            assert cache_server.backend == "cluster"
            assert isinstance(cache_redis, redis.cluster.RedisCluster)
            assert cache_url == f"redis+cluster://127.0.0.1:{cache_server.port}"
            assert len(cache_redis.get_primaries()) == 3
            info = cache_redis.cluster_info()
            assert info["cluster_state"] == "ok" and int(info["cluster_slots_assigned"]) == 16384
            app_client = redis.cluster.RedisCluster.from_url(cache_url.replace("redis+cluster", "redis"))
            app_client.set("from-app", 1)
            assert cache_redis.get("from-app") == b"1"
            for i in range(50):
                cache_redis.set(f"spread:{i}", i)

        def test_every_master_was_flushed(cache_redis):
            assert cache_redis.dbsize(target_nodes=redis.cluster.RedisCluster.PRIMARIES) == 0

        def test_pipeline_counted_once_per_command(cache_redis, cache_monitor):
            keys = [f"k:{i}" for i in range(40)]
            assert len({cache_redis.keyslot(key) for key in keys}) > 30
            pipe = cache_redis.pipeline()
            for key in keys:
                pipe.set(key, key)
            for key in keys:
                pipe.get(key)
            pipe.get("missing")
            pipe.execute()
            events = cache_monitor.events
            assert len(events) == 81
            assert len({event.pipeline_id for event in events}) == 1 and events[0].pipeline_id != 0
            stats = cache_monitor.stats()
            assert (stats.writes, stats.hits, stats.misses) == (40, 40, 1)
            cache_monitor.reset()
            cache_redis.get("k:1")
            assert [event.command for event in cache_monitor.events] == ["GET"]
            assert cache_monitor.events[0].pipeline_id == 0

        def test_async_cluster_client_and_pipeline(cache_redis_async, cache_monitor):
            async def main():
                await cache_redis_async.set("a", 1)
                pipe = cache_redis_async.pipeline()
                for i in range(10):
                    pipe.get(f"x{i}")
                pipe.get("a")
                await pipe.execute()
                return await cache_redis_async.get("a")
            assert asyncio.run(main()) == b"1"
            stats = cache_monitor.stats()
            assert stats.commands == {"SET": 1, "GET": 12}
            assert (stats.hits, stats.misses) == (2, 10)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "cluster")
    result.assert_outcomes(passed=4)


def test_url_backend_on_an_existing_cluster(pytester: pytest.Pytester) -> None:
    cluster = ClusterBackend("redis-server")
    info = cluster.start()
    try:
        pytester.makepyfile(
            test_url="""
            import redis.cluster

            def test_writes(cache_redis, cache_url, cache_server):
                assert isinstance(cache_redis, redis.cluster.RedisCluster)
                assert cache_server.backend == "url" and cache_url.startswith("redis+cluster://")
                assert cache_redis.get("theirs") == b"keep me"
                for i in range(20):
                    cache_redis.set(f"mine:{i}", i)

            def test_own_keys_gone_theirs_kept(cache_redis):
                assert cache_redis.get("mine:3") is None
                assert cache_redis.get("theirs") == b"keep me"
            """
        )
        client = redis.cluster.RedisCluster(host=info.host, port=info.port)
        client.set("theirs", "keep me")
        refused = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", info.url)
        refused.assert_outcomes(errors=2)
        refused.stdout.fnmatch_lines(["*the cluster holds 1 keys and the plugin never deletes data it did not create*"])
        allowed = pytester.runpytest(
            "-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", info.url, "--cache-allow-nonempty"
        )
        allowed.assert_outcomes(passed=2)
        assert list(client.scan_iter()) == [b"theirs"]
        shared = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--cache-backend", "url", "--cache-url", info.url, "--cache-allow-nonempty",
            "-n", "2",
        )  # fmt: skip
        shared.assert_outcomes(errors=2)
        shared.stdout.fnmatch_lines(
            ["*a cluster has one keyspace, so the 2 xdist workers would share it; run without -n*"]
        )
        assert list(client.scan_iter()) == [b"theirs"]
        client.close()
    finally:
        cluster.stop()


def test_cluster_start_failure_is_one_line(pytester: pytest.Pytester) -> None:
    fake_server = pytester.path / "not-redis"
    fake_server.write_text("#!/bin/sh\necho 'unknown option --cluster-enabled' >&2\nexit 3\n")
    fake_server.chmod(0o755)
    pytester.makepyfile(test_one="def test_one(cache_redis):\n    pass\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--cache-backend", "cluster", "--cache-server-bin", str(fake_server)
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*cache backend 'cluster': cannot start a local Redis Cluster: redis-server exited with code 3*"]
    )


def test_servers_forked_or_restarted_from_a_short_lived_thread_outlive_it() -> None:
    """Linux sends the parent-death signal when the forking *thread* ends: a cluster started
    lazily in a worker thread, or a node restarted by a real outage ended in one, must survive it."""
    cluster = ClusterBackend("redis-server")
    try:
        started: list[ServerInfo] = []
        in_a_thread(lambda: started.append(cluster.start()))
        assert started, "the cluster did not start in the thread (its error is in the thread's output)"
        restarted = cluster.processes[0]
        restarted.stop(keep_files=True)
        in_a_thread(restarted.restart)
        time.sleep(0.3)  # the kernel's SIGKILL would land as soon as the thread is gone
        for node in cluster.processes:
            assert node.process is not None and node.process.poll() is None, f"port {node.port}: killed"
            assert ping(node.host, node.port)
    finally:
        cluster.stop()


def in_a_thread(work: Callable[[], object]) -> None:
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()


class _TakenBusPorts:
    """``free_port`` for the cluster backend that hands out a port another process listens on
    (a real bound socket) as the bus port of the node starts numbered in ``starts`` (1, 2, 3: the
    three nodes; 4, 5: the first node's retries): the race with another xdist worker, made
    certain. Client ports stay really free."""

    def __init__(self, starts: set[int]) -> None:
        self.holder = socket.socket()
        self.holder.bind(("127.0.0.1", 0))
        self.holder.listen()
        self.port = int(self.holder.getsockname()[1])
        self.starts = starts
        self.calls = 0

    def __call__(self, host: str = "127.0.0.1") -> int:
        self.calls += 1
        if self.calls % 2 == 0 and self.calls // 2 in self.starts:  # _spawn_node asks client port, then bus port
            return self.port
        return free_port(host)


def test_a_node_whose_bus_port_was_taken_starts_again_on_new_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """The taken bus port is the node's (redis-server: "Failed listening on port N (cluster)"):
    moving only the client port would fail the same way each time."""
    taken = _TakenBusPorts(starts={1, 4})
    monkeypatch.setattr(cluster_module, "free_port", taken)
    cluster = ClusterBackend("redis-server")
    try:
        info = cluster.start()
        assert taken.calls == 2 * (MASTERS + 2), "the first node was started three times, the others once"
        assert taken.port not in cluster.bus_ports
        for node, bus_port in zip(cluster.processes, cluster.bus_ports):
            admin = redis.Redis(host=node.host, port=node.port)
            assert admin.config_get("cluster-port") == {"cluster-port": str(bus_port)}
            admin.close()
        client = redis.cluster.RedisCluster(host=info.host, port=info.port)
        client.set("user:1", "x")
        assert client.get("user:1") == b"x"
        client.close()
    finally:
        cluster.stop()
        taken.holder.close()


def test_a_bus_port_taken_on_every_attempt_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = _TakenBusPorts(starts={1, 4, 5})
    monkeypatch.setattr(cluster_module, "free_port", taken)
    cluster = ClusterBackend("redis-server")
    try:
        with pytest.raises(BackendError) as raised:
            cluster.start()
        message = str(raised.value)
        assert message.startswith("cannot start a local Redis Cluster: redis-server exited with code 1")
        assert f"--cluster-port {taken.port}" in message and "Address already in use" in message
        assert "\n" not in message
        assert cluster_module._PORT_ATTEMPTS == 3
        assert taken.calls == 2 * (MASTERS + 2), "bounded: the first node was started three times, then given up"
        assert cluster.processes == [] and cluster.bus_ports == []
    finally:
        cluster.stop()
        taken.holder.close()
