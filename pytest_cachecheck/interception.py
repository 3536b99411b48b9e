"""The interception seam: hooks that run on every observed command, and the state the hot path reads.

A leaf module (stdlib only): fault injection, race amplification and the url backend's
write journal and safety refusals subclass ``Interceptor`` and install it with
``intercepting()``; ``observe/instrument.py`` reads ``state`` on every command (the
attributes are swapped, never mutated in place, so a read needs no lock).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

# A raw record: (start_ns, duration_ns, args, reply or exception, pipeline_id; 0 outside pipelines).
RawEvent = tuple[int, int, tuple[Any, ...], Any, int]
LOCAL = -1  # the pipeline id of a read answered from the client's local cache


class Interceptor:
    """Fault injection and race amplification hook into every observed command (no-op defaults).

    ``pause`` runs before the command's timing starts: harness delays (race
    amplification) that must not count as command latency. ``before`` runs inside it:
    injected faults, whose delays count as a slow server's would.
    """

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        """Before the timed region; may sleep."""

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        """The asyncio clients' ``pause``: sleeps must not block the event loop."""

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        """Inside the timed region, before the commands are sent; may sleep or raise."""

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        """The asyncio clients' ``before``."""

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        """Once per command with its reply (or exception), after its timing ended."""


class _State:
    """Module state read on the hot path; attributes are swapped, never mutated in place."""

    log: list[RawEvent] | None = None
    interceptor: Interceptor | None = None
    client_cache = False  # True once a client-side cache answered a read in this process


state = _State()


class _Chain(Interceptor):
    """Several interceptors at once (e.g. race amplification inside a latency fault)."""

    def __init__(self, members: tuple[Interceptor, ...]) -> None:
        self.members = members

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            member.pause(commands)

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            await member.pause_async(commands)

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            member.before(commands)

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            await member.before_async(commands)

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        __tracebackhide__ = True
        for member in self.members:
            member.after(args, reply)


_interceptors: tuple[Interceptor, ...] = ()


def _publish() -> None:
    state.interceptor = (
        _interceptors[0] if len(_interceptors) == 1 else (_Chain(_interceptors) if _interceptors else None)
    )


@contextlib.contextmanager
def intercepting(interceptor: Interceptor) -> Iterator[Interceptor]:
    """Run ``interceptor`` on every observed command inside the block (faults, amplification)."""
    global _interceptors
    _interceptors = (*_interceptors, interceptor)
    _publish()
    try:
        yield interceptor
    finally:
        _interceptors = tuple(member for member in _interceptors if member is not interceptor)
        _publish()
