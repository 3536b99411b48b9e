"""``cluster`` backend: a local Redis Cluster of three masters; and the ``url`` backend on a cluster.

Users outgrow one Redis; their cache code then talks to ``redis.cluster.RedisCluster``,
which routes keys by hash slot and pipelines per node. Testing it against a single
server hides slot errors (CROSSSLOT) and per-node behaviour, so this backend starts
a real cluster: three ``redis-server`` children in cluster mode, slots split evenly,
ready when every node reports ``cluster_state:ok``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio.cluster
import redis.cluster

from ..interception import intercepting
from ..own_commands import unobserved
from .base import BackendError, ServerInfo, free_port
from .journal import WriteJournal, dead_journals, journaled_keys
from .process import RedisProcess
from .url import CONNECT_ERRORS, delete_keys, refusal, shown, unusable

CLUSTER_SCHEME = "redis+cluster"
SLOTS = 16384
MASTERS = 3
_READY_TIMEOUT_S = 15.0
# Redis keeps a fresh master in cluster_state:fail for CLUSTER_WRITABLE_DELAY = 2000 ms after
# its first cluster cron (clusterUpdateState, src/cluster.c; src/cluster_legacy.c since 7.2).
_WRITABLE_DELAY_S = 2.0
_STARTED_BEFORE_READY_S = 0.1  # each node's delay began when it started, a little before it answered PING
_POLL_S = 0.005
_BATCH = 500
# Both ports of a node are probed free, then bound by redis-server: another process (an xdist
# worker starting its own nodes) can take either in between. A node that lost the race is
# started again on two new ports, this many times in all.
_PORT_ATTEMPTS = 3


def plain_url(url: str) -> str:
    """``redis+cluster://host:port`` -> ``redis://host:port`` (what redis-py's ``from_url`` reads)."""
    parts = urlsplit(url)
    scheme = "rediss" if parts.scheme.endswith("rediss") else "redis"
    return urlunsplit(parts._replace(scheme=scheme, path=""))


def cluster_client(url: str, *, asyncio: bool = False) -> Any:
    """A cluster client for a ``redis+cluster://`` URL (the slot map is read without being observed)."""
    with unobserved():
        if asyncio:
            return redis.asyncio.cluster.RedisCluster.from_url(plain_url(url))
        return redis.cluster.RedisCluster.from_url(plain_url(url))


def slot_ranges(masters: int = MASTERS) -> list[tuple[int, int]]:
    """Contiguous, inclusive slot ranges covering all 16384 slots, one per master."""
    bounds = [index * SLOTS // masters for index in range(masters + 1)]
    return [(bounds[index], bounds[index + 1] - 1) for index in range(masters)]


def _node_args(bus_port: int) -> list[str]:
    return [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
        # The default bus port (port + 10000) may be taken or above 65535.
        "--cluster-port",
        str(bus_port),
    ]


def _assign(admin: redis.Redis, epoch: int, slots: tuple[int, int]) -> None:
    """A distinct config epoch per master, then its contiguous slot range."""
    first, last = slots
    admin.execute_command("CLUSTER SET-CONFIG-EPOCH", epoch)
    try:
        admin.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
    except redis.ResponseError:  # servers before 7.0
        admin.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))


def _cluster_info(node: redis.Redis) -> dict[str, str]:
    info = node.execute_command("CLUSTER INFO")
    if isinstance(info, dict):  # redis-py parses it already
        return {str(key): str(value) for key, value in info.items()}
    text = info.decode() if isinstance(info, bytes) else str(info)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


class ClusterBackend:
    """One three-master cluster per pytest (xdist worker) process, no persistence, no replicas."""

    name = "cluster"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.processes: list[RedisProcess] = []
        self.bus_ports: list[int] = []
        self._admins: list[redis.Redis] = []
        self._info: ServerInfo | None = None

    def start(self) -> ServerInfo:
        if self._info is not None:
            return self._info
        try:
            with unobserved():
                self._launch()
                not_before = time.monotonic() + _WRITABLE_DELAY_S - _STARTED_BEFORE_READY_S
                self._introduce()
                self._await_ok(not_before)
                host, port = self.processes[0].host, self.processes[0].port
                version = str(self._admins[0].info("server").get("redis_version", "unknown"))
        except (BackendError, redis.RedisError) as exc:
            self.stop()
            raise BackendError(f"cannot start a local Redis Cluster: {exc}") from None
        self._info = ServerInfo(self.name, f"{CLUSTER_SCHEME}://{host}:{port}", host, port, version)
        return self._info

    def _launch(self) -> None:
        """Spawn every node before waiting for any, and give each its slots as soon as it answers.

        A fresh master stays in ``cluster_state:fail`` for Redis's own 2 s writable delay,
        counted from its start; started in parallel, the three delays run at the same time.
        """
        for _ in range(MASTERS):
            process, bus_port = self._spawn_node()
            self.processes.append(process)
            self.bus_ports.append(bus_port)
        for index, slots in enumerate(slot_ranges()):
            process = self._await_node(index)
            admin = redis.Redis(host=process.host, port=process.port, single_connection_client=True)
            self._admins.append(admin)
            _assign(admin, index + 1, slots)  # epochs 1, 2, 3

    def _spawn_node(self) -> tuple[RedisProcess, int]:
        """A node on two ports probed free just now, its client port and its cluster bus port.

        Both are chosen here, not the client port by ``RedisProcess``: its own retry would move
        only the client port and start the node again on a bus port that is still taken.
        """
        port, bus_port = free_port(), free_port()
        while bus_port == port:  # two probes may be handed the same ephemeral port
            bus_port = free_port()
        return RedisProcess(self.binary, _node_args(bus_port), port=port, wait=False), bus_port

    def _await_node(self, index: int) -> RedisProcess:
        """Wait for node ``index``; one that found a port taken ("Address already in use") is
        started again on new ports, up to ``_PORT_ATTEMPTS`` starts in all. Costs nothing when
        no port was taken; each retry costs one more server start (milliseconds)."""
        for _ in range(_PORT_ATTEMPTS - 1):
            try:
                self.processes[index].await_ready()
                return self.processes[index]
            except BackendError as exc:
                if "Address already in use" not in str(exc):
                    raise
            self.processes[index], self.bus_ports[index] = self._spawn_node()
        self.processes[index].await_ready()
        return self.processes[index]

    def _introduce(self) -> None:
        """Every pair meets directly: no waiting for gossip to spread the introductions."""
        for index, admin in enumerate(self._admins):
            for process, bus_port in zip(self.processes[index + 1 :], self.bus_ports[index + 1 :]):
                admin.execute_command("CLUSTER MEET", process.host, process.port, bus_port)

    def _await_ok(self, not_before: float) -> None:
        """Sleep through the writable delay (no node can be ok earlier), then poll closely."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        time.sleep(max(not_before - time.monotonic(), 0))
        infos: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            infos = [_cluster_info(admin) for admin in self._admins]
            if all(
                info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(MASTERS) for info in infos
            ):
                return
            time.sleep(_POLL_S)
        states = ", ".join(
            f"{process.port}: state {info.get('cluster_state')}, knows {info.get('cluster_known_nodes')} nodes"
            for process, info in zip(self.processes, infos)
        )
        raise BackendError(f"cluster did not reach cluster_state:ok within {_READY_TIMEOUT_S:g} s ({states})")

    def url_for_test(self) -> str:
        return self.start().url

    def client(self, *, asyncio: bool = False) -> Any:
        return cluster_client(self.start().url, asyncio=asyncio)

    def reset(self) -> None:
        """Every master is ours: FLUSHALL on each, one round trip per node."""
        with unobserved():
            for admin in self._admins:
                admin.flushall()

    def stop(self) -> None:
        for admin in self._admins:
            admin.close()
        for process in self.processes:
            process.stop()
        self._admins, self.processes, self.bus_ports, self._info = [], [], [], None


class ClusterUrlBackend:
    """``url`` backend on an existing cluster (``redis+cluster://``): never flushes, deletes only its keys.

    A cluster has only database 0: xdist workers would share its keyspace, so a run with more
    than one worker is refused. Clean-up deletes exactly the keys the run wrote (its
    ``WriteJournal``, as on a single server). A cluster holding keys at start is refused unless
    ``--cache-allow-nonempty``; those keys are never deleted.
    """

    name = "url"

    def __init__(self, url: str, allow_nonempty: bool, workers: int = 1) -> None:
        self.url = url
        self.allow_nonempty = allow_nonempty
        self.workers = workers
        self._admin: redis.cluster.RedisCluster | None = None
        self._journal: WriteJournal | None = None
        self._intercepting = contextlib.ExitStack()
        self._info: ServerInfo | None = None

    def start(self) -> ServerInfo:
        if self._info is not None:
            return self._info
        if self.workers > 1:
            raise BackendError(
                f"--cache-url {shown(self.url)}: a cluster has one keyspace, so the {self.workers} xdist workers "
                "would share it; run without -n, or use --cache-backend cluster (a cluster per worker)"
            )
        admin: redis.cluster.RedisCluster | None = None
        try:
            with unobserved():
                admin = cluster_client(self.url)
                version = str(admin.info("server", target_nodes=admin.get_default_node()).get("redis_version", "?"))
                journal = WriteJournal(self.url, 0)
                for path in dead_journals(journal, None):  # a killed run's keys: it cannot come back for them
                    delete_keys(admin, journaled_keys(path))
                    path.unlink(missing_ok=True)
                size = int(admin.dbsize(target_nodes=redis.cluster.RedisCluster.PRIMARIES))
                existing = frozenset(admin.scan_iter(count=1000)) if size and self.allow_nonempty else frozenset()
        except CONNECT_ERRORS as exc:
            if admin is not None:
                admin.close()
            raise unusable(self.url, exc, "cluster") from None
        if size and not self.allow_nonempty:
            admin.close()
            journal.close()
            raise refusal(self.url, "the cluster", size, "an empty cluster")
        self._admin = admin
        journal.preexisting = existing
        self._journal = journal
        self._intercepting.enter_context(intercepting(self._journal))
        parts = urlsplit(self.url)
        self._info = ServerInfo(self.name, self.url, parts.hostname or "", parts.port or 6379, version)
        return self._info

    def url_for_test(self) -> str:
        return self.start().url

    def client(self, *, asyncio: bool = False) -> Any:
        self.start()
        return cluster_client(self.url, asyncio=asyncio)

    def reset(self) -> None:
        """Delete the keys the run wrote since the last clean-up (the journal's; see ``UrlBackend.reset``)."""
        if self._admin is not None and self._journal is not None:
            delete_keys(self._admin, self._journal.take())
            self._journal.cleaned()

    def stop(self) -> None:
        self._intercepting.close()
        if self._admin is not None:
            if self._journal is not None:
                with contextlib.suppress(*CONNECT_ERRORS):
                    self.reset()
                    self._journal.close()
            self._admin.close()
            self._admin = None
        self._journal = None
        self._info = None
