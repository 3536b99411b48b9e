"""``@pytest.mark.cache_latency(*, p50_ms, p95_ms, p99_ms, max_ms, pattern="*", command=None)``.

A percentile ceiling fails only on clear evidence: the percentile's lower confidence
bound (an order statistic, see ``statistics.py``) must be above the ceiling. It passes
when the upper bound is at or below the ceiling, and is inconclusive (a warning) in
between, typically because there were too few samples to show a p99. ``max_ms`` needs
no bound: the true maximum is at least the observed one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..metrics import LATENCY_CEILINGS
from ..metrics import PERCENTILES as REGISTERED_PERCENTILES
from ..observe.events import Event
from ..observe.patterns import MATCH_ALL, key_shape, matcher
from .arguments import MarkerSpec, Param
from .base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, TestContext
from .statistics import quantile_bounds, samples_needed_for_upper_bound

# A false failure costs a red build, an unproven pass only a warning: the levels differ.
FAIL_CONFIDENCE = 0.999
PASS_CONFIDENCE = 0.95
PERCENTILES = tuple((metric.name, metric.quantile) for metric in REGISTERED_PERCENTILES if metric.quantile is not None)
CEILINGS = tuple(metric.name for metric in LATENCY_CEILINGS)


def _at_least_one_ceiling(bound: dict[str, Any]) -> str | None:
    if all(bound[name] is None for name in CEILINGS):
        names = f"{', '.join(CEILINGS[:-1])} or {CEILINGS[-1]}"
        return f"give at least one ceiling: {names} (e.g. cache_latency(p95_ms=5))"
    return None


SPEC = MarkerSpec(
    name="cache_latency",
    params=(
        *(Param(name, "number", default=None, low=0, low_open=True) for name in CEILINGS),
        Param("pattern", "pattern", default=MATCH_ALL),
        Param("command", "command", default=None),
    ),
    help="ceilings on percentiles of observed command durations; fails only when the percentile's "
    "lower confidence bound is above the ceiling, too few samples is a warning",
    extra_check=_at_least_one_ceiling,
)


def select(events: Sequence[Event], pattern: str, command: str | None) -> list[Event]:
    """Commands on keys matching ``pattern`` (keyless ones only for ``"*"``), optionally of one name."""
    match = matcher(pattern)
    chosen = []
    for event in events:
        if command is not None and event.command != command and not event.command.startswith(command + " "):
            continue
        if pattern == MATCH_ALL or any(match(key) for key in event.keys):
            chosen.append(event)
    return chosen


def _slowest(events: Sequence[Event], threshold_ms: float, top: int = 3) -> str:
    """Which command and key shapes the samples above the ceiling came from."""
    shapes: Counter[str] = Counter()
    for event in events:
        if event.duration_ms > threshold_ms:
            shapes[f"{event.command} {key_shape(event.keys[0]) if event.keys else '(no key)'}"] += 1
    return ", ".join(f"{shape} ({count})" for shape, count in shapes.most_common(top))


def _server_note(context: TestContext, events: Sequence[Event]) -> str:
    """Server-side execution time of the same commands, when a real server was measured."""
    recorded = context.data.get("server_stats") or []
    if not recorded:
        return ""
    stats = recorded[-1]
    names = {event.command for event in events}
    calls = sum(stats.calls.get(name, 0) for name in names)
    usec = sum(stats.usec.get(name, 0) for name in names)
    if not calls:
        return ""
    per_call = usec / calls / 1000
    return f"; server-side execution {per_call:.3f} ms per call over {calls} calls (the rest is network and client)"


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    pattern, command = params["pattern"], params["command"]
    events = select(context.monitor.events, pattern, command)
    keys = f"commands on keys matching {pattern!r}" if pattern != MATCH_ALL else "commands"
    where = f"{command} {keys}" if command else keys
    durations = sorted(event.duration_ms for event in events)
    metrics: dict[str, Any] = {"samples": len(durations)}
    if not durations:
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_latency: no {where} were observed; the code under test must use Redis through a redis-py client "
            "during the test",
            metrics,
        )
    failures, unsure, passes = [], [], []
    for name, q in PERCENTILES:
        ceiling = params[name]
        if ceiling is None:
            continue
        bounds = quantile_bounds(durations, q, FAIL_CONFIDENCE, PASS_CONFIDENCE)
        label = name[:-3]
        metrics[name] = bounds.estimate
        if bounds.lower is not None and bounds.lower > ceiling:
            failures.append(
                f"{label} {bounds.estimate:.3f} ms is above the ceiling {ceiling:g} ms "
                f"(lower bound {bounds.lower:.3f} ms at {FAIL_CONFIDENCE:.1%} confidence; "
                f"slowest: {_slowest(events, ceiling)})"
            )
        elif bounds.upper is not None and bounds.upper <= ceiling:
            passes.append(f"{label} {bounds.estimate:.3f} ms <= {ceiling:g} ms")
        elif bounds.upper is None:
            unsure.append(
                f"{label} {bounds.estimate:.3f} ms vs ceiling {ceiling:g} ms: {len(durations)} samples are too few to "
                f"show it below the ceiling (needs >= {samples_needed_for_upper_bound(q, PASS_CONFIDENCE)})"
            )
        else:
            unsure.append(
                f"{label} {bounds.estimate:.3f} ms vs ceiling {ceiling:g} ms: too close to decide "
                f"({PASS_CONFIDENCE:.0%} upper bound {bounds.upper:.3f} ms, lower bound "
                f"{bounds.lower if bounds.lower is not None else 0:.3f} ms)"
            )
    if params["max_ms"] is not None:
        ceiling, worst = params["max_ms"], durations[-1]
        metrics["max_ms"] = worst
        if worst > ceiling:
            failures.append(
                f"max {worst:.3f} ms is above the ceiling {ceiling:g} ms "
                f"({sum(value > ceiling for value in durations)} commands over it: {_slowest(events, ceiling)})"
            )
        else:
            passes.append(f"max {worst:.3f} ms <= {ceiling:g} ms")
    summary = f"over {len(durations)} {where}{_server_note(context, events)}"
    if failures:
        return CheckResult(SPEC.name, FAILED, f"cache_latency: {'; '.join(failures)}; {summary}", metrics, timing=True)
    if unsure:
        return CheckResult(SPEC.name, INCONCLUSIVE, f"cache_latency inconclusive: {'; '.join(unsure)}", metrics)
    return CheckResult(SPEC.name, PASSED, f"cache_latency: {', '.join(passes)} {summary}", metrics)


CHECK = Check(SPEC, evaluate)
