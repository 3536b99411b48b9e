"""Per-test checks, one module each; ``CHECKS`` maps marker names to them."""

from __future__ import annotations

from . import hit_rate
from .base import Check, CheckResult, TestContext

CHECKS: dict[str, Check] = {check.spec.name: check for check in (hit_rate.CHECK,)}

__all__ = ["CHECKS", "Check", "CheckResult", "TestContext"]
