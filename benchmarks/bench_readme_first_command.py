"""The README's first command, run as a new user runs it: how often is it green, quiet and busy?

Runs ``python -m pytest examples -p no:cacheprovider --cache-targets examples/targets.toml``
(timing enforced: no ``--cache-timing`` option) N times on a quiet machine and N times while a
busy-loop process holds one core, counts green runs (exit code 0) and prints, per condition, the
runs, the green runs and the median wall time, then the first failing lines of every red run.
Goals (issue 12): >= 49/50 green with one core busy, 20/20 quiet. Each run starts its own
redis-server, so a run costs ~20-40 s; N is an option.

    python benchmarks/bench_readme_first_command.py [--busy-runs 50] [--quiet-runs 20] [--red-log red.txt]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["-m", "pytest", "examples", "-p", "no:cacheprovider", "--cache-targets", "examples/targets.toml"]
GOALS = {"busy": 49 / 50, "quiet": 1.0}
FAILURE_MARKERS = ("FAILED", "ERROR", "vs <=", "vs >=", "missed", "failed:", "Failed:", "E   ")
RED_LOG: list[Path] = []  # --red-log: where each red run's whole output is appended


def busy_loop() -> None:
    while True:
        pass


@dataclass
class Condition:
    name: str
    runs: int = 0
    green: int = 0
    seconds: list[float] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)


def run_once(condition: Condition) -> None:
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *COMMAND], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    condition.seconds.append(time.perf_counter() - started)
    condition.runs += 1
    if completed.returncode == 0:
        condition.green += 1
        return
    lines = [line.strip() for line in completed.stdout.splitlines() if any(m in line for m in FAILURE_MARKERS)]
    condition.failures.append([f"exit {completed.returncode}", *(line[:400] for line in lines[:8])])
    for log in RED_LOG:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"\n===== {condition.name} red run, exit {completed.returncode} =====\n{completed.stdout}\n")
    progress("red run: " + " | ".join(condition.failures[-1]))  # streamed too: a long run may be cut short


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy-runs", type=int, default=50)
    parser.add_argument("--quiet-runs", type=int, default=20)
    parser.add_argument("--red-log", type=Path, help="append each red run's whole output to this file")
    options = parser.parse_args()
    RED_LOG.extend([options.red_log] if options.red_log else [])
    conditions = {"busy": Condition("busy (1 core spinning)"), "quiet": Condition("quiet")}
    load = multiprocessing.Process(target=busy_loop, daemon=True)
    load.start()
    try:
        for number in range(options.busy_runs):
            run_once(conditions["busy"])
            progress(f"busy run {number + 1}: {conditions['busy'].green} green")
    finally:
        load.terminate()
        load.join()
    for number in range(options.quiet_runs):
        run_once(conditions["quiet"])
        progress(f"quiet run {number + 1}: {conditions['quiet'].green} green")

    print(f"command: python {' '.join(COMMAND)}  (cwd {ROOT.name}; load average before end: {os.getloadavg()[0]:.2f})")
    print()
    header = ("condition", "runs", "green", "median wall s", "goal")
    table = [header]
    ok = True
    for key, condition in conditions.items():
        if not condition.runs:
            continue
        met = condition.green >= GOALS[key] * condition.runs
        ok &= met
        median = f"{statistics.median(condition.seconds):.1f}"
        goal = f">= {GOALS[key]:.0%} green: {'met' if met else 'MISSED'}"
        table.append((condition.name, str(condition.runs), str(condition.green), median, goal))
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    for number, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))
    for condition in conditions.values():
        for failure in condition.failures:
            print(f"\n{condition.name} red run:")
            for line in failure:
                print(f"  {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
