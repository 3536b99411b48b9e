"""The warnings the plugin issues, all under ``CachecheckWarning`` (a ``pytest.PytestWarning``).

A leaf module, as pytest's own ``warning_types``: every layer may import it. Being
``PytestWarning`` subclasses, they show in pytest's warnings summary and a strict job can
turn them into errors by class: ``-W error::pytest_cachecheck.InconclusiveCheckWarning``,
or all of them with ``-W error::pytest_cachecheck.CachecheckWarning``.
"""

from __future__ import annotations

import pytest


class CachecheckWarning(pytest.PytestWarning):
    """Base class of every warning pytest-cachecheck issues."""

    __module__ = "pytest_cachecheck"


class InconclusiveCheckWarning(CachecheckWarning):
    """A check had too little evidence to pass or fail (too few samples for a p99, a stale-read run that never
    exercised the race)."""

    __module__ = "pytest_cachecheck"


class TimingNotEnforcedWarning(CachecheckWarning):
    """A wall-clock check failed in a run with ``--cache-timing report``: shown, not failing the test."""

    __module__ = "pytest_cachecheck"


class FakeViewWarning(CachecheckWarning):
    """The installed fakeredis does not offer the seam the server-side view needs."""

    __module__ = "pytest_cachecheck"


class LeftoverKeysWarning(CachecheckWarning):
    """Keys appeared in the run's database that no observed command of the run wrote: left in place."""

    __module__ = "pytest_cachecheck"
