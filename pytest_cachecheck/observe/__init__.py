"""Observation of redis-py commands: instrumentation, command table, events and statistics."""

from .aggregate import CacheStats, LatencyStats
from .events import Event
from .monitor import CacheMonitor

__all__ = ["CacheMonitor", "CacheStats", "Event", "LatencyStats"]
