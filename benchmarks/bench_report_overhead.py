"""What run-wide targets and reports cost on a large run.

2,000 tests, each issuing 100 commands on the fake backend, run as
``pytest --cache-targets --cache-report r.json --cache-report r.html`` and as
``pytest --cache-no-monitor`` (no observation, no report). Runs alternate, the
median of each is compared in the same machine and moment, as a ratio.

Goals: added wall time <= 10 % and report writing <= 1 s. The CPU time of the
pytest processes (user + system) is shown too: on a shared machine it varies far
less than wall time, so it tells the plugin's cost from other jobs' load.

    python benchmarks/bench_report_overhead.py [--tests 2000] [--commands 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGETS = """
[[tool.cachecheck.target]]
name = "users"
pattern = "user:*"
hit_rate = 0.4
p99_ms = 50
keys_without_ttl = 0

[[tool.cachecheck.target]]
name = "everything"
hit_rate = 0.4
"""

TESTS = """
import pytest

@pytest.mark.parametrize("n", range({tests}))
def test_workload(cache_redis, n):
    for i in range({commands} // 2):
        key = f"user:{{n}}:{{i % 20}}"
        if cache_redis.get(key) is None:
            cache_redis.set(key, "profile", ex=60)
        else:
            cache_redis.expire(key, 60)
"""

OBSERVED = ("--cache-targets", "--cache-report", "r.json", "--cache-report", "r.html")
BASELINE = ("--cache-no-monitor",)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(project: Path, options: tuple[str, ...]) -> tuple[float, float, float | None]:
    """Wall time and CPU time of one pytest run, and the report-writing time it printed."""
    env = {name: value for name, value in os.environ.items() if name != "GITHUB_STEP_SUMMARY"}
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *options],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - started
    cpu = _children_cpu_seconds() - cpu_before
    if result.returncode != 0:
        raise SystemExit(f"pytest {' '.join(options)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    written = re.search(r"cache report written in ([0-9.]+) s", result.stdout)
    return elapsed, cpu, float(written.group(1)) if written else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cachecheck-bench-") as folder:
        project = Path(folder)
        (project / "pyproject.toml").write_text(TARGETS, encoding="utf-8")
        (project / "test_workload.py").write_text(
            textwrap.dedent(TESTS.format(tests=args.tests, commands=args.commands)), encoding="utf-8"
        )
        run_once(project, BASELINE)  # warm the file-system and import caches
        baseline, observed, baseline_cpu, observed_cpu, writes = [], [], [], [], []
        for _ in range(args.repeat):
            elapsed, cpu, _ = run_once(project, BASELINE)
            baseline.append(elapsed)
            baseline_cpu.append(cpu)
            elapsed, cpu, write = run_once(project, OBSERVED)
            observed.append(elapsed)
            observed_cpu.append(cpu)
            writes.append(write or 0.0)
        report_size = sum((project / name).stat().st_size for name in ("r.json", "r.html"))
    base, full, write = statistics.median(baseline), statistics.median(observed), max(writes)
    ratio = full / base
    cpu_ratio = statistics.median(observed_cpu) / statistics.median(baseline_cpu)
    print(f"{args.tests} tests x {args.commands} commands, fake backend, median of {args.repeat} alternating runs")
    print()
    print(f"{'run':<46} {'wall s':>8} {'cpu s':>8}  wall runs (s)")
    for label, median, cpu_runs, runs in (
        ("--cache-no-monitor (baseline)", base, baseline_cpu, baseline),
        ("--cache-targets --cache-report r.json r.html", full, observed_cpu, observed),
    ):
        runs_text = " ".join(f"{value:.2f}" for value in runs)
        print(f"{label:<46} {median:>8.2f} {statistics.median(cpu_runs):>8.2f}  {runs_text}")
    print()
    print(f"{'measure':<40} {'value':>10} {'goal':>10} {'status':>8}")
    for label, value, goal in (
        ("added wall time (ratio to baseline)", ratio, 1.10),
        ("report writing, slowest run (s)", write, 1.0),
    ):
        print(f"{label:<40} {value:>10.3f} {f'<= {goal:.3f}':>10} {'ok' if value <= goal else 'MISSED':>8}")
    print(f"{'added CPU time (ratio, for comparison)':<40} {cpu_ratio:>10.3f}")
    print(f"{'report files (JSON + HTML, KiB)':<40} {report_size / 1024:>10.0f}")
    return 0 if ratio <= 1.10 and write <= 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
