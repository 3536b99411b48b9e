"""``@pytest.mark.cache_forbid(*commands)``: the code under test must not issue these commands.

Client-side, every observed command counts. On real-server backends the per-test
``INFO commandstats`` delta counts as well, which catches the command when it runs
inside a Lua script or function (``EVAL "redis.call('KEYS', ...)"``), where no client
sees it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..config import MarkerSpec, Param
from ..observe.patterns import key_shape
from .base import FAILED, PASSED, Check, CheckResult, TestContext

_COMMAND = re.compile(r"^[A-Z][A-Z0-9_.\-]*( [A-Z][A-Z0-9_.\-]*)?$")
_SCRIPTS = ("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO")


def _command_names(bound: dict[str, Any]) -> str | None:
    for name in bound["commands"]:
        if not _COMMAND.match(name):
            return f"argument {name!r} must be a Redis command name such as 'KEYS' or 'CONFIG SET'"
    return None


SPEC = MarkerSpec(
    name="cache_forbid",
    params=(Param("commands", "command", variadic=True, required=True),),
    help="fails when the code under test issued any of these Redis commands, including inside Lua scripts "
    "on real-server backends",
    extra_check=_command_names,
)


def _matches(command: str, forbidden: str) -> bool:
    return command == forbidden or command.startswith(forbidden + " ")


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    forbidden: tuple[str, ...] = params["commands"]
    events = context.monitor.events
    client_counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    scripts = sum(event.command in _SCRIPTS for event in events)
    for event in events:
        for name in forbidden:
            if _matches(event.command, name):
                client_counts[name] += 1
                examples.setdefault(name, event.command + (f" {key_shape(event.keys[0])}" if event.keys else ""))
    in_warmup = Counter(
        name for event in context.monitor.warmup_events for name in forbidden if _matches(event.command, name)
    )
    server_records = context.data.get("server_stats") or []
    server = server_records[-1] if server_records else None
    found = []
    metrics: dict[str, Any] = {}
    for name in forbidden:
        on_client = client_counts[name]
        on_server = max(server.count(name) - in_warmup[name], 0) if server is not None else None
        metrics[f"{name.lower().replace(' ', '_')}_calls"] = max(on_client, on_server or 0)
        if on_client:
            where = f"{on_client} time(s) by the client (first: {examples[name]})"
            if on_server is not None and on_server > on_client:
                where += f" and {on_server - on_client} more time(s) inside Lua scripts or functions"
            found.append(f"{name} issued {where}")
        elif on_server:
            found.append(
                f"{name} ran {on_server} time(s) on the server but never from the client: inside Lua scripts or "
                f"functions ({scripts} script call(s) observed client-side)"
            )
    if found:
        return CheckResult(SPEC.name, FAILED, "cache_forbid: " + "; ".join(found), metrics)
    scope = "client and server side" if server is not None else "client side (no server-side view on this backend)"
    return CheckResult(SPEC.name, PASSED, f"cache_forbid: none of {', '.join(forbidden)} was issued ({scope})", metrics)


CHECK = Check(SPEC, evaluate)
