"""Observation of redis-py commands: instrumentation, command table, events and statistics."""

from .events import Event
from .monitor import CacheMonitor
from .stats import CacheStats, LatencyStats

__all__ = ["CacheMonitor", "CacheStats", "Event", "LatencyStats"]
