"""``cache_consistency [#####.....] 12000/20000 ops`` on the terminal, for runs longer than a couple of seconds."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

PROGRESS_AFTER_S = 2.0
_BAR = 30


class Progress:
    """Counts operations (from any worker); ``render`` draws from the driving thread only.

    ``inline``: the workers are tasks on the driving thread, so ``advance`` renders
    every 64 operations itself.
    """

    def __init__(self, total: int, show: Callable[[str], None] | None, *, inline: bool = False) -> None:
        self.total = total
        self.show = show
        self.inline = inline
        self._done = itertools.count(1)
        self.count = 0
        self.started = time.monotonic()
        self.shown = False

    def advance(self) -> None:
        self.count = next(self._done)
        if self.inline and self.count % 64 == 0:
            self.render()

    def render(self) -> None:
        """Terminal writes are not thread-safe: called from the driving thread only."""
        if self.show is None or time.monotonic() - self.started < PROGRESS_AFTER_S:
            return
        filled = _BAR * self.count // max(self.total, 1)
        self.show(f"cache_consistency [{'#' * filled}{'.' * (_BAR - filled)}] {self.count}/{self.total} ops")
        self.shown = True

    def finish(self) -> None:
        if self.shown and self.show is not None:
            self.show("")


def terminal_progress(config: pytest.Config) -> Callable[[str], None] | None:
    """A status line on the real terminal (past output capture), or None when it is not a TTY.

    Decided by pytest's terminal reporter (``isatty``: its stream), not by colour:
    ``--color=yes`` into a pipe would fill a log with carriage-return lines, and
    ``NO_COLOR`` on a TTY only asks for no colour.
    """
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return None
    isatty = reporter.isatty  # a method since pytest 8.1 (callable and truthy), a bool before
    if not (isatty() if callable(isatty) else isatty):
        return None

    def show(text: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.rewrite(text, erase=True)
            if not text:
                reporter.rewrite("")  # back to the start of the erased line
            reporter.flush()

    return show
