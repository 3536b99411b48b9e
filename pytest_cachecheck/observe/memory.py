"""Memory of a test's keys when its body ended: ``MEMORY USAGE`` per key, for ``memory_kb``.

Read once per test, after the body and before the clean-up, only when something judges or
shows it (a ``cache_size(memory_kb=...)`` marker, a target, a report file). Which keys:

* backends the plugin owns (``fake``, ``server``, ``docker``, ``cluster``): every key in the
  database then (``SCAN``; the database was empty when the test started, so all are the test's,
  also keys made inside scripts);
* ``url``: only the keys the test wrote (a shared server's other keys are neither scanned nor read);

less keys written only inside ``warmup()`` (set-up data, as for every assertion). On real servers
the bytes are the server's own ``MEMORY USAGE key SAMPLES 0`` (whole value, allocator overhead
included); on ``fake`` the plugin's fake server answers an estimate, key plus value payload bytes
(``observe.fake_server``), and ``estimated`` says so wherever the number is shown. One pipelined
round trip per 1000 keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .commands import key_text, sent_key_bytes
from .instrument import unobserved
from .patterns import MATCH_ALL, matcher

_BATCH = 1000
MEASURED = "MEMORY USAGE"
ESTIMATED = "estimate: key + value bytes (fake backend)"


@dataclass(frozen=True)
class MemoryAtEnd:
    """Bytes per key (display text) at the end of a test's body, and whether they are the fake's estimate."""

    bytes_by_key: dict[str, int]
    estimated: bool

    @property
    def source(self) -> str:
        """Where the numbers come from, for messages and reports."""
        return ESTIMATED if self.estimated else MEASURED

    def of(self, pattern: str = MATCH_ALL) -> tuple[int, int]:
        """``(bytes, keys)`` of the keys matching ``pattern``."""
        match = matcher(pattern)
        sizes = [size for key, size in self.bytes_by_key.items() if pattern == MATCH_ALL or match(key)]
        return sum(sizes), len(sizes)

    def largest(self, pattern: str = MATCH_ALL, count: int = 3) -> list[tuple[str, int]]:
        """The biggest matching keys, for a failure's top contributors."""
        match = matcher(pattern)
        found = [(key, size) for key, size in self.bytes_by_key.items() if pattern == MATCH_ALL or match(key)]
        return sorted(found, key=lambda item: (-item[1], item[0]))[:count]


def read_memory(client: Any, keys: Iterable[str] | None, *, estimated: bool, leave_out: set[str]) -> MemoryAtEnd | None:
    """``MEMORY USAGE`` of ``keys`` (``commands.sent_key_text`` form) or, with None, of every key
    in the database (``SCAN``), less ``leave_out`` (display text); None when the server refused."""
    try:
        with unobserved():
            if keys is None:
                wire = list(dict.fromkeys(client.scan_iter(count=_BATCH)))
            else:
                wire = [sent_key_bytes(key) for key in keys]
            wire = [key for key in wire if key_text(key) not in leave_out]
            found: dict[str, int] = {}
            for index in range(0, len(wire), _BATCH):
                chunk = wire[index : index + _BATCH]
                pipe = client.pipeline(transaction=False)
                for key in chunk:
                    pipe.memory_usage(key, samples=0)
                for key, size in zip(chunk, pipe.execute()):
                    if size is not None:  # deleted or expired
                        found[key_text(key)] = int(size)
            return MemoryAtEnd(found, estimated)
    except Exception:  # a refused MEMORY (ACLs, a proxy): the check says it could not read memory
        return None
