"""``@pytest.mark.cache_forbid(*commands)``: the code under test must not issue these commands.

Client-side, every observed command counts. With a server-side view (a real server's
``INFO commandstats``, the fake server's own view of what it executed) the per-test
delta counts as well, which catches the command when it runs
inside a Lua script or function (``EVAL "redis.call('KEYS', ...)"``), where no client
sees it, or comes from a client the plugin does not observe.

That delta already leaves out the plugin's own commands (``server_stats.difference``).
What it still holds beyond the observed calls but must not be blamed on the code under
test: the connection handshake redis-py sends below ``execute_command`` whenever a client
connects during the test (``HELLO``, ``AUTH``, ``CLIENT SETINFO``...). Those commands'
server-side count is ignored unless the code under test also issued them itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..observe.patterns import key_shape
from .arguments import MarkerSpec, Param
from .base import FAILED, PASSED, Check, CheckResult, TestContext

_SCRIPTS = ("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO")
# What redis-py (and valkey-py) send on a new connection, through the connection rather
# than ``execute_command``: the server counts them, no observed client call issued them.
HANDSHAKE = frozenset({"HELLO", "AUTH", "CLIENT SETINFO", "CLIENT SETNAME", "SELECT", "READONLY"})
_UNOBSERVED = "inside Lua scripts or functions, or from a client the plugin does not observe"


SPEC = MarkerSpec(
    name="cache_forbid",
    params=(Param("commands", "command", variadic=True, required=True),),
    help="fails when the code under test issued any of these Redis commands, including inside Lua scripts "
    "and functions (server-side view: real servers and fake; connection handshakes redis-py sends on "
    "connecting do not count)",
)


def _matches(command: str, forbidden: str) -> bool:
    return command == forbidden or command.startswith(forbidden + " ")


def _server_side(server: Any, name: str, issued: Counter[str]) -> tuple[int, int, bool]:
    """The server's count of ``name`` (``"CLIENT"`` includes ``CLIENT SETINFO``...) as
    ``(counted, ignored handshakes, whether counted includes handshake commands)``.

    A handshake command's count is ignored unless the client issued it itself (``issued``).
    """
    counted = ignored = 0
    handshake = False
    for command, calls in server.calls.items():
        if not _matches(command, name):
            continue
        if command in HANDSHAKE:
            if not issued[command]:
                ignored += calls
                continue
            handshake = True
        counted += calls
    return counted, ignored, handshake


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    forbidden: tuple[str, ...] = params["commands"]
    events = context.monitor.events
    warmup_events = context.monitor.warmup_events
    client_counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    scripts = sum(event.command in _SCRIPTS for event in events)
    for event in events:
        for name in forbidden:
            if _matches(event.command, name):
                client_counts[name] += 1
                examples.setdefault(name, event.command + (f" {key_shape(event.keys[0])}" if event.keys else ""))
    in_warmup = Counter(name for event in warmup_events for name in forbidden if _matches(event.command, name))
    issued = Counter(event.command for event in (*events, *warmup_events) if event.command in HANDSHAKE)
    server_records = context.data.get("server_stats") or []
    server = server_records[-1] if server_records else None
    found = []
    notes = []
    metrics: dict[str, Any] = {}
    for name in forbidden:
        on_client = client_counts[name]
        on_server: int | None = None
        handshake = False
        if server is not None:
            counted, ignored, handshake = _server_side(server, name, issued)
            on_server = max(counted - in_warmup[name], 0)
            if ignored:
                notes.append(f"{ignored} {name} call(s) from connection handshakes")
            own = sum(calls for command, calls in server.plugin_calls.items() if _matches(command, name))
            if own:
                notes.append(f"{own} {name} call(s) of the plugin's own")
        metrics[f"{name.lower().replace(' ', '_')}_calls"] = max(on_client, on_server or 0)
        if on_client:
            where = f"{on_client} time(s) by the client (first: {examples[name]})"
            if on_server is not None and on_server > on_client:
                where += f" and {on_server - on_client} more time(s) " + (
                    "inside Lua scripts or functions"
                    if scripts
                    else f"on the server from no observed client call: {_UNOBSERVED}"
                )
                if handshake:
                    where += ", or in connection handshakes"
            found.append(f"{name} issued {where}")
        elif on_server:
            if scripts:
                origin = (
                    f"never from the client: inside Lua scripts or functions ({scripts} script call(s) observed "
                    "client-side)"
                )
            else:
                origin = f"never from an observed client: {_UNOBSERVED}"
            found.append(f"{name} ran {on_server} time(s) on the server but {origin}")
    if found:
        return CheckResult(SPEC.name, FAILED, "cache_forbid: " + "; ".join(found), metrics)
    if server is None and scripts:
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_forbid: cannot tell whether {', '.join(forbidden)} ran: the test ran {scripts} Lua script or "
            "function call(s) and this backend has no server-side view to see inside them; run it with "
            "--cache-backend server (or fake with a fakeredis the plugin supports), or allow INFO on the server",
            metrics,
        )
    scope = (
        "client and server side, inside scripts included"
        if server is not None
        else "by observed clients; client side only: this backend has no server-side view, so commands from "
        "clients the plugin does not observe are not seen"
    )
    if notes:
        scope += "; left out server-side: " + ", ".join(notes)
        if any("handshake" in note for note in notes):
            scope += " (redis-py sends a handshake whenever a client connects, not through a client call)"
    return CheckResult(SPEC.name, PASSED, f"cache_forbid: none of {', '.join(forbidden)} was issued ({scope})", metrics)


CHECK = Check(SPEC, evaluate)
