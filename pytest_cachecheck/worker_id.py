"""Which pytest-xdist worker this process is: a leaf module, read by settings and backends alike."""

from __future__ import annotations

import os


def worker_index(worker_id: str | None = None) -> int:
    """0 for the controller or a plain run, N for the pytest-xdist worker ``gwN``.

    Settings pass the id from pytest's own ``config.workerinput``: the environment
    variable also leaks into nested pytest runs (pytester) inside a worker.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "") if worker_id is None else worker_id
    digits = worker.lstrip("gw")
    return int(digits) if digits.isdigit() else 0
