"""Server-side counters (``INFO stats`` / ``INFO commandstats``) and their per-test deltas.

Client-side observation cannot see commands that run inside Lua scripts or functions
(``EVAL "return redis.call('KEYS', ...)"``) nor the reads they make. A real server
counts them all, so on real-server backends the plugin reads the server's counters
before and after a span of interest and reports the difference beside the client-side
counts. The counters are server-wide: on a shared ``url`` server, other clients'
traffic is included; on a cluster they are summed over its primaries.

The plugin's own commands are left out of every difference: ``INFO`` (its snapshots)
always, and whatever it issued inside ``instrument.unobserved()`` between the two
snapshots (the stale-read check's ``PTTL``, fault-injection probes...), which the
instrumentation counts per name (``instrument.own_commands()``), together with the
keyspace hits and misses of those whose reply tells which. Connection handshakes
(``HELLO``, ``CLIENT SETINFO``...) are sent by redis-py below ``execute_command`` and
are not among them: ``cache_forbid`` accounts for those itself.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..own_commands import own_commands, unobserved
from ..text import plural

REAL_SERVER_BACKENDS = frozenset({"server", "url", "docker", "cluster"})
_OWN_COMMANDS = frozenset({"INFO"})
_PREFIX = "cmdstat_"


@dataclass(frozen=True)
class ServerCounters:
    """A snapshot of the server's cumulative counters, and of the plugin's own commands
    (``instrument.own_commands()``) taken just after it, for ``difference`` to subtract."""

    keyspace_hits: int
    keyspace_misses: int
    calls: Counter[str]
    usec: Counter[str]
    own_calls: Counter[str] = field(default_factory=Counter)
    own_keyspace_hits: int = 0
    own_keyspace_misses: int = 0
    keys_touched: int | None = None  # keys the server's commands named or listed (the fake server's view only)


@dataclass(frozen=True)
class ServerStats:
    """What the server did between two snapshots: keyspace hits/misses and calls per command."""

    keyspace_hits: int = 0
    keyspace_misses: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    usec: Counter[str] = field(default_factory=Counter)
    plugin_calls: Counter[str] = field(default_factory=Counter)  # the plugin's own, left out of ``calls``
    keys_touched: int | None = None  # keys named or listed by the commands the server ran (fake server only)

    @property
    def hit_rate(self) -> float | None:
        reads = self.keyspace_hits + self.keyspace_misses
        return self.keyspace_hits / reads if reads else None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_ms(self) -> float:
        """Time the server spent executing the commands (excludes network and queueing)."""
        return sum(self.usec.values()) / 1000

    def count(self, command: str) -> int:
        """Calls of ``command``; ``"CONFIG"`` also counts its subcommands (``CONFIG SET``...)."""
        name = command.upper()
        return sum(calls for key, calls in self.calls.items() if key == name or key.startswith(name + " "))

    def describe(self, top: int = 5) -> str:
        """One line: ``server-side: 12 commands (GET 10, KEYS 2) in 0.05 ms, keyspace 8 hits / 2 misses``."""
        commands = ", ".join(f"{name} {calls}" for name, calls in self.calls.most_common(top))
        more = " ..." if len(self.calls) > top else ""
        touched = f", {self.keys_touched} keys touched" if self.keys_touched is not None else ""
        return (
            f"server-side: {self.total_calls} commands ({commands or 'none'}{more}) in {self.total_ms:.3f} ms, "
            f"keyspace {plural(self.keyspace_hits, 'hit')} / {plural(self.keyspace_misses, 'miss', 'misses')}{touched}"
        )


def command_name(stat_key: str) -> str:
    """``cmdstat_config|set`` -> ``CONFIG SET`` (Redis 7 names subcommands with ``|``)."""
    return stat_key[len(_PREFIX) :].replace("|", " ").upper()


def _per_node(reply: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A cluster client answers ``{node: info}``; a single server answers ``info``."""
    if reply and all(isinstance(value, Mapping) for value in reply.values()):
        if not any(str(key).startswith(_PREFIX) for key in reply):
            return list(reply.values())
    return [reply]


def parse_counters(stats: Mapping[str, Any], commandstats: Mapping[str, Any]) -> ServerCounters:
    """Counters from redis-py's parsed ``INFO stats`` and ``INFO commandstats`` replies (summed over nodes)."""
    hits = misses = 0
    for node in _per_node(stats):
        hits += int(node.get("keyspace_hits", 0))
        misses += int(node.get("keyspace_misses", 0))
    calls: Counter[str] = Counter()
    usec: Counter[str] = Counter()
    for node in _per_node(commandstats):
        for key, value in node.items():
            if str(key).startswith(_PREFIX) and isinstance(value, Mapping):
                name = command_name(str(key))
                calls[name] += int(value.get("calls", 0))
                usec[name] += int(value.get("usec", 0))
    return ServerCounters(hits, misses, calls, usec)


def difference(before: ServerCounters, after: ServerCounters) -> ServerStats:
    """What happened between two snapshots, without the plugin's own commands.

    ``INFO`` is dropped; each other command the plugin issued in between is taken off the
    server's count of the same name (or of its container, ``CLIENT`` for ``CLIENT SETINFO``,
    on servers older than Redis 7 that do not count subcommands apart). Its execution time
    cannot be told apart: a command's ``usec`` shrinks in proportion to the calls left.
    """
    server_calls = Counter(
        {name: count for name, count in (after.calls - before.calls).items() if name not in _OWN_COMMANDS}
    )
    calls = Counter(server_calls)
    plugin: Counter[str] = Counter()
    for name, count in (after.own_calls - before.own_calls).items():
        target = name if name in calls else name.split(" ", 1)[0]
        taken = min(count, calls.get(target, 0))
        if taken:
            calls[target] -= taken
            plugin[target] += taken
    calls = +calls  # drops the commands only the plugin ran
    usec = Counter(
        {
            name: spent * calls[name] // server_calls[name]
            for name, spent in (after.usec - before.usec).items()
            if name in calls
        }
    )
    own_hits = after.own_keyspace_hits - before.own_keyspace_hits
    own_misses = after.own_keyspace_misses - before.own_keyspace_misses
    return ServerStats(
        keyspace_hits=max(after.keyspace_hits - before.keyspace_hits - own_hits, 0),
        keyspace_misses=max(after.keyspace_misses - before.keyspace_misses - own_misses, 0),
        calls=calls,
        usec=usec,
        plugin_calls=plugin,
        keys_touched=(
            after.keys_touched - before.keys_touched
            if after.keys_touched is not None and before.keys_touched is not None
            else None
        ),
    )


class ServerStatsProbe:
    """Reads the counters of the backend's server: on a connection of its own, or on the
    ``fake`` backend straight from the fake server's view (``fake_server.ServerView``).

    Unavailable (every read returns None) on a ``fake`` backend whose fakeredis offers no
    view and, after the first refusal, on a server that does not allow ``INFO`` (ACLs on a
    shared server).
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._client: Any = None
        self.available = getattr(backend, "name", "") in REAL_SERVER_BACKENDS or _view(backend) is not None

    def counters(self) -> ServerCounters | None:
        if not self.available:
            return None
        try:
            view = _view(self._backend)
            if view is not None:
                counters = view.counters()
            else:
                with unobserved():
                    if self._client is None:
                        self._client = self._backend.client()
                    counters = self._read(self._client)
        except Exception:  # any refusal means: no server-side view, not a broken test
            self.available = False
            return None
        # After the read: the plugin's commands between two snapshots are exactly the ones
        # the server ran between their two INFO replies (the second snapshot's INFO aside).
        own, hits, misses = own_commands()
        return replace(counters, own_calls=own, own_keyspace_hits=hits, own_keyspace_misses=misses)

    @staticmethod
    def _read(client: Any) -> ServerCounters:
        if hasattr(client, "get_nodes"):
            return _read_cluster(client)
        pipe = client.pipeline(transaction=False)
        pipe.info("stats")
        pipe.info("commandstats")
        stats, commandstats = pipe.execute()
        return parse_counters(stats, commandstats)

    @contextlib.contextmanager
    def span(self) -> Iterator[ServerSpan]:
        """``with probe.span() as span: ...`` then ``span.stats`` (None without a real server)."""
        span = ServerSpan(self.counters())
        try:
            yield span
        finally:
            if span.before is not None:
                after = self.counters()
                span.stats = difference(span.before, after) if after is not None else None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def _view(backend: Any) -> Any:
    """The fake server's own view of what it executed, when the backend has one."""
    return getattr(backend, "server_view", None)


def _read_cluster(client: Any) -> ServerCounters:
    """Counters summed over every primary, replies keyed by node.

    redis-py's ``RedisCluster`` sends ``INFO`` to a single default node unless told
    otherwise, which would miss what the other masters ran. Replicas are left out:
    they count the writes replicated to them as calls of their own.
    """
    primaries = client.PRIMARIES
    return parse_counters(
        client.info("stats", target_nodes=primaries), client.info("commandstats", target_nodes=primaries)
    )


@dataclass
class ServerSpan:
    """The counters at the start of a span, and the difference once it ended."""

    before: ServerCounters | None
    stats: ServerStats | None = None
