"""Per-test isolation cost: ``cache_redis`` (server backend) vs pytest-redis's ``redisdb``.

One pytest session runs N tests of each kind, interleaved (ours, theirs, ours, ...),
each doing one SET, so both see the same machine drift and the same plugins. The cost
of a test's isolation is its set-up plus teardown duration as pytest reports them; the
first test of each kind (server start-up) is left out. Goal: ours <= 0.5x of theirs.

    python benchmarks/bench_isolation.py [--tests 500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

GOAL = 0.5

TESTS = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_ours(cache_redis, n):
    cache_redis.set("k", n)

@pytest.mark.parametrize("n", range({count}))
def test_theirs(redisdb, n):
    redisdb.set("k", n)
"""

COLLECTOR = """
import json, os
from collections import defaultdict

durations = defaultdict(float)

def pytest_collection_modifyitems(items):
    ours = [item for item in items if item.originalname == "test_ours"]
    theirs = [item for item in items if item.originalname == "test_theirs"]
    items[:] = [item for pair in zip(ours, theirs) for item in pair]

def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        durations[report.nodeid] += report.duration

def pytest_sessionfinish(session):
    with open(os.environ["ISOLATION_OUT"], "w") as out:
        json.dump(durations, out)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    (workdir / "test_isolation.py").write_text(textwrap.dedent(TESTS.format(count=options.tests)))
    (workdir / "conftest.py").write_text(textwrap.dedent(COLLECTOR))
    out = workdir / "durations.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--cache-backend",
        "server",
        f"--redis-exec={shutil.which('redis-server')}",
        str(workdir),
    ]
    completed = subprocess.run(
        command, cwd=workdir, env={**_env(), "ISOLATION_OUT": str(out)}, capture_output=True, text=True
    )
    if completed.returncode != 0:
        print(completed.stdout[-3000:], completed.stderr[-3000:])
        return 2
    durations = json.loads(out.read_text())
    ours = sorted(value * 1e3 for nodeid, value in durations.items() if "test_ours[" in nodeid and "[0]" not in nodeid)
    theirs = sorted(
        value * 1e3 for nodeid, value in durations.items() if "test_theirs[" in nodeid and "[0]" not in nodeid
    )
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"per-test isolation cost (set-up + teardown), {len(ours)} tests each, interleaved in one session\n")
    print("| fixture                         | median ms | p90 ms  | mean ms |")
    print("|---------------------------------|-----------|---------|---------|")
    for name, values in (("cache_redis (pytest-cachecheck)", ours), ("redisdb (pytest-redis)", theirs)):
        p90 = values[int(len(values) * 0.9)]
        print(f"| {name:<31} | {statistics.median(values):>9.3f} | {p90:>7.3f} | {statistics.mean(values):>7.3f} |")
    status = "met" if ratio <= GOAL else "MISSED"
    print(f"\nratio ours/theirs (medians): {ratio:.3f}  goal <= {GOAL}: {status}")
    return 0 if ratio <= GOAL else 1


def _env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}


if __name__ == "__main__":
    sys.exit(main())
