"""Plumbing every pytester test shares, in one place."""

from __future__ import annotations

import pytest

# What every inner run gets. ``no:cacheprovider``: no ``.pytest_cache`` is read or written, so no
# state leaks from one inner run into the next (``--lf``, step-wise) and no cache directory litters
# the test dirs. ``no:hypothesispytest`` and ``no:anyio``: no inner run uses hypothesis or anyio, and
# their entry-point plugins cost each inner pytest process (a subprocess run, each of its xdist
# workers) more than the rest of its start-up: 1.3 s of user CPU with them, 0.55 s without (an empty test
# file, measured on the shared 2-core machine). A future inner run that needs one names it with ``-p``.
INNER_RUN_OPTIONS = "-p no:cacheprovider -p no:hypothesispytest -p no:anyio"


@pytest.fixture(autouse=True)
def _inner_runs_get_the_shared_options(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every inner pytest run gets ``INNER_RUN_OPTIONS`` through ``PYTEST_ADDOPTS``: pytester's
    (in-process and subprocess) and the ones a test starts itself (``subprocess`` in test_lifecycle),
    so a new test need not pass ``-p no:cacheprovider`` itself. Pytester clears ``PYTEST_ADDOPTS``
    when it starts: set after it. The outer run read its options long before.
    """
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
    monkeypatch.setenv("PYTEST_ADDOPTS", INNER_RUN_OPTIONS)
