"""The stale-read checker on hand-written histories, and on histories of a linearizable register."""

from __future__ import annotations

import bisect
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_cachecheck.checks.history import (
    EXAMPLES,
    FUTURE,
    PHANTOM,
    READ,
    STALE,
    WRITE,
    Divergence,
    Operation,
    check_history,
)

MS = 1_000_000


def write(key: str, value: object, start: int, end: int, ok: bool = True) -> Operation:
    return Operation(key, WRITE, value, start * MS, end * MS, ok, "writer")


def read(key: str, value: object, start: int, end: int) -> Operation:
    return Operation(key, READ, value, start * MS, end * MS, True, "reader")


def test_read_after_acknowledged_write_of_old_value_is_stale() -> None:
    history = [write("k", "v1", 0, 1), write("k", "v2", 2, 3), read("k", "v1", 5, 6)]
    report = check_history(history)
    assert (report.reads, report.stale_reads, report.phantom_reads, report.future_reads) == (1, 1, 0, 0)
    assert report.worst_staleness_ms == pytest.approx(2.0)  # v2 acknowledged at 3 ms, read began at 5 ms
    assert report.nines == 0.0
    (violation,) = report.violations
    assert violation.kind == STALE
    assert (violation.returned, violation.newer, violation.read) == tuple(history)
    assert "write #2 ('v2') was acknowledged 2.000 ms before the read began" in violation.headline()
    assert "<- STALE read" in violation.timeline()
    assert "<- newer, acknowledged before the read" in violation.timeline()


def test_concurrent_reads_overlapping_a_write_may_return_either_value() -> None:
    history = [
        write("k", "v1", 0, 1),
        write("k", "v2", 10, 20),
        read("k", "v1", 12, 14),  # overlaps the write: old value allowed
        read("k", "v2", 12, 14),  # overlaps the write: new value allowed
        read("k", "v1", 5, 20),  # began before the write ended
        read("k", "v2", 19, 25),
        read("k", "v2", 21, 22),
    ]
    report = check_history(history)
    assert report.ok
    assert (report.reads, report.stale_reads, report.worst_staleness_ms) == (5, 0, 0.0)
    assert math.isinf(report.nines)


def test_read_that_begins_exactly_when_the_write_ends_is_not_stale() -> None:
    """Jepsen: the newer write must be acknowledged *before* the read began."""
    assert check_history([write("k", "a", 0, 1), write("k", "b", 2, 3), read("k", "a", 3, 4)]).ok


def test_phantom_and_future_reads() -> None:
    history = [
        write("k", "v1", 0, 1),
        read("k", "never-written", 2, 3),
        read("k", "v2", 4, 5),  # ended before the write of v2 began
        write("k", "v2", 6, 7),
        read("other", "v1", 8, 9),  # another key's value: phantom for this key
    ]
    report = check_history(history)
    assert (report.phantom_reads, report.future_reads, report.stale_reads) == (2, 1, 0)
    kinds = [violation.kind for violation in report.violations]
    assert kinds == [PHANTOM, FUTURE, PHANTOM]  # earliest first
    assert "a value never written to it" in report.violations[0].headline()
    assert report.keys == 2


def test_initial_value_is_fresh_until_the_first_write_is_acknowledged() -> None:
    history = [read("k", None, 0, 1), write("k", "v1", 2, 3), read("k", None, 2, 4), read("k", None, 5, 6)]
    report = check_history(history)
    assert report.stale_reads == 1
    assert "(the initial value)" in report.violations[0].headline()
    assert check_history(history, initial="seed").phantom_reads == 3


def test_bytes_read_back_match_text_written() -> None:
    history = [write("k", "v1", 0, 1), write("k", "v2", 2, 3), read("k", b"v2", 4, 5), read("k", b"v1", 4, 5)]
    report = check_history(history)
    assert (report.stale_reads, report.phantom_reads) == (1, 0)


def test_numbers_written_compare_as_the_text_read_back() -> None:
    """Record mode writes ``5``; Redis gives back ``b"5"``: the same value, on the fast and the careful path."""
    history = [write("k", 5, 0, 1), write("k", 6, 2, 3), read("k", b"5", 10, 11)]  # 7 ms after 6 was acknowledged
    bounded = check_history(history, max_staleness_ms=20)
    assert bounded.ok, bounded.format()
    assert (bounded.stale_reads, bounded.phantom_reads, bounded.worst_staleness_ms) == (0, 0, pytest.approx(7.0))
    strict = check_history(history)
    assert (strict.stale_reads, strict.phantom_reads) == (1, 0)
    assert "returned '5' (write #1), but write #2 (6)" in strict.violations[0].headline()
    for form in (6, "6", b"6", bytearray(b"6")):  # an unhashable bytearray sends every read the careful way
        assert check_history([*history[:2], read("k", form, 12, 13)]).ok
    assert check_history([write("k", 1.5, 0, 1), read("k", b"1.5", 2, 3), read("k", 1.5, 2, 3)]).ok


def test_numbers_do_not_equal_other_types_values() -> None:
    """``1.0 == 1 == True`` in Python, not in Redis: each is its own text, on both paths."""
    history = [write("k", 1, 0, 1), read("k", 1.0, 2, 3), read("k", True, 2, 3), read("k", b"1", 2, 3)]
    assert check_history(history).phantom_reads == 2
    assert check_history([write("k", True, 0, 1), read("k", b"True", 2, 3), read("k", 1, 2, 3)]).phantom_reads == 1


def test_bounded_staleness_tolerates_recent_writes_only() -> None:
    history = [
        write("k", "v1", 0, 1),
        write("k", "v2", 10, 11),
        read("k", "v1", 30, 31),  # 19 ms stale
        read("k", "v1", 60, 61),  # 49 ms stale
    ]
    strict = check_history(history)
    assert strict.stale_reads == 2
    bounded = check_history(history, max_staleness_ms=20)
    assert bounded.stale_reads == 1
    assert bounded.violations[0].read == history[3]
    assert bounded.worst_staleness_ms == pytest.approx(49.0)
    assert strict.rechecked(50).ok


def test_failed_write_may_be_read_but_never_counts_as_acknowledged() -> None:
    history = [
        write("k", "v1", 0, 1),
        write("k", "v2", 2, 3, ok=False),
        read("k", "v1", 5, 6),  # v2 may never have happened
        read("k", "v2", 5, 6),  # or it did
        write("k", "v3", 7, 8),
        read("k", "v2", 9, 10),  # v3 was acknowledged: stale
    ]
    report = check_history(history)
    assert (report.stale_reads, report.phantom_reads) == (1, 0)
    assert report.violations[0].newer == history[4]


def test_overlapping_writes_to_a_key_are_reported_and_that_key_is_not_judged() -> None:
    history = [
        write("k", "a", 0, 10),
        write("k", "b", 5, 15),
        read("k", "a", 20, 21),
        write("j", "x", 0, 1),
        write("j", "y", 2, 3),
        read("j", "x", 4, 5),
    ]
    report = check_history(history)
    assert report.unordered_keys == ("k",)
    assert report.stale_reads == 1  # only key j
    assert not report.ok
    assert "overlapped in time ('k')" in report.format()


def test_repeated_values_resolve_to_the_newest_write_that_had_begun() -> None:
    history = [
        write("k", "on", 0, 1),
        write("k", "off", 2, 3),
        write("k", "on", 4, 5),
        read("k", "on", 6, 7),  # the second "on": fresh
        read("k", "off", 6, 7),  # superseded by the second "on": stale
    ]
    report = check_history(history)
    assert report.stale_reads == 1
    assert report.violations[0].read.value == "off"


def test_a_repeated_value_is_fine_when_any_write_of_it_explains_the_read() -> None:
    history = [
        write("k", "on", 0, 1),
        write("k", "off", 2, 3),
        write("k", "on", 10, 20),
        read("k", "on", 5, 12),  # began after "off" was acknowledged, but overlaps the second "on"
        read("k", "on", 1, 2),  # the first "on", before "off" was acknowledged
        write("k", "on", 21, 22),  # a TTL design writing the same value again
        read("k", "on", 30, 31),
        read("k", "off", 11, 12),  # the second "on" had not been acknowledged yet
    ]
    assert check_history(history).ok


def test_a_repeated_value_is_stale_from_its_newest_write_that_had_begun() -> None:
    history = [
        write("k", "on", 0, 1),
        write("k", "off", 2, 3),
        read("k", "on", 5, 6),  # the second "on" has not begun
        write("k", "on", 10, 20),
        write("k", "off", 21, 22),
        read("k", "on", 30, 31),  # the second "on" was superseded at 22 ms
    ]
    report = check_history(history)
    assert report.stale_reads == 2
    first, second = report.violations
    assert (first.returned, first.newer, first.staleness_ms) == (history[0], history[1], pytest.approx(2.0))
    assert (second.returned, second.newer, second.staleness_ms) == (history[3], history[4], pytest.approx(8.0))
    assert "returned 'on' (write #3), but write #4 ('off') was acknowledged 8.000 ms" in second.headline()


def test_a_repeated_value_read_before_any_write_of_it_began_is_future() -> None:
    history = [read("k", "x", 0, 1), write("k", "x", 2, 3), write("k", "y", 4, 5), write("k", "x", 6, 7)]
    (violation,) = check_history(history).violations
    assert (violation.kind, violation.returned, violation.returned_version) == (FUTURE, history[1], 1)


def test_repeated_values_in_bytes_and_number_forms() -> None:
    history = [write("k", 1, 0, 1), write("k", 2, 2, 3), write("k", 1, 4, 5)]
    history += [read("k", b"1", 6, 7), read("k", "1", 6, 7), read("k", 1, 6, 7), read("k", b"2", 8, 9)]
    report = check_history(history)
    assert (report.reads, report.stale_reads, report.phantom_reads) == (4, 1, 0)
    assert report.violations[0].read.value == b"2"


def test_every_violation_is_kept_and_the_first_ones_get_a_window() -> None:
    history = [write("k", "v1", 0, 1), write("k", "v2", 2, 3), write("other", "x", 0, 1)]
    history += [read("k", "v1", 10 + step, 11 + step) for step in reversed(range(EXAMPLES + 3))]
    history += [read("other", "y", 5, 6)]
    report = check_history(history)
    assert (report.stale_reads, report.phantom_reads, len(report.violations)) == (EXAMPLES + 3, 1, EXAMPLES + 4)
    starts = [violation.read.start_ns for violation in report.violations]
    assert starts == sorted(starts)  # earliest first
    assert [bool(violation.window) for violation in report.violations] == [True] * EXAMPLES + [False] * 4
    last = report.violations[-1]
    assert (last.key, last.read.value, last.newer.value, last.staleness_ms) == ("k", "v1", "v2", pytest.approx(14.0))
    assert "<- STALE read" in last.describe() and "<- newer, acknowledged before the read" in last.describe()
    assert "(+6 more violations in the report's .violations)" in report.format(examples=3)


def test_counterexample_window_lists_the_interleaving_on_that_key_only() -> None:
    history = [write("k", "v1", 0, 1), write("other", "x", 0, 9), read("k", "v1", 3, 4), write("k", "v2", 4, 5)]
    history += [read("k", "v2", 6, 7), read("k", "v1", 8, 9)]
    (violation,) = check_history(history).violations
    assert all(op.key == "k" for op in violation.window)
    assert history[2] in violation.window and history[4] in violation.window
    assert violation.window == tuple(sorted(violation.window, key=lambda op: op.start_ns))


def test_unknown_operation_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="operation kind must be 'read' or 'write', got 'delete'"):
        check_history([Operation("k", "delete", None, 0, 1)])


def test_p99_counts_fresh_reads_as_zero_staleness() -> None:
    history = [write("k", "v1", 0, 1), write("k", "v2", 2, 3)]
    history += [read("k", "v2", 10 + index, 11 + index) for index in range(99)]
    history += [read("k", "v1", 200, 201)]
    report = check_history(history)
    assert report.p99_staleness_ms == 0.0
    assert report.worst_staleness_ms == pytest.approx(197.0)


def divergence(ttl_ms: dict[str, int], age_ms: float | None = 5.0, probe_age_ms: float | None = 6.0) -> Divergence:
    return Divergence("k", b"old", "new", age_ms, ttl_ms, probe_age_ms, violation=True)


def test_divergence_without_a_ttl_is_stale_until_evicted_whatever_the_bound() -> None:
    assert divergence({"cache:k": -1}).beyond(1e9)
    assert divergence({"cache:k": 100, "cache:k:meta": -1}).beyond(1e9)
    assert divergence({}).beyond(1e9)  # no Redis key touched (or no monitor): unknown, so unbounded
    assert divergence({"cache:k": 100}, age_ms=None, probe_age_ms=None).beyond(1e9)  # no acknowledged write
    assert "stale until evicted: no TTL on 'cache:k'" in divergence({"cache:k": -1}).describe()


def test_divergence_lasts_from_the_last_write_until_the_remaining_ttl_runs_out() -> None:
    """Probed 6 ms after the write with 100 ms left: stale for at least 6 + 100 - 1 ms (PTTL rounds)."""
    stale = divergence({"cache:k": 100})
    assert stale.beyond(104) and not stale.beyond(105)
    assert not stale.beyond(1000)
    assert divergence({"cache:k": 100, "cache:k:meta": 3}).beyond(104)  # the longest TTL of the keys read
    assert "still serves 'old' instead of 'new' 5.0 ms after the last write" in stale.describe()
    assert "stale until TTL: 'cache:k' expires in 100 ms" in stale.describe()


def test_divergence_already_expired_lasted_at_least_its_age() -> None:
    gone = divergence({"cache:k": -2}, age_ms=30.0, probe_age_ms=31.0)
    assert gone.beyond(29.9) and not gone.beyond(30)
    assert "'cache:k' already gone" in gone.describe()


def test_recheck_judges_divergences_with_the_new_bound() -> None:
    history = [write("k", "v1", 0, 1), read("k", "v1", 2, 3)]
    report = replace(check_history(history), divergences=(divergence({"cache:k": 100}),))
    assert not report.ok and report.diverged == 1
    assert "after the run 1 keys served an older value, 1 of them beyond the bound" in report.summary()
    relaxed = report.rechecked(200)
    assert relaxed.ok and relaxed.divergences[0].violation is False
    assert not relaxed.rechecked(50).ok


# ---------------------------------------------------------------- property: linearizable histories pass


@st.composite
def linearizable_histories(draw: st.DrawFn, repeated_values: bool = False) -> list[Operation]:
    """Operations on a few registers, each taking effect at one instant inside its interval.

    Writes to one key never overlap (as the driver guarantees); reads overlap anything and
    return the value of the last write whose instant precedes theirs. With
    ``repeated_values`` every write is one of three numbers, and reads return it as Redis
    would (as bytes) or as written.
    """
    keys = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True))
    count = draw(st.integers(min_value=1, max_value=60))
    writes_at: dict[str, list[tuple[int, object]]] = {key: [] for key in keys}
    busy_until = dict.fromkeys(keys, -1)
    planned: list[tuple[str, str, int, int, int]] = []
    clock = 0
    for number in range(count):
        clock += draw(st.integers(min_value=0, max_value=5))
        key = draw(st.sampled_from(keys))
        length = draw(st.integers(min_value=0, max_value=12))
        start, end = clock, clock + length
        instant = draw(st.integers(min_value=start, max_value=end))
        if draw(st.booleans()) and start > busy_until[key]:
            busy_until[key] = end
            writes_at[key].append((instant, draw(st.integers(0, 2)) if repeated_values else f"{key}{number}"))
            planned.append((key, WRITE, start, end, instant))
        else:
            planned.append((key, READ, start, end, instant))
    history = []
    for key, kind, start, end, instant in planned:
        if kind == WRITE:
            value = next(value for at, value in writes_at[key] if at == instant)
        else:
            position = bisect.bisect_right([at for at, _ in writes_at[key]], instant)
            value = writes_at[key][position - 1][1] if position else None
            if repeated_values and value is not None and draw(st.booleans()):
                value = str(value).encode()
        history.append(Operation(key, kind, value, start, end))
    return history


@settings(max_examples=150, deadline=None)
@given(linearizable_histories())
def test_linearizable_register_histories_have_no_violations(history: list[Operation]) -> None:
    report = check_history(history)
    assert report.ok, report.format()
    assert report.reads == sum(1 for op in history if op.kind == READ)


@settings(max_examples=150, deadline=None)
@given(linearizable_histories(repeated_values=True))
def test_linearizable_histories_with_repeated_values_have_no_violations(history: list[Operation]) -> None:
    report = check_history(history)
    assert report.ok, report.format()
    assert report.reads == sum(1 for op in history if op.kind == READ)


@settings(max_examples=100, deadline=None)
@given(linearizable_histories(), st.data())
def test_reading_a_value_older_than_an_acknowledged_write_is_always_found(
    history: list[Operation], data: st.DataObject
) -> None:
    writes = [op for op in history if op.kind == WRITE]
    by_key: dict[str, list[Operation]] = {}
    for op in writes:
        by_key.setdefault(op.key, []).append(op)
    candidates = [(key, ops) for key, ops in by_key.items() if len(ops) >= 2]
    if not candidates:
        return
    key, ops = data.draw(st.sampled_from(candidates))
    old = data.draw(st.sampled_from(ops[:-1]))
    newest_end = ops[-1].end_ns
    late = Operation(key, READ, old.value, newest_end + 1, newest_end + 2)
    report = check_history([*history, late])
    assert report.stale_reads >= 1
    assert any(violation.read == late for violation in report.violations) or len(report.violations) == 5
