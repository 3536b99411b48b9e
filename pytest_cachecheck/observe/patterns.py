"""Key glob patterns (Redis ``KEYS``/``SCAN MATCH`` syntax) and key shapes for reports."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from typing import Any

MATCH_ALL = "*"
EMPTY_KEY = "''"  # the empty key (libraries pass it as KEYS[1]) must not be a nameless row


def shown_key(key: str) -> str:
    """A key in a message or a report row: one line, visible (``''`` for the empty key,
    control characters such as newlines and NULs escaped)."""
    if not key:
        return EMPTY_KEY
    if key.isprintable():
        return key
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in key)


def shown_value(value: Any, limit: int = 40, *, as_text: bool = True) -> str:
    """A value in a message: its ``repr`` (one line: newlines, NULs, pickled bytes escaped), cut to ``limit``.

    ``as_text`` shows bytes as the text they hold; without it ``b'v1'`` stays bytes, where
    telling bytes from ``str`` is the point (a read compared with an ``expect`` value).
    """
    text = repr(value.decode("utf-8", "backslashreplace") if as_text and isinstance(value, bytes) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.lru_cache(maxsize=512)
def matcher(pattern: str) -> Callable[[str], bool]:
    """A compiled predicate for a Redis glob (``*``, ``?``, ``[abc]``, ``[^a]``, ``\\x``)."""
    if pattern == MATCH_ALL:
        return lambda key: True
    translated = fnmatch.translate(pattern.replace("[^", "[!"))
    return re.compile(translated, re.DOTALL).match  # type: ignore[return-value]


def validate(pattern: object) -> str | None:
    """What ``pattern`` must be when it is not a usable glob (the phrase after "must be"), or None.

    The caller adds the value it got (shown safely: the value may be anything a user wrote)."""
    if not isinstance(pattern, str) or not pattern:
        return "a non-empty glob string such as 'user:*'"
    if pattern.count("[") != pattern.count("]"):
        return "a glob with balanced [ ] brackets"
    return None


_VARIABLE = re.compile(r"\d|^[0-9a-f]{8,}$|^[0-9a-f-]{32,36}$", re.IGNORECASE)


def key_shape(key: str) -> str:
    """Group keys by shape for 'top contributors': ``user:42:profile`` -> ``user:*:profile``.

    Separators ``:``, ``/``, ``.`` and ``|`` split a key; a segment that contains a
    digit or looks like a hash or UUID is replaced by ``*``.
    """
    if not key:
        return EMPTY_KEY
    parts = re.split(r"([:/.|])", shown_key(key))
    return "".join(
        "*" if index % 2 == 0 and part and _VARIABLE.search(part) else part for index, part in enumerate(parts)
    )
