"""Record mode: intervals around the test's own reads and writes (threads or tasks), checked later."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from time import perf_counter_ns
from typing import Any

from ..history import READ, WRITE, Operation

_UNSET: Any = object()


class ReadRecord:
    """Record mode: set ``.value`` to what the read returned, inside the ``with`` block."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.value = _UNSET


def who() -> str:
    """The task's name inside a running task, else the thread's: the timelines' "who" column."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task.get_name() if task is not None else threading.current_thread().name


class Recorder:
    """The operations recorded so far; ``list.append`` keeps it thread- and task-safe."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    @contextlib.contextmanager
    def write(self, key: Any, value: Any) -> Iterator[None]:
        """Record the write of ``value`` to ``key`` that the block performs (its interval)."""
        start = perf_counter_ns()
        try:
            yield
        except BaseException:
            self.operations.append(Operation(key, WRITE, value, start, perf_counter_ns(), False, who()))
            raise
        self.operations.append(Operation(key, WRITE, value, start, perf_counter_ns(), True, who()))

    @contextlib.contextmanager
    def read(self, key: Any) -> Iterator[ReadRecord]:
        """Record the read the block performs; set ``.value`` on the yielded record to its result."""
        record = ReadRecord(key)
        start = perf_counter_ns()
        yield record
        end = perf_counter_ns()
        if record.value is _UNSET:
            raise ValueError(
                f"cache_consistency.read({key!r}): set .value on the record to what the read returned "
                "(with cache_consistency.read(key) as r: r.value = my_read(key))"
            )
        self.operations.append(Operation(key, READ, record.value, start, end, True, who()))
