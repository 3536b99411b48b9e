"""Plumbing every pytester test shares, in one place."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _pytester_runs_without_cacheprovider(request: pytest.FixtureRequest) -> None:
    """Inner runs (in-process and subprocess) never read or write a ``.pytest_cache``: no state leaks
    from one inner run into the next (``--lf``, step-wise) and no cache directory litters the test dirs.

    Pytester clears ``PYTEST_ADDOPTS`` when it starts; set after it, the option reaches every
    ``runpytest`` call, so a new test need not pass ``-p no:cacheprovider`` itself.
    """
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")
    request.getfixturevalue("monkeypatch").setenv("PYTEST_ADDOPTS", "-p no:cacheprovider")
