"""What every check gets (``TestContext``) and gives back (``CheckResult``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..metrics import Measurement
from ..observe.monitor import CacheMonitor
from .arguments import MarkerSpec

PASSED = "passed"
FAILED = "failed"
INCONCLUSIVE = "inconclusive"
NOT_ENFORCED = "not enforced"


@dataclass
class TestContext:
    """Everything observed during one test; fixtures append their measurements to ``data``."""

    __test__ = False  # not a test class, despite the name

    nodeid: str
    monitor: CacheMonitor
    backend: Any = None
    data: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    measurements: list[Measurement] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)


@dataclass(frozen=True)
class CheckResult:
    """A marker's verdict on one test.

    ``timing`` marks a failure that rests on wall-clock measurements alone (latency, speedup,
    invalidation time): ``--cache-timing report`` turns those into ``not enforced`` warnings.
    """

    marker: str
    status: str
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    timing: bool = False

    @property
    def failed(self) -> bool:
        return self.status == FAILED


@dataclass(frozen=True)
class Check:
    """A marker and the function that evaluates it after the test body ran."""

    spec: MarkerSpec
    evaluate: Callable[[TestContext, dict[str, Any]], CheckResult]
    needs_monitor: bool = True
