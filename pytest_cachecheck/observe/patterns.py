"""Key glob patterns (Redis ``KEYS``/``SCAN MATCH`` syntax) and key shapes for reports."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable

MATCH_ALL = "*"


@functools.lru_cache(maxsize=512)
def matcher(pattern: str) -> Callable[[str], bool]:
    """A compiled predicate for a Redis glob (``*``, ``?``, ``[abc]``, ``[^a]``, ``\\x``)."""
    if pattern == MATCH_ALL:
        return lambda key: True
    translated = fnmatch.translate(pattern.replace("[^", "[!"))
    return re.compile(translated, re.DOTALL).match  # type: ignore[return-value]


def validate(pattern: object) -> str | None:
    """Return why ``pattern`` is not a usable glob, or None when it is."""
    if not isinstance(pattern, str) or not pattern:
        return f"a non-empty glob string such as 'user:*', got {pattern!r}"
    if pattern.count("[") != pattern.count("]"):
        return f"a glob with balanced [ ] brackets, got {pattern!r}"
    return None


_VARIABLE = re.compile(r"\d|^[0-9a-f]{8,}$|^[0-9a-f-]{32,36}$", re.IGNORECASE)


def key_shape(key: str) -> str:
    """Group keys by shape for 'top contributors': ``user:42:profile`` -> ``user:*:profile``.

    Separators ``:``, ``/``, ``.`` and ``|`` split a key; a segment that contains a
    digit or looks like a hash or UUID is replaced by ``*``.
    """
    parts = re.split(r"([:/.|])", key)
    return "".join(
        "*" if index % 2 == 0 and part and _VARIABLE.search(part) else part for index, part in enumerate(parts)
    )
