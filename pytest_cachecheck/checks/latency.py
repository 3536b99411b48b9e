"""``@pytest.mark.cache_latency(*, mean_ms, p50_ms, p95_ms, p99_ms, p999_ms, max_ms, pattern="*", command=None)``.

A ceiling fails only on clear evidence: the statistic's lower confidence bound must be above
it (percentiles: an order statistic; the mean: the DKW/Anderson bound, both distribution-free,
see ``bounds.py``), and the machine's own round trip over the same seconds (the baseline
probes, ``baseline.py``) must not have been over it too. It passes when the upper bound is at
or below the ceiling, and is inconclusive (a warning) otherwise, typically because there were
too few samples to show a p99. ``max_ms`` needs no bound: the true maximum is at least the
observed one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..metrics import LATENCY_CEILINGS
from ..observe.events import Event
from ..observe.patterns import MATCH_ALL, key_shape, matcher
from .arguments import MarkerSpec, Param
from .base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, TestContext
from .baseline import QUANTILES, Baseline, explained, label, over_span
from .bounds import mean_lower_bound, mean_upper_bound, quantile_bounds, samples_needed_for_upper_bound

# A false failure costs a red build, an unproven pass only a warning: the levels differ.
FAIL_CONFIDENCE = 0.999
PASS_CONFIDENCE = 0.95
CEILINGS = tuple(metric.name for metric in LATENCY_CEILINGS)  # mean_ms, p50_ms, ..., p999_ms, max_ms


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
    help="ceilings on the mean and percentiles of observed command durations; fails only when the "
    "statistic's lower confidence bound is above the ceiling and the machine's own round trip was not, "
    "too few samples is a warning",
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


def bounds(durations: Sequence[float], metric: str) -> tuple[float, float | None, float | None, str]:
    """``(estimate, lower, upper, why no upper bound)`` of ``metric`` over sorted durations.

    ``lower`` at ``FAIL_CONFIDENCE``, ``upper`` at ``PASS_CONFIDENCE``; None when the samples are
    too few. The maximum is observed, not estimated: its lower bound is the largest sample.
    """
    fraction = QUANTILES[metric]
    if fraction is None:
        lower, upper = mean_lower_bound(durations, FAIL_CONFIDENCE), mean_upper_bound(durations, PASS_CONFIDENCE)
        return sum(durations) / len(durations), lower, upper, "needs >= 6"
    if fraction == 1.0:
        return durations[-1], durations[-1], durations[-1], ""
    found = quantile_bounds(durations, fraction, FAIL_CONFIDENCE, PASS_CONFIDENCE)
    needed = samples_needed_for_upper_bound(fraction, PASS_CONFIDENCE)
    return found.estimate, found.lower, found.upper, f"needs >= {needed}"


def judge(
    metric: str, ceiling: float, durations: Sequence[float], baseline: Baseline, slowest: str = ""
) -> tuple[str, str]:
    """One ceiling over sorted durations: ``(status, message part)``, the baseline shown in each part."""
    estimate, lower, upper, needed = bounds(durations, metric)
    commands = len(durations)
    name, context = label(metric), baseline.describe(metric)
    if lower is not None and lower > ceiling:
        if metric == "max_ms":
            over = sum(value > ceiling for value in durations)
            evidence = f"({over} commands over it{': ' + slowest if slowest else ''})"
        else:
            evidence = (
                f"(lower bound {lower:.3f} ms at {FAIL_CONFIDENCE:.1%} confidence"
                f"{'; slowest: ' + slowest if slowest else ''})"
            )
        part = f"{name} {estimate:.3f} ms is above the ceiling {ceiling:g} ms {evidence}"
        if baseline.over(metric, ceiling, commands):
            return INCONCLUSIVE, f"{part}; {explained(metric, ceiling, baseline, commands)}"
        return FAILED, f"{part}; {baseline.unexplained(metric, ceiling, commands)}"
    if upper is not None and upper <= ceiling:
        return PASSED, f"{name} {estimate:.3f} ms <= {ceiling:g} ms ({context})"
    if upper is None:
        return INCONCLUSIVE, (
            f"{name} {estimate:.3f} ms vs ceiling {ceiling:g} ms: {len(durations)} samples are too few to "
            f"show it below the ceiling ({needed}); {context}"
        )
    return INCONCLUSIVE, (
        f"{name} {estimate:.3f} ms vs ceiling {ceiling:g} ms: too close to decide "
        f"({PASS_CONFIDENCE:.0%} upper bound {upper:.3f} ms, lower bound {lower if lower is not None else 0:.3f} ms); "
        f"{context}"
    )


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
    baseline = over_span(
        context.monitor.baseline,
        min(event.start_ns for event in events),
        max(event.start_ns + event.duration_ns for event in events),
    )
    metrics["baseline_probes"] = baseline.count
    verdicts: dict[str, list[str]] = {FAILED: [], INCONCLUSIVE: [], PASSED: []}
    for metric in CEILINGS:
        ceiling = params[metric]
        if ceiling is None:
            continue
        status, part = judge(metric, ceiling, durations, baseline, _slowest(events, ceiling))
        verdicts[status].append(part)
        metrics[metric] = bounds(durations, metric)[0]
        if baseline.value(metric) is not None:
            metrics[f"baseline_{metric}"] = baseline.value(metric)
    summary = f"over {len(durations)} {where}{_server_note(context, events)}"
    if verdicts[FAILED]:
        message = f"cache_latency: {'; '.join(verdicts[FAILED])}; {summary}"
        return CheckResult(SPEC.name, FAILED, message, metrics, timing=True)
    if verdicts[INCONCLUSIVE]:
        message = f"cache_latency inconclusive: {'; '.join(verdicts[INCONCLUSIVE])}; {summary}"
        return CheckResult(SPEC.name, INCONCLUSIVE, message, metrics)
    return CheckResult(SPEC.name, PASSED, f"cache_latency: {', '.join(verdicts[PASSED])} {summary}", metrics)


CHECK = Check(SPEC, evaluate)
