"""``@pytest.mark.cache_no_stale_reads``: every history the test recorded, judged after its body."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ..arguments import MarkerError, MarkerSpec, Param
from ..base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, TestContext

MARKER = "cache_no_stale_reads"
DATA_KEY = "consistency"
RECORDERS_KEY = "consistency_recorders"

SPEC = MarkerSpec(
    name=MARKER,
    params=(Param("max_staleness_ms", "number", default=0, low=0),),
    help="no read in this test's cache_consistency histories may return a value older than a write "
    "acknowledged more than max_staleness_ms before the read began",
)

POWER_ADVICE = (
    "to get power: more ops (ops=20000), fewer keys (keys=4) or more threads (threads=8), so that a write "
    "lands while another worker is between a miss and its fill"
)


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    bound = float(params["max_staleness_ms"])
    for recorder in list(context.data.get(RECORDERS_KEY, ())):
        recorder.flush()
    reports = [report.rechecked(bound) for report in context.data.get(DATA_KEY, ())]
    if not reports:
        return CheckResult(
            MARKER,
            FAILED,
            f"{MARKER}: no history was recorded; drive the cache with cache_consistency.run(read=..., write=...) "
            "or record calls with cache_consistency.read(key) / cache_consistency.write(key, value)",
        )
    reads = sum(report.reads for report in reports)
    stale = sum(report.stale_reads for report in reports)
    driven = [report for report in reports if report.windows is not None]
    windows = sum(report.windows or 0 for report in driven)
    fills = sum(report.fills or 0 for report in driven)
    metrics = {
        "reads": reads,
        "stale_reads": stale,
        "phantom_reads": sum(report.phantom_reads for report in reports),
        "future_reads": sum(report.future_reads for report in reports),
        "nines": math.inf if stale == 0 else -math.log10(stale / reads),
        "worst_staleness_ms": max(report.worst_staleness_ms for report in reports),
        "p99_staleness_ms": max(report.p99_staleness_ms for report in reports),
        "max_staleness_ms": bound,
    }
    if driven:
        metrics["windows"] = windows
    if reads == 0:
        return CheckResult(MARKER, FAILED, f"{MARKER}: the recorded history has no reads to check", metrics)
    failing = [report for report in reports if not report.ok]
    if failing:
        return CheckResult(MARKER, FAILED, f"{MARKER}: " + "\n".join(report.format() for report in failing), metrics)
    power = f"; race windows {windows} (of {fills} fills after a miss)" if driven else ""
    if driven and windows == 0:
        return CheckResult(
            MARKER,
            INCONCLUSIVE,
            f"{MARKER}: inconclusive: no stale reads in {reads} reads, but the race was never exercised "
            f"(race windows 0: no write or invalidation landed between a read's miss and its fill; "
            f"{fills} fills after a miss); {POWER_ADVICE}",
            metrics,
        )
    return CheckResult(MARKER, PASSED, f"no stale reads in {reads} reads{power}", metrics)


CHECK = Check(SPEC, evaluate, needs_monitor=False)


def marker_bound(node: pytest.Item) -> float:
    """The test's ``cache_no_stale_reads(max_staleness_ms=...)``, the driver's default bound."""
    mark = node.get_closest_marker(MARKER)
    if mark is None:
        return 0.0
    try:
        return float(SPEC.bind(mark.args, mark.kwargs)["max_staleness_ms"])
    except MarkerError:
        return 0.0  # fixtures are set up before markers are validated: the test fails with that line
