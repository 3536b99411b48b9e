"""The one-line message pieces (``pytest_cachecheck/text.py``) every layer's errors are built from."""

from __future__ import annotations

from pytest_cachecheck.text import one_line, plural, safe_repr


def test_plural_agrees_with_the_count() -> None:
    assert [plural(n, "miss", "misses") for n in (0, 1, 2)] == ["0 misses", "1 miss", "2 misses"]
    assert plural(1, "hit") == "1 hit" and plural(3, "hit") == "3 hits"


def test_one_line_keeps_the_start_of_a_message_and_the_end_of_a_log() -> None:
    assert one_line("Error\n  connecting   to\tx") == "Error connecting to x"
    assert one_line("a" * 10, limit=5) == "aaaa…"
    assert one_line("booting\n\nready\nsegfault\n", limit=14, keep_end=True) == "ady | segfault"
    assert one_line("\n", keep_end=True) == "(empty)"


def test_safe_repr_never_raises_nor_runs_on() -> None:
    assert safe_repr(10**5000) == "an int of about 5001 digits"
    assert safe_repr([10**5000]) == "a list too large to show"
    assert safe_repr("x" * 200).endswith("...") and len(safe_repr("x" * 200)) == 80
