"""pytest-cachecheck: test a Redis caching layer's correctness and performance with pytest.

Everything a test names is importable from here (SPEC 9.4): the fixtures' types, the results
their methods return, ``Amplification``, the errors and the warning classes. Submodules are
internal; their layout may change between releases.
"""

from .backends.base import BackendError
from .checks.arguments import MarkerError
from .checks.consistency import Amplification, CacheConsistency
from .checks.history import ConsistencyReport, Operation, Violation, check_history
from .checks.invalidation import InvalidationProbe, Scaling, ScalingRow, Visibility
from .checks.speedup import CacheBench, LoadRun, Speedup
from .faults import CacheFaults, FaultStats
from .metrics import Measurement
from .observe import CacheMonitor, CacheStats, Event, LatencyStats
from .runtime import CacheServer
from .warning_types import (
    CachecheckWarning,
    FakeViewWarning,
    InconclusiveCheckWarning,
    LeftoverKeysWarning,
    TimingNotEnforcedWarning,
)

# StampedeReport (SPEC 9.4) joins the results when cache_stampede lands (issue 14).

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
    "ConsistencyReport",
    "Event",
    "FaultStats",
    "LatencyStats",
    "LoadRun",
    "Measurement",
    "Operation",
    "Scaling",
    "ScalingRow",
    "Speedup",
    "Violation",
    "Visibility",
    "check_history",
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
