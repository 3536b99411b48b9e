"""The hybrid cache: query results under a per-user namespace version, invalidated by one INCR.

Keys: ``vn:ver:<user>`` holds the user's namespace version; cached results live under
``vn:u:<user>:v<version>:<model>:<query>``. Invalidating a user bumps the version (O(1):
one INCR, however many results are cached); the old results are never read again and
expire by their per-model TTL.

The version key itself carries a TTL (every key does) longer than any result's, refreshed
on every bump. Should it expire anyway, it restarts from the clock, not from 1, so a
recreated version never collides with results cached under an old one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django_redis import get_redis_connection

T = TypeVar("T")

MODEL_TTL_S = {"customer": 900, "invoice": 300, "product": 3600}
VERSION_TTL_S = 2 * max(MODEL_TTL_S.values())


def plain_key(key: str, key_prefix: str, version: int) -> str:
    """Django ``KEY_FUNCTION``: keep keys exactly as written, so patterns in targets read naturally."""
    return key


def version_key(user_id: int) -> str:
    return f"vn:ver:{user_id}"


def current_version(user_id: int) -> int:
    """The user's namespace version, created (from the clock) when missing."""
    key = version_key(user_id)
    version = cache.get(key)
    if version is None:
        cache.add(key, time.time_ns(), timeout=VERSION_TTL_S)
        version = cache.get(key)
    return int(version)


def invalidate_user(user_id: int) -> None:
    """O(1) invalidation of everything cached for a user: INCR the version, refresh its TTL.

    Two commands, not a transaction: INCR keeps the key's TTL, so a crash between them
    leaves a version key that still expires.
    """
    connection = get_redis_connection("default")
    connection.incr(version_key(user_id))
    connection.expire(version_key(user_id), VERSION_TTL_S)


def result_key(user_id: int, version: int, model: str, query: str) -> str:
    digest = hashlib.blake2b(query.encode(), digest_size=8).hexdigest()
    return f"vn:u:{user_id}:v{version}:{model}:{digest}"


def cached_query(user_id: int, model: str, query: str, compute: Callable[[], T]) -> T:
    """Read-through: the result of ``compute`` cached in the user's current namespace."""
    key = result_key(user_id, current_version(user_id), model, query)
    found: Any = cache.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    value = compute()
    cache.set(key, value, timeout=MODEL_TTL_S[model])
    return value
