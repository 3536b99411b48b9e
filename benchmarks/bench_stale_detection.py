"""Detection power and false alarms of ``cache_consistency.run`` with its default settings.

On the ``fake`` backend, 100 runs each (threads=4, ops=2000, keys=16, read_ratio=0.9):
the cache-aside stale-set race must be found in >= 95 runs, each run <= 10 s, and the
three correct zoo layers must give 0 reports. "Found" means stale reads in the history;
runs that failed only the after-run convergence check (a key still stale after the
workers stopped) are counted apart, since that check sees the race's aftermath, not a
stale read. Baseline in the same run: the same race with ``amplify=False``, to show
what the seeded delays buy. The zoo is the one the tests use (``ZOO`` in
``tests/test_consistency_zoo.py``).

    python benchmarks/bench_stale_detection.py [--runs 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import statistics
import sys
import time
import types
from typing import Any, NamedTuple

from pytest_cachecheck.backends.fake import FakeBackend
from pytest_cachecheck.checks.consistency import CacheConsistency
from pytest_cachecheck.observe import instrument
from pytest_cachecheck.observe.monitor import CacheMonitor

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIN_FOUND = 0.95
MAX_RUN_S = 10.0


def load_zoo() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("zoo_tests", ROOT / "tests" / "test_consistency_zoo.py")
    assert spec is not None and spec.loader is not None
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    zoo = types.ModuleType("zoo")
    exec(compile(tests.ZOO, "zoo.py", "exec"), zoo.__dict__)
    return zoo


class Outcome(NamedTuple):
    """One driver run: did it fail, and was that for stale reads or only for the after-run convergence check."""

    reported: bool
    stale: bool
    convergence_only: bool
    seconds: float


def one_run(backend: FakeBackend, make_layer: Any, zoo: types.ModuleType, amplify: bool, bound_ms: float) -> Outcome:
    client = backend.client()
    with instrument.unobserved():
        client.flushall()
    monitor = CacheMonitor()
    monitor.activate()
    try:
        db = zoo.Database()
        layer = make_layer(client, db)
        started = time.perf_counter()
        report = CacheConsistency(None, client_factory=backend.client).run(
            layer.read, layer.write, amplify=amplify, truth=db.get, max_staleness_ms=bound_ms
        )
        return Outcome(
            reported=not report.ok,
            stale=report.stale_reads > 0,
            convergence_only=report.diverged > 0 and report.violation_count == report.diverged,
            seconds=time.perf_counter() - started,
        )
    finally:
        monitor.deactivate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    zoo = load_zoo()
    instrument.install()
    backend = FakeBackend()
    backend.start()
    cases = [
        ("cache-aside stale-set race", zoo.CacheAside, True, 0, "found"),
        ("  same, amplify=False (baseline)", zoo.CacheAside, False, 0, "baseline"),
        ("versioned compare-and-set", zoo.VersionedCompareAndSet, True, 0, "clean"),
        ("write-through under per-key lock", zoo.WriteThroughLocked, True, 0, "clean"),
        ("TTL-bounded (50 ms, bound 50 ms)", lambda client, db: zoo.TtlBounded(client, db, 50), True, 50, "clean"),
    ]
    header = (
        f"{'layer':<36} {'runs':>5} {'reported':>9} {'stale':>6} {'conv.only':>9} {'mean s':>7} {'max s':>6}  "
        f"{'goal':<26} status"
    )
    print(header)
    print("-" * len(header))
    failed = False
    rates = {}
    for name, make_layer, amplify, bound, goal in cases:
        results = [one_run(backend, make_layer, zoo, amplify, bound) for _ in range(args.runs)]
        reported = sum(result.reported for result in results)
        stale = sum(result.stale for result in results)
        convergence_only = sum(result.convergence_only for result in results)
        times = [result.seconds for result in results]
        rates[goal] = stale / args.runs
        if goal == "found":
            ok = stale >= MIN_FOUND * args.runs and max(times) <= MAX_RUN_S
            goal_text = f"stale >= {MIN_FOUND * args.runs:.0f}, each <= {MAX_RUN_S:.0f} s"
        elif goal == "clean":
            ok = reported == 0
            goal_text = "0 reported"
        else:
            ok, goal_text = True, "(reference)"
        failed |= not ok
        print(
            f"{name:<36} {args.runs:>5} {reported:>9} {stale:>6} {convergence_only:>9} "
            f"{statistics.mean(times):>7.3f} {max(times):>6.3f}  {goal_text:<26} {'ok' if ok else 'FAIL'}"
        )
    baseline = rates["baseline"]
    gain = f"{rates['found'] / baseline:.1f}x" if baseline else "inf (baseline found none)"
    print(f"\nstale reads found with amplification / without: {rates['found']:.0%} / {baseline:.0%} = {gain}")
    print("reported: the run failed; stale: its history had stale reads; conv.only: it failed only the after-run check")
    backend.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
