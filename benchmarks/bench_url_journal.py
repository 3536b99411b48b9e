"""What the url backend's write journal costs per observed command (``backends/journal.py``).

On a real redis-server of its own (free port, loopback), the same observed client sends
blocks of SETs (each a new key: the journal's worst case, one file write per key) and GETs,
alternately with and without the journal intercepting, so both see the same machine drift.
Reported: the median per-command time of each, the ratio and the microseconds added.
Goal: a GET (no write) <= 1.05x; a SET of a new key <= 1.25x (a round trip on loopback is
~30-60 us; the journal adds a dictionary look-up, a set insert and one ``os.write``).

    python benchmarks/bench_url_journal.py [--blocks 40] [--block 500]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_cachecheck.backends.base import free_port, ping  # noqa: E402
from pytest_cachecheck.backends.journal import WriteJournal  # noqa: E402
from pytest_cachecheck.observe import instrument  # noqa: E402

GOALS = {"GET": 1.05, "SET new key": 1.25}


def timed_block(send: Callable[[int], object], count: int, offset: int) -> float:
    """Seconds per command over one block."""
    start = time.perf_counter()
    for index in range(offset, offset + count):
        send(index)
    return (time.perf_counter() - start) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--block", type=int, default=500)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
        try:
            while not ping("127.0.0.1", port):
                time.sleep(0.02)
            return run(port, args.blocks, args.block)
        finally:
            server.terminate()
            server.wait(10)


def run(port: int, blocks: int, block: int) -> int:
    client = redis.Redis(port=port)
    instrument.install()
    instrument.state.log = []
    journal = WriteJournal(f"redis://127.0.0.1:{port}", 0)
    sends: dict[str, Callable[[int], object]] = {
        "GET": lambda index: client.get("absent"),
        "SET new key": lambda index: client.set(f"k:{index}", 1),
    }
    rows = []
    offset = 0
    for name, send in sends.items():
        plain, journaled = [], []
        for round_ in range(blocks):
            for with_journal in (round_ % 2 == 0, round_ % 2 == 1):
                instrument.state.log = []  # a test's log: keep memory flat
                if with_journal:
                    with instrument.intercepting(journal):
                        journaled.append(timed_block(send, block, offset))
                else:
                    plain.append(timed_block(send, block, offset))
                offset += block
        base, cost = statistics.median(plain), statistics.median(journaled)
        rows.append((name, base * 1e6, cost * 1e6, cost / base, (cost - base) * 1e6, GOALS[name]))
    journal.close()
    instrument.state.log = None
    instrument.uninstall()
    print(f"{'command':<12}  {'observed':>10}  {'+journal':>10}  {'ratio':>6}  {'added':>8}  goal")
    print(f"{'-' * 12}  {'-' * 10}  {'-' * 10}  {'-' * 6}  {'-' * 8}  ----")
    failed = False
    for name, base, cost, ratio, added, goal in rows:
        met = ratio <= goal
        failed |= not met
        verdict = "met" if met else "MISSED"
        print(f"{name:<12}  {base:>8.1f}us  {cost:>8.1f}us  {ratio:>5.2f}x  {added:>6.2f}us  <= {goal:.2f}x {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
