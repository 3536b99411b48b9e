"""pytest-cachecheck: test a Redis caching layer's correctness and performance with pytest."""

from .checks.stampede import StampedeReport
from .observe import CacheMonitor, CacheStats, Event, LatencyStats
from .runtime import CacheServer

__version__ = "0.1.0"
__all__ = ["CacheMonitor", "CacheServer", "CacheStats", "Event", "LatencyStats", "StampedeReport", "__version__"]
