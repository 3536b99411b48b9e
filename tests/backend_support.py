"""The two backends an end-to-end check is proven on: ``fake`` always, ``server`` where Debian's
``redis-server`` is installed (it skips and says why elsewhere). Parametrize with
``@pytest.mark.parametrize("backend", BACKENDS)``."""

from __future__ import annotations

import shutil

import pytest

BACKENDS = [
    "fake",
    pytest.param(
        "server", marks=pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
    ),
]
