"""Counts as the gate, clocks as evidence: what one call costs Redis, exactly.

``cache_bench.cost(call, calls=5)`` runs ``call`` ``calls`` times and counts, per call, the
commands it sent, its round trips (a pipeline or a ``MULTI``/``EXEC`` transaction is one,
every other command one) and the payload bytes it sent and received (``observe.sizes``).
The counts do not depend on the machine: a layer that makes one round trip per key instead
of one ``MGET``, or that grows its commands with the data, shows it on a loaded CI runner as
on a quiet laptop. ``@pytest.mark.cache_cost(round_trips=..., commands=..., bytes=...)``
bounds the costliest call of every ``cost()`` in the test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import Measurement
from ..observe.events import classify_raw
from ..observe.instrument import RawEvent
from ..observe.sizes import bytes_received, bytes_sent
from .arguments import MarkerSpec, Param, require_whole
from .base import FAILED, PASSED, Check, CheckResult, TestContext
from .drive import Call, Procedure, drive, is_async

DATA_COST = "cost"


@dataclass(frozen=True)
class CallCost:
    """What one call sent to Redis."""

    commands: int
    round_trips: int
    bytes_sent: int
    bytes_received: int
    names: Counter[str]

    @property
    def bytes(self) -> int:
        return self.bytes_sent + self.bytes_received

    def describe(self) -> str:
        names = ", ".join(f"{name} {count}" for name, count in self.names.most_common(4)) or "none"
        return (
            f"{self.round_trips} round trips, {self.commands} commands ({names}), "
            f"{self.bytes_sent} bytes sent, {self.bytes_received} received"
        )


def call_cost(records: Sequence[RawEvent]) -> CallCost:
    """Count one call's raw records: each pipeline id (non-zero) is one round trip, every other command one."""
    events = classify_raw(records)
    pipelines = {record[4] for record in records if record[4]}
    return CallCost(
        commands=len(records),
        round_trips=len(pipelines) + sum(1 for record in records if not record[4]),
        bytes_sent=sum(bytes_sent(record[2]) for record in records),
        bytes_received=sum(bytes_received(record[3]) for record in records),
        names=Counter(event.command for event in events),
    )


@dataclass(frozen=True)
class Cost:
    """Per-call costs of ``calls`` calls; the properties give the costliest call's (the gate)."""

    per_call: tuple[CallCost, ...]
    keys: tuple[str, ...] = ()

    @property
    def calls(self) -> int:
        return len(self.per_call)

    @property
    def round_trips(self) -> int:
        return max(call.round_trips for call in self.per_call)

    @property
    def commands(self) -> int:
        return max(call.commands for call in self.per_call)

    @property
    def bytes(self) -> int:
        return max(call.bytes for call in self.per_call)

    @property
    def worst(self) -> CallCost:
        """The call with most round trips (then commands, then bytes)."""
        return max(self.per_call, key=lambda call: (call.round_trips, call.commands, call.bytes))

    def describe(self) -> str:
        return f"costliest of {self.calls} calls: {self.worst.describe()}"


def measure_cost(context: TestContext, call: Callable[[], Any], calls: int) -> Any:
    """``cache_bench.cost``: run ``call`` ``calls`` times, each call's observed commands counted apart."""
    if not callable(call):
        raise TypeError("cache_bench.cost: 'call' must be a callable taking no arguments")
    require_whole("cache_bench.cost", "calls", calls, low=1)
    return drive(_cost(context, call, calls), is_async(call), "cache_bench.cost")


def _cost(context: TestContext, call: Callable[[], Any], calls: int) -> Procedure[Cost]:
    monitor = context.monitor
    per_call: list[CallCost] = []
    keys: list[str] = []
    for _ in range(calls):
        first = monitor.raw_count
        yield Call(call)
        records = monitor.raw_since(first)
        per_call.append(call_cost(records))
        keys.extend(key for event in classify_raw(records) for key in event.keys)
    result = Cost(tuple(per_call), tuple(dict.fromkeys(keys)))
    context.data[DATA_COST].append(result)
    context.measurements.extend(
        (
            Measurement("round_trips_per_call", result.round_trips, result.keys),
            Measurement("commands_per_call", result.commands, result.keys),
            Measurement("bytes_per_call", result.bytes, result.keys),
        )
    )
    return result


# ---------------------------------------------------------------- marker

_BOUNDS = ("round_trips", "commands", "bytes")


def _something_to_check(bound: dict[str, Any]) -> str | None:
    if all(bound[name] is None for name in _BOUNDS):
        return "give at least one of round_trips, commands or bytes (per call), e.g. cache_cost(round_trips=1)"
    return None


SPEC = MarkerSpec(
    name="cache_cost",
    params=tuple(Param(name, "int", default=None, low=0) for name in _BOUNDS),
    help="every cache_bench.cost(call) in the test: the costliest call makes at most round_trips round trips, "
    "sends at most commands commands and moves at most bytes payload bytes (counts, not clocks)",
    extra_check=_something_to_check,
)


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    costs: list[Cost] = context.data.get(DATA_COST) or []
    limits = [(name, params[name]) for name in _BOUNDS if params[name] is not None]
    if not costs:
        return CheckResult(
            SPEC.name,
            FAILED,
            "cache_cost: no cost was measured; call cache_bench.cost(call) in the test (the call whose "
            "round trips, commands and bytes the marker bounds)",
        )
    metrics = {name: max(getattr(cost, name) for cost in costs) for name, _ in limits}
    problems = []
    for cost in costs:
        for name, limit in limits:
            over = [call for call in cost.per_call if getattr(call, name) > limit]
            if over:
                worst = max(over, key=lambda call: getattr(call, name))
                problems.append(
                    f"{getattr(worst, name)} {name.replace('_', ' ')} per call is above {name}={limit} "
                    f"({len(over)} of {cost.calls} calls over; {worst.describe()})"
                )
    if problems:
        return CheckResult(SPEC.name, FAILED, "cache_cost: " + "; ".join(problems), metrics)
    shown = ", ".join(f"{name.replace('_', ' ')} {metrics[name]} <= {limit}" for name, limit in limits)
    return CheckResult(SPEC.name, PASSED, f"cache_cost: {shown} per call ({costs[-1].describe()})", metrics)


CHECK = Check(SPEC, evaluate)
