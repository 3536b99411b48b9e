"""The baseline probe: the machine's own round trip, sampled beside the code's commands.

Beside the commands of plain clients the observation wrapper takes a probe now and then (one
``PING`` on the same server, about 1% of the commands' time, see ``PROBE_RATIO``): the
machine's own round trip over the same seconds, which timing verdicts are judged against
(``checks/baseline.py``). A leaf of the observation layer: ``instrument.py`` calls it,
``monitor.py`` routes the probes to the active monitor.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from ..own_commands import count_own


class _Probes:
    """Probe state read after every plain command (plain counters, updated without a lock: a
    lost update between threads only moves one probe a little).

    The observation wrapper's whole share of the rule, inlined there (a function call costs
    ~50-80 ns a command): ``left = probes.left_ns - duration``, store it back, and only when it
    reaches 0 look at ``baseline`` and take a probe. ``left_ns`` is the observed command time
    still to go before the next probe is due, set here after each probe (``_probed``) and when
    a monitor routes its baseline (``route_baseline``: due at once).
    """

    baseline: list[tuple[int, int]] | None = None  # the active monitor's probes: (start_ns, duration_ns)
    left_ns = 0  # observed command time to go before the next baseline probe is due
    probe_ns = 0  # total time of the probes so far in this process
    count = 0


probes = _Probes()
# A baseline probe (one PING, see ``probe``) is taken once the observed commands' time since the
# last one reaches PROBE_RATIO times the average probe: the probes cost about 1/PROBE_RATIO of the
# time the test's commands took. The first observed command of a test always takes one.
PROBE_RATIO = 100
_PROBE_ARGS = ("PING",)


def _probed(start: int) -> None:
    """Book one probe that started at ``start`` and ended now; the next is due after PROBE_RATIO
    times the average probe of observed command time."""
    duration = perf_counter_ns() - start
    baseline = probes.baseline
    if baseline is not None:
        baseline.append((start, duration))
    probes.probe_ns += duration
    probes.count += 1
    probes.left_ns = -(-PROBE_RATIO * probes.probe_ns // probes.count)  # ceil(PROBE_RATIO x the mean probe)


_LIBRARIES = frozenset({"redis", "fakeredis", "valkey"})


class _ProbeConnections(threading.local):
    """Per thread: one probe connection per client connection pool (None: that pool cannot be probed)."""

    def __init__(self) -> None:
        self.by_pool: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


_probe_connections = _ProbeConnections()


def _library_class(cls: type) -> type | None:
    """The client library's own connection class behind ``cls``: a subclass the application defined
    (a proxy that holds replies, a tracing wrapper) belongs to the code under test, not to the machine."""
    for candidate in cls.__mro__:
        if candidate.__module__.split(".")[0] in _LIBRARIES:
            return candidate
    return None


def _probe_connection(client: Any) -> Any:
    """A connection of the library's class to the same server and database as ``client``'s pool, this
    thread's own, connected outside any timing; None when there is none to make."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    connections = _probe_connections.by_pool
    try:
        return connections[pool]
    except KeyError:
        pass
    except TypeError:  # a pool that cannot be weakly referenced
        return None
    connection = None
    cls = _library_class(getattr(pool, "connection_class", object))
    if cls is not None:
        try:
            connection = cls(**getattr(pool, "connection_kwargs", {}))
            _connect_as_own(connection)
            connection.send_command(*_PROBE_ARGS)  # untimed: a first command may pay one-off costs
            count_own([_PROBE_ARGS], [connection.read_response()])
        except Exception:
            connection = None
    connections[pool] = connection
    return connection


def _connect_as_own(connection: Any) -> None:
    """Connect, counting the handshake the library sends (``HELLO``, ``CLIENT SETINFO``, ``SELECT``...)
    as the plugin's own commands, so server-side deltas leave the probe's connection out."""
    sent: list[tuple[Any, ...]] = []
    send = connection.send_command

    def recording(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return send(*args, **options)

    connection.send_command = recording
    try:
        connection.connect()
    finally:
        del connection.send_command
        count_own(sent, None)


def probe(client: Any) -> None:
    """The machine's own round trip, beside the code's commands: one ``PING`` to the same server, from
    the same thread, on a connection of the library's own class (not the application's, not through
    any interceptor: an injected latency or a slow connection class belongs to the code under test),
    not recorded, counted as the plugin's own command. A failure is swallowed and ends probing on
    that pool: the probe never changes what the code under test sees."""
    connection = _probe_connection(client)
    if connection is None:
        return
    start = perf_counter_ns()
    try:
        connection.send_command(*_PROBE_ARGS)
        reply = connection.read_response()
    except Exception:
        _probe_connections.by_pool[client.connection_pool] = None
        return
    _probed(start)
    count_own([_PROBE_ARGS], [reply])


def route_baseline(baseline: list[tuple[int, int]] | None) -> None:
    """Send baseline probes to ``baseline`` (a monitor's; None: take none), the next one due at once."""
    probes.baseline = baseline
    probes.left_ns = 0


async def probe_async(original: Callable[..., Any], client: Any) -> None:
    """``_probe`` for asyncio clients: a ``PING`` through the client itself (an asyncio connection
    belongs to one event loop), awaited in the same task, so it waits for the event loop as the
    code's own commands do (the hidden cost of many concurrent tasks). Interceptors are bypassed;
    a slow connection class of the application's would slow it too."""
    start = perf_counter_ns()
    try:
        reply = await original(client, *_PROBE_ARGS)
    except Exception:
        return
    _probed(start)
    count_own([_PROBE_ARGS], [reply])
