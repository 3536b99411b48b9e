"""Text for one-line messages: a value shown safely, a library's message flattened, a count with its noun;
and a Redis command's word as text (``word``), which the command table and own-command accounting share.

A leaf module (stdlib only): every layer's errors and warnings are one line that names what
to change, and these are the pieces they are built from, defined once.
"""

from __future__ import annotations

from typing import Any


def word(arg: Any) -> str:
    """A command name or option word as text, upper-cased (``b"store"`` -> ``"STORE"``)."""
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg).decode("latin-1").upper()
    return str(arg).upper()


def safe_repr(value: Any, limit: int = 80) -> str:
    """``repr`` for a one-line message that never raises (``10**5000`` has no repr) nor runs on."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except ValueError:  # e.g. a list holding an int beyond sys.get_int_max_str_digits()
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, limit: int = 600, *, keep_end: bool = False) -> str:
    """A server's or library's message as one line of at most ``limit`` characters.

    ``keep_end``: for logs, whose last lines say why a process stopped: lines are joined with
    `` | `` and the end is kept (``(empty)`` when there is nothing)."""
    if keep_end:
        flat = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
        return flat[-limit:] or "(empty)"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 miss``, ``2 misses``, ``0 hits``: the count and the noun that agrees with it."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
