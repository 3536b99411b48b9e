"""What ``cache_stampede`` costs when a test ends: cold bursts over a test's events, against ``cache_hit_rate``.

The marker is evaluated lazily, once per test that carries it: one pass over the test's events,
then a sort of each key's commands. The baseline, measured in the same run on the same events, is
``compute_stats`` (what ``cache_hit_rate`` runs). Goal: the burst evaluation stays within 3x of it,
so a marked test's evaluation costs about what a hit-rate check does (no command pays anything).

The events are a read-through cache's: ``keys`` keys read in random order, each miss followed by a
fill, every 50th fill inside a pipeline with an ``EXPIRE``, every 100th key deleted again.

    python benchmarks/bench_stampede_evaluation.py [--events 200000] [--keys 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from pytest_cachecheck.observe.aggregate import compute_stats
from pytest_cachecheck.observe.bursts import find_bursts
from pytest_cachecheck.observe.events import Event

GOAL_RATIO = 3.0


def read_through_events(count: int, keys: int, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    cached: set[int] = set()
    events: list[Event] = []
    clock = 0
    pipeline = 0
    while len(events) < count:
        clock += rng.randint(1_000, 50_000)
        number = rng.randrange(keys)
        key = f"user:{number}:profile"
        if number in cached:
            events.append(Event(clock, 20_000, "GET", (key,), ("hit",), 0))
            if rng.random() < 0.01:
                events.append(Event(clock + 30_000, 20_000, "DEL", (key,), ("delete",), 0))
                cached.discard(number)
            continue
        events.append(Event(clock, 20_000, "GET", (key,), ("miss",), 0))
        if rng.random() < 0.02:
            pipeline += 1
            events.append(Event(clock + 60_000, 10_000, "SET", (key,), ("write",), pipeline))
            events.append(Event(clock + 60_000, 10_000, "EXPIRE", (key,), ("write",), pipeline))
        else:
            events.append(Event(clock + 60_000, 20_000, "SET", (key,), ("write",), 0))
        cached.add(number)
    return events[:count]


def best_of(repeats: int, function: object, events: list[Event]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(events)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    events = read_through_events(args.events, args.keys)
    bursts = find_bursts(events)
    assert bursts and max(burst.fills for burst in bursts) == 1  # a sequential read-through never stampedes
    baseline = best_of(args.repeats, compute_stats, events)
    measured = best_of(args.repeats, find_bursts, events)
    ratio = measured / baseline
    per_event_us = measured / len(events) * 1e6
    print(f"{len(events):,} events, {args.keys:,} keys, {len(bursts):,} cold bursts; best of {args.repeats}")
    print(f"{'evaluation':<32} {'seconds':>9} {'us/event':>9} {'ratio':>7}")
    print(f"{'compute_stats (cache_hit_rate)':<32} {baseline:>9.3f} {baseline / len(events) * 1e6:>9.3f} {1:>7.2f}")
    print(f"{'find_bursts (cache_stampede)':<32} {measured:>9.3f} {per_event_us:>9.3f} {ratio:>7.2f}")
    verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
    print(f"goal: find_bursts <= {GOAL_RATIO:g}x compute_stats: {verdict} ({ratio:.2f}x)")
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
