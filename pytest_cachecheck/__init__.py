"""pytest-cachecheck: test a Redis caching layer's correctness and performance with pytest.

Everything a test names is importable from here (SPEC 9.4): the fixtures' types, the results
their methods return, ``Amplification``, the errors and the warning classes, and two helpers
the docs name (``cluster_client`` for a ``redis+cluster://`` URL, ``REPORT_SCHEMA``). Submodules are
internal; their layout may change between releases.
"""

from .backends.base import BackendError
from .backends.cluster import cluster_client
from .checks.arguments import MarkerError
from .checks.consistency import Amplification, CacheConsistency
from .checks.cost import CallCost, Cost
from .checks.history import ConsistencyReport, Divergence, Operation, Violation, check_history
from .checks.invalidation import InvalidationProbe, Scaling, ScalingRow, Visibility
from .checks.speedup import CacheBench, LoadRun, Speedup
from .checks.stampede import StampedeReport
from .faults import CacheFaults, FaultStats
from .metrics import Measurement
from .observe import CacheMonitor, CacheStats, Event, LatencyStats
from .observe.server_stats import ServerStats
from .report.json_report import SCHEMA as REPORT_SCHEMA
from .runtime import CacheServer
from .warning_types import (
    CachecheckWarning,
    FakeViewWarning,
    InconclusiveCheckWarning,
    LeftoverKeysWarning,
    TimingNotEnforcedWarning,
)

__version__ = "0.1.0"
__all__ = [
    # fixtures' types
    "CacheBench",
    "CacheConsistency",
    "CacheFaults",
    "CacheMonitor",
    "CacheServer",
    "InvalidationProbe",
    # results and what they are made of
    "CacheStats",
    "CallCost",
    "ConsistencyReport",
    "Cost",
    "Divergence",
    "Event",
    "FaultStats",
    "LatencyStats",
    "LoadRun",
    "Measurement",
    "Operation",
    "Scaling",
    "ScalingRow",
    "ServerStats",
    "Speedup",
    "StampedeReport",
    "Violation",
    "Visibility",
    "check_history",
    # for apps and tools beside the tests: a client for the cluster backend's URL, the JSON report's schema
    "REPORT_SCHEMA",
    "cluster_client",
    # arguments
    "Amplification",
    # errors
    "BackendError",
    "MarkerError",
    # warnings
    "CachecheckWarning",
    "FakeViewWarning",
    "InconclusiveCheckWarning",
    "LeftoverKeysWarning",
    "TimingNotEnforcedWarning",
    "__version__",
]
