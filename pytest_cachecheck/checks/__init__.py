"""Per-test checks, one module each; ``CHECKS`` maps marker names to them."""

from __future__ import annotations

from . import consistency, cost, forbid, hit_rate, invalidation, latency, size, speedup, stampede, ttl
from .base import Check, CheckResult, TestContext

CHECKS: dict[str, Check] = {
    check.spec.name: check
    for check in (
        hit_rate.CHECK,
        latency.CHECK,
        ttl.CHECK,
        forbid.CHECK,
        invalidation.CHECK,
        speedup.CHECK,
        cost.CHECK,
        consistency.CHECK,
        stampede.CHECK,
        size.CHECK,
    )
}

__all__ = ["CHECKS", "Check", "CheckResult", "TestContext"]
