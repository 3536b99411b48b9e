"""The stale-read checker: a history of reads and writes -> ``ConsistencyReport``. Pure: no Redis.

Definition (Jepsen's): a read is *stale* when it returns a value older than a write that
had been acknowledged (had returned) before the read began. Writes to one key are totally
ordered (the driver serialises them; record mode checks it), so every value has a version
and "older" is a comparison of versions. Reads are free to overlap writes: a read that is
concurrent with a write may return either value, which is not stale.

A value may be written more than once (a counter flipping between a few values, a TTL
design writing the same value again). A read of it is judged against the most lenient
of its writes: fine when some write of the value could have been the latest one during
the read; otherwise measured from the newest write of it that had begun.

Cost: one pass to group writes by key, a sort of each key's writes, then per read a dict
lookup and a precomputed "next acknowledged write" end time (a binary search over the
versions of a value written more than once), so O(n log n) overall and no worse on one
hot key than on many cold ones.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from operator import itemgetter, le
from typing import Any, NamedTuple, TypeVar

from ..observe.aggregate import nearest_rank
from ..observe.patterns import shown_value

READ = "read"
WRITE = "write"

STALE = "stale"
PHANTOM = "phantom"
FUTURE = "future"

EXAMPLES = 5  # violations that get a window of operations for their timeline
_TIMELINE_LINES = 12
_NEVER = math.inf
_T = TypeVar("_T")


class Operation(NamedTuple):
    """One call the test made: a read that returned ``value`` or a write of ``value``.

    ``ok=False`` marks a write that raised: it may or may not have taken effect, so
    reading its value is fine but it never counts as acknowledged. ``process`` names
    who issued it (a driver thread or task) for the timelines.
    """

    key: Any
    kind: str
    value: Any
    start_ns: int
    end_ns: int
    ok: bool = True
    process: str = ""


@dataclass(frozen=True)
class TracedCommand:
    """A Redis command issued inside an operation, shown in counterexample timelines."""

    process: str
    start_ns: int
    end_ns: int
    text: str


@dataclass(frozen=True, slots=True)
class Violation:
    """One bad read as a minimal counterexample: the read, the write it returned, the write it missed.

    Cheap (references to operations), so a report keeps one for every violation. Only
    the first few also get a ``window`` for their timeline: the operations on the key
    from the returned write's start to the read's end (at most a dozen, the three
    essential ones always among them); ``omitted`` counts the others. The timelines of
    the rest show just the essential ones.
    """

    kind: str
    key: str
    read: Operation
    returned: Operation | None
    returned_version: int | None
    newer: Operation | None
    newer_version: int | None
    staleness_ns: int
    window: tuple[Operation, ...] = ()
    omitted: int = 0
    commands: tuple[TracedCommand, ...] = ()

    @property
    def staleness_ms(self) -> float:
        return self.staleness_ns / 1e6

    def headline(self) -> str:
        read = self.read
        if self.kind == STALE and self.newer is not None:
            returned = (
                f"{shown_value(read.value)} (write #{self.returned_version})"
                if self.returned is not None
                else f"{shown_value(read.value)} (the initial value)"
            )
            return (
                f"stale read of key {shown_value(self.key)}: returned {returned}, but write #{self.newer_version} "
                f"({shown_value(self.newer.value)}) was acknowledged {self.staleness_ms:.3f} ms before the read began"
            )
        if self.kind == FUTURE and self.returned is not None:
            return (
                f"future read of key {shown_value(self.key)}: returned {shown_value(read.value)} "
                f"{(self.returned.start_ns - read.end_ns) / 1e6:.3f} ms before write #{self.returned_version} "
                "of that value began"
            )
        return (
            f"phantom read of key {shown_value(self.key)}: returned {shown_value(read.value)}, "
            "a value never written to it"
        )

    def essential(self) -> list[Operation]:
        """The write whose value was read, the newer write it missed, and the read."""
        return [op for op in (self.returned, self.newer, self.read) if op is not None]

    def timeline(self) -> str:
        """The interleaving that produced the violation, times relative to its first event."""
        marks = {id(self.read): f"<- {self.kind.upper()} read"}
        if self.returned is not None:
            marks.setdefault(id(self.returned), "<- the value read")
        if self.newer is not None:
            marks.setdefault(id(self.newer), "<- newer, acknowledged before the read")
        rows: list[tuple[int, int, str, str]] = []
        for op in self.window or self.essential():
            if op.kind == WRITE:
                what = f"write {shown_value(op.key)} = {shown_value(op.value)}" + ("" if op.ok else " (raised)")
            else:
                what = f"read  {shown_value(op.key)} -> {shown_value(op.value)}"
            mark = marks.get(id(op), "")
            rows.append((op.start_ns, op.end_ns, op.process, f"{what}  {mark}".rstrip()))
        for command in self.commands:
            rows.append((command.start_ns, command.end_ns, command.process, f"  redis: {command.text}"))
        rows.sort(key=lambda row: row[0])
        origin = rows[0][0] if rows else 0
        width = max((len(row[2]) for row in rows), default=0)
        lines = ["    start ms    end ms  " + "who".ljust(width) + "  operation"]
        for start, end, process, what in rows:
            lines.append(
                f"    {(start - origin) / 1e6:+8.3f}  {(end - origin) / 1e6:+8.3f}  {process.ljust(width)}  {what}"
            )
        if self.omitted:
            lines.append(f"    (+{self.omitted} other operations on this key in the window not shown)")
        return "\n".join(lines)

    def describe(self) -> str:
        return f"{self.headline()}\n{self.timeline()}"


@dataclass(frozen=True)
class Divergence:
    """After quiescence the cache still served something other than the source of truth.

    ``age_ms`` is how long the key's newest write had been acknowledged when the final
    read began; ``ttl_ms`` maps each Redis key that read touched to its remaining TTL
    (-1: none, -2: already gone), read ``probe_age_ms`` after that write.
    """

    key: str
    served: Any
    truth: Any
    age_ms: float | None
    ttl_ms: dict[str, int]
    probe_age_ms: float | None
    violation: bool

    def beyond(self, bound_ms: float) -> bool:
        """Whether the key stays stale longer than ``bound_ms`` after its last write was acknowledged.

        No TTL, none known, or no acknowledged write: stale until evicted, so always.
        With TTLs the duration is taken from below, so that a slow probe or PTTL's 1 ms
        rounding can make the verdict lenient but never fail a correct TTL design:
        already gone, it lasted at least ``age_ms``; otherwise ``probe_age_ms`` plus the
        longest remaining TTL, less 1 ms.
        """
        ttls = self.ttl_ms.values()
        if self.age_ms is None or not ttls or any(ttl == -1 for ttl in ttls):
            return True
        if all(ttl == -2 for ttl in ttls) or self.probe_age_ms is None:
            return self.age_ms > bound_ms
        return self.probe_age_ms + max(max(ttls) - 1, 0) > bound_ms

    def describe(self) -> str:
        if not self.ttl_ms:
            ttl = "remaining TTL unknown (the read touched no Redis key)"
        elif any(ttl == -1 for ttl in self.ttl_ms.values()):
            ttl = "stale until evicted: no TTL on " + ", ".join(
                shown_value(key) for key, ttl in self.ttl_ms.items() if ttl == -1
            )
        else:
            ttl = "stale until TTL: " + ", ".join(
                f"{shown_value(key)} expires in {ttl} ms" if ttl >= 0 else f"{shown_value(key)} already gone"
                for key, ttl in self.ttl_ms.items()
            )
        age = f" {self.age_ms:.1f} ms after the last write was acknowledged" if self.age_ms is not None else ""
        return (
            f"after quiescence key {shown_value(self.key)} still serves {shown_value(self.served)} instead of "
            f"{shown_value(self.truth)}{age}; {ttl}"
        )


@dataclass(frozen=True)
class ConsistencyReport:
    """What the checker found in one history.

    ``violations`` holds every stale, phantom and future read, earliest first.
    """

    reads: int
    writes: int
    keys: int
    stale_reads: int
    phantom_reads: int
    future_reads: int
    worst_staleness_ms: float
    p99_staleness_ms: float
    max_staleness_ms: float
    violations: tuple[Violation, ...]
    unordered_keys: tuple[str, ...] = ()
    divergences: tuple[Divergence, ...] = ()
    seed: int | None = None
    amplified: bool = False
    windows: int | None = None
    fills: int | None = None
    history: Sequence[Operation] = field(default=(), repr=False, compare=False)
    initial: Any = field(default=None, repr=False, compare=False)

    @property
    def nines(self) -> float:
        """-log10 of the stale fraction: 3.0 means one stale read in a thousand; inf when none."""
        if self.stale_reads == 0 or self.reads == 0:
            return math.inf
        return -math.log10(self.stale_reads / self.reads)

    @property
    def diverged(self) -> int:
        return sum(1 for divergence in self.divergences if divergence.violation)

    @property
    def violation_count(self) -> int:
        """Every read that returned wrong data, plus keys still stale beyond the bound after the run."""
        return self.stale_reads + self.phantom_reads + self.future_reads + self.diverged

    @property
    def ok(self) -> bool:
        return self.violation_count == 0 and not self.unordered_keys

    def rechecked(self, max_staleness_ms: float) -> ConsistencyReport:
        """The same history judged with another staleness bound (a marker's ``max_staleness_ms``)."""
        if max_staleness_ms == self.max_staleness_ms:
            return self
        fresh = check_history(self.history, max_staleness_ms=max_staleness_ms, initial=self.initial)
        divergences = tuple(
            replace(
                divergence,
                violation=divergence.beyond(max_staleness_ms),
            )
            for divergence in self.divergences
        )
        return replace(
            fresh,
            divergences=divergences,
            seed=self.seed,
            amplified=self.amplified,
            windows=self.windows,
            fills=self.fills,
        )

    def summary(self) -> str:
        bound = f"bound {self.max_staleness_ms:g} ms" if self.max_staleness_ms else "no staleness allowed"
        nines = "inf" if math.isinf(self.nines) else f"{self.nines:.2f}"
        text = (
            f"{self.stale_reads} stale, {self.phantom_reads} phantom, {self.future_reads} future reads "
            f"in {self.reads} reads of {self.keys} keys ({self.writes} writes); nines {nines}; "
            f"staleness worst {self.worst_staleness_ms:.3f} ms, p99 {self.p99_staleness_ms:.3f} ms ({bound})"
        )
        if self.windows is not None:
            text += f"; {self.power()}"
        if self.divergences:
            text += (
                f"; after the run {len(self.divergences)} keys served an older value, "
                f"{self.diverged} of them beyond the bound"
            )
        return text

    def power(self) -> str:
        """How often the run exercised the race (driver mode), e.g. ``race windows 12 (of 140 fills after a miss)``."""
        return f"race windows {self.windows} (of {self.fills} fills after a miss)"

    @property
    def powerless(self) -> bool:
        """No stale read, and the dangerous interleaving never happened: the run did not test the race."""
        return self.windows == 0 and self.stale_reads == 0

    def format(self, examples: int = 3) -> str:
        """Summary, order problems, divergences and the first counterexamples, for failure messages."""
        lines = [self.summary()]
        if self.unordered_keys:
            shown = ", ".join(shown_value(key) for key in self.unordered_keys[:5])
            lines.append(
                f"writes to {len(self.unordered_keys)} key(s) overlapped in time ({shown}), so their order is "
                "unknown and those keys were not checked: record one write per key at a time"
            )
        for divergence in [d for d in self.divergences if d.violation][:examples]:
            lines.append(divergence.describe())
        for number, violation in enumerate(self.violations[:examples], 1):
            lines.append(f"counterexample {number}: {violation.describe()}")
        if len(self.violations) > examples:
            lines.append(f"(+{len(self.violations) - examples} more violations in the report's .violations)")
        if self.seed is not None and not self.ok:
            lines.append(f"seed {self.seed}: pass seed={self.seed} to cache_consistency.run() to replay these delays")
        return "\n".join(lines)


def canonical(value: Any) -> Any:
    """Values compare as text, the form Redis stores: ``"v1"`` is read back as ``b"v1"``, ``5`` as ``b"5"``.

    Numbers take the text redis-py sends for them (``repr``), booleans too, so that no
    number is left to equal another type's value (``True == 1``, ``1.0 == 1``).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


_SUSPECT = (_NEVER, -_NEVER)  # a fast-table entry that fails every read: look closer
_start_of = itemgetter(3)
_end_of = itemgetter(4)
_ok_of = itemgetter(5)


def _with_bytes_forms(table: dict[Any, _T]) -> dict[Any, _T]:
    """Add each text value's UTF-8 form, the way a client without ``decode_responses`` reads it back."""
    table.update(
        {value.encode("utf-8", "surrogateescape"): entry for value, entry in table.items() if value.__class__ is str}
    )
    return table


def _next_acknowledged(writes: list[Operation]) -> list[int]:
    """For each version, the first later write that was acknowledged (0: none): what a stale read missed."""
    following = [0] * (len(writes) + 1)
    upcoming = 0
    for version in range(len(writes), 0, -1):
        following[version] = upcoming
        if writes[version - 1][5]:
            upcoming = version
    following[0] = upcoming
    return following


class _Versions(NamedTuple):
    """The versions of one value written more than once, in order, for a binary search by read end."""

    numbers: list[int]
    starts: list[float]
    superseded: list[float]  # end of the first acknowledged write after each of them


class _KeyWrites:
    """One key's writes in order, with what the per-read test needs precomputed."""

    __slots__ = ("writes", "starts", "next_ack", "next_ack_end", "index_of", "repeated", "ordered")

    def __init__(self, writes: list[Operation], initial: Any) -> None:
        writes.sort(key=_start_of)
        self.writes = writes
        self.starts: list[float] = [-_NEVER, *map(_start_of, writes)]
        self.next_ack = _next_acknowledged(writes)
        ends: list[float] = [_NEVER, *map(_end_of, writes)]
        self.next_ack_end = [ends[version] for version in self.next_ack]  # version 0 there means "none": _NEVER
        values = [op[2] for op in writes]
        if not all(value.__class__ is str for value in values):
            values = [canonical(value) for value in values]
        values.insert(0, canonical(initial))
        self.index_of = dict(zip(values, range(len(values))))
        self.repeated = self._group(values) if len(self.index_of) < len(values) else {}
        self.ordered = all(map(le, ends[1:], self.starts[2:]))

    def _group(self, values: list[Any]) -> dict[Any, _Versions]:
        """Values written more than once (the initial value is version 0) -> their versions."""
        numbers: dict[Any, list[int]] = {}
        for version, value in enumerate(values):
            numbers.setdefault(value, []).append(version)
        return {
            value: _Versions(found, [self.starts[v] for v in found], [self.next_ack_end[v] for v in found])
            for value, found in numbers.items()
            if len(found) > 1
        }

    def fast_table(self) -> dict[Any, tuple[float, float]]:
        """Every value in every form it may come back in -> ``(start, superseded)``.

        For a value written once that is its write's start and the next acknowledged
        write's end: a read of the value is fine when it ended after the first and began
        before the second. A value written more than once gets an entry no read passes
        (``_unexplained`` settles it). Writes in unknown order get no entries, so every
        read of the key is looked at closely.
        """
        if not self.ordered:
            return {}
        if not self.repeated:
            return _with_bytes_forms(dict(zip(self.index_of, zip(self.starts, self.next_ack_end))))
        return _with_bytes_forms(
            {
                value: _SUSPECT if value in self.repeated else (self.starts[version], self.next_ack_end[version])
                for value, version in self.index_of.items()
            }
        )

    def repeated_table(self) -> dict[Any, _Versions]:
        """Values written more than once, in every form they may come back in -> their versions."""
        return _with_bytes_forms(dict(self.repeated)) if self.ordered else {}

    def version_for(self, value: Any, read_end: int) -> int:
        """A value written more than once: the newest of its writes that had begun by the read's end.

        That write is the most lenient explanation of the read: any older write of the
        value was superseded no later than it was.
        """
        versions = self.repeated[value]
        begun = bisect_right(versions.starts, read_end)
        return versions.numbers[begun - 1] if begun else versions.numbers[0]

    def write(self, version: int) -> Operation | None:
        return self.writes[version - 1] if version > 0 else None


# What the careful path decides for one read: (kind or None, version, newer version, staleness ns).
_Verdict = tuple[str | None, int, int, int]
_FINE: _Verdict = (None, 0, 0, 0)


def _judge(read: Operation, info: _KeyWrites | None, initial: Any, bound_ns: float) -> _Verdict:
    """The careful path: which version a read returned and whether that was allowed."""
    value = canonical(read.value)
    if info is None:
        return _FINE if value == canonical(initial) else (PHANTOM, 0, 0, 0)
    version = info.index_of.get(value)
    if version is None:
        return (PHANTOM, 0, 0, 0)
    if value in info.repeated:
        version = info.version_for(value, read.end_ns)
    if info.starts[version] > read.end_ns:
        return (FUTURE, version, 0, 0)
    acknowledged = info.next_ack_end[version]
    if acknowledged >= read.start_ns:
        return _FINE
    lag = int(read.start_ns - acknowledged)
    if lag <= bound_ns:
        return (None, version, 0, lag)
    return (STALE, version, info.next_ack[version], lag)


def check_history(
    operations: Iterable[Operation],
    *,
    max_staleness_ms: float = 0.0,
    initial: Any = None,
    examples: int = EXAMPLES,
) -> ConsistencyReport:
    """Find stale, phantom and future reads in a history of operations.

    ``initial`` is every key's value before its first write (``None``: absent).
    ``max_staleness_ms`` tolerates reads of a value superseded by a write acknowledged
    at most that long before the read began (bounded staleness, e.g. a TTL design).
    Every violation is in the report; the first ``examples`` (in start order) also get
    the window of operations their timeline shows.

    Most reads are settled by one dict lookup on ``(key, value)`` and two comparisons
    (a binary search for values written more than once); only suspects (late, early,
    unknown values, or values in another form) take the careful path.
    """
    history = operations if isinstance(operations, (list, tuple)) else list(operations)
    collecting = gc.isenabled()
    gc.disable()  # the lists below hold only existing operations; a full collection would walk them all
    try:
        return _check(history, max_staleness_ms, initial, examples)
    finally:
        if collecting:
            gc.enable()


def _check(history: Sequence[Operation], max_staleness_ms: float, initial: Any, examples: int) -> ConsistencyReport:
    reads = [op for op in history if op[1] == READ]
    writes = [op for op in history if op[1] == WRITE]
    if len(reads) + len(writes) != len(history):
        bad = next(op for op in history if op[1] not in (READ, WRITE))
        raise ValueError(f"operation kind must be {READ!r} or {WRITE!r}, got {bad.kind!r}")
    if not all(map(_ok_of, reads)):
        reads = [op for op in reads if op[5]]  # a read that raised returned nothing to check
    per_key = {key: _KeyWrites(key_writes, initial) for key, key_writes in _by_key(writes).items()}
    suspects = _suspects(reads, per_key)

    bound_ns = max_staleness_ms * 1e6
    counts = {STALE: 0, PHANTOM: 0, FUTURE: 0}
    staleness: list[int] = []
    unchecked = 0
    unwritten_keys: set[Any] = set()
    flagged: list[tuple[Operation, str, int, int]] = []
    for read in suspects:
        written = per_key.get(read.key)
        if written is None:
            unwritten_keys.add(read.key)
        elif not written.ordered:
            unchecked += 1
            continue
        kind, version, newer, lag = _judge(read, written, initial, bound_ns)
        if lag:
            staleness.append(lag)
        if kind is not None:
            counts[kind] += 1
            flagged.append((read, kind, version, newer))

    checked = len(reads) - unchecked - counts[PHANTOM] - counts[FUTURE]
    return ConsistencyReport(
        reads=len(reads),
        writes=len(writes),
        keys=len(per_key) + len(unwritten_keys),
        stale_reads=counts[STALE],
        phantom_reads=counts[PHANTOM],
        future_reads=counts[FUTURE],
        worst_staleness_ms=max(staleness, default=0) / 1e6,
        p99_staleness_ms=_p99_with_zeros(staleness, checked) / 1e6,
        max_staleness_ms=max_staleness_ms,
        violations=_violations(flagged, per_key, history, examples),
        unordered_keys=tuple(sorted(str(key) for key, info in per_key.items() if not info.ordered)),
        history=history,
        initial=initial,
    )


def _by_key(writes: list[Operation]) -> dict[Any, list[Operation]]:
    grouped: dict[Any, list[Operation]] = {}
    for op in writes:
        bucket = grouped.get(op[0])
        if bucket is None:
            grouped[op[0]] = [op]
        else:
            bucket.append(op)
    return grouped


def _suspects(reads: list[Operation], per_key: dict[Any, _KeyWrites]) -> list[Operation]:
    """The reads the fast tests cannot settle, for the careful path.

    The tables hold every value in its text and bytes forms, so one lookup finds almost
    every read; a value read back in another form (a number, say) takes a second lookup
    of its canonical text. Values written more than once are settled by ``_unexplained``.
    """
    windows: dict[tuple[Any, Any], tuple[float, float]] = {}
    repeated: dict[tuple[Any, Any], _Versions] = {}
    for key, key_writes in per_key.items():
        _add_for_key(windows, key, key_writes.fast_table())
        _add_for_key(repeated, key, key_writes.repeated_table())
    get = windows.get
    try:
        suspects = [
            op
            for op in reads
            if (entry := get((op[0], op[2])) or get((op[0], canonical(op[2])))) is None
            or entry[1] < op[3]
            or entry[0] > op[4]
        ]
        return _unexplained(suspects, repeated) if repeated else suspects
    except TypeError:  # an unhashable value read back: judge every read carefully
        return reads


def _add_for_key(table: dict[tuple[Any, Any], _T], key: Any, entries: dict[Any, _T]) -> None:
    table.update(zip(zip(repeat(key), entries), entries.values()))


def _unexplained(reads: list[Operation], repeated: dict[tuple[Any, Any], _Versions]) -> list[Operation]:
    """The reads no write of their value explains, by binary search when the value was written more than once.

    A read of such a value is fine when the newest of its writes that had begun by the
    read's end was not yet superseded (by an acknowledged write) when the read began.
    """
    get = repeated.get
    return [
        op
        for op in reads
        if (versions := get((op[0], op[2])) or get((op[0], canonical(op[2])))) is None
        or (begun := bisect_right(versions.starts, op[4])) == 0
        or versions.superseded[begun - 1] < op[3]
    ]


def _p99_with_zeros(positive: list[int], total: int) -> int:
    """Nearest-rank p99 (``observe.aggregate.percentile``) over ``total`` reads of which only ``positive``
    had any staleness, without a list of the zeros."""
    if total <= 0:
        return 0
    rank = nearest_rank(total, 0.99)
    zeros = total - len(positive)
    if rank <= zeros:
        return 0
    return sorted(positive)[rank - zeros - 1]


def _violations(
    flagged: list[tuple[Operation, str, int, int]],
    per_key: dict[Any, _KeyWrites],
    history: Sequence[Operation],
    examples: int,
) -> tuple[Violation, ...]:
    """Every violation, earliest read first; the first ``examples`` with their window of operations."""
    flagged.sort(key=lambda found: found[0].start_ns)
    violations = [
        _violation(kind, read, version, newer, per_key.get(read.key)) for read, kind, version, newer in flagged
    ]
    shown = violations[:examples]
    spans = [_span(violation, per_key.get(violation.read.key)) for violation in shown]
    nearby = _operations_within(
        [(violation.read.key, begin, end) for violation, (begin, end) in zip(shown, spans)], history
    )
    windowed = [
        _with_window(violation, begin, end, nearby[violation.read.key]) for violation, (begin, end) in zip(shown, spans)
    ]
    return tuple(windowed + violations[examples:])


def _violation(kind: str, read: Operation, version: int, newer: int, info: _KeyWrites | None) -> Violation:
    """The read, the write whose value it returned, and the acknowledged write it missed."""
    returned = info.write(version) if info is not None and kind != PHANTOM else None
    newer_op = info.write(newer) if info is not None and newer else None
    return Violation(
        kind=kind,
        key=str(read.key),
        read=read,
        returned=returned,
        returned_version=version if kind != PHANTOM else None,
        newer=newer_op,
        newer_version=newer or None,
        staleness_ns=int(read.start_ns - newer_op.end_ns) if newer_op is not None else 0,
    )


def _span(violation: Violation, info: _KeyWrites | None) -> tuple[int, int]:
    """The time its timeline covers: from the returned write (or the last acknowledged one) to the read's end."""
    read, returned = violation.read, violation.returned
    if returned is not None:
        return min(returned.start_ns, read.start_ns), max(read.end_ns, returned.end_ns)
    acknowledged = [op for op in (info.writes if info is not None else []) if op.end_ns < read.start_ns]
    return acknowledged[-1].start_ns if acknowledged else read.start_ns, read.end_ns


def _operations_within(spans: list[tuple[Any, int, int]], history: Sequence[Operation]) -> dict[Any, list[Operation]]:
    """Per key, the operations overlapping any of its spans: one pass, keeping only the few in time."""
    bounds: dict[Any, tuple[int, int]] = {}
    for key, begin, end in spans:
        low, high = bounds.get(key, (begin, end))
        bounds[key] = (min(low, begin), max(high, end))
    nearby: dict[Any, list[Operation]] = {key: [] for key in bounds}
    if bounds:
        get = bounds.get
        for op in [op for op in history if (span := get(op[0])) is not None and op[4] >= span[0] and op[3] <= span[1]]:
            nearby[op[0]].append(op)
    return nearby


def _rank(violation: Violation, op: Operation) -> int:
    """Which operations a short timeline keeps first: the likely culprits, then writes, then other reads.

    A culprit is a read that returned the same old value and began before the newer write
    was acknowledged: the one whose late fill put that value back (the stale-set race).
    """
    newer = violation.newer
    if op.kind == READ and newer is not None and op.start_ns < newer.end_ns:
        if canonical(op.value) == canonical(violation.read.value):
            return 0
    return 1 if op.kind == WRITE else 2


def _with_window(violation: Violation, begin: int, end: int, nearby: list[Operation]) -> Violation:
    """Add what else touched the key between ``begin`` and ``end`` (a dozen lines at most)."""
    essential = violation.essential()
    others = [
        op
        for op in nearby
        if op.end_ns >= begin and op.start_ns <= end and all(op is not chosen for chosen in essential)
    ]
    others.sort(key=lambda op: (_rank(violation, op), op.start_ns))
    room = max(0, _TIMELINE_LINES - len(essential))
    return replace(
        violation,
        window=tuple(sorted(essential + others[:room], key=_start_of)),
        omitted=max(0, len(others) - room),
    )
