"""pytest-xdist end to end (-n 2): each worker test's observations reach the controller exactly once,
a crashed worker keeps what it finished, and every report format says which test's data is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_cachecheck.report.json_report import SCHEMA

pytest.importorskip("xdist", reason="pytest-xdist runs the -n 2 sessions")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the report schema (pip install .[test])")

READS_PER_TEST = 11
TARGETS = '[[tool.cachecheck.target]]\nname = "users"\npattern = "user:*"\nhit_rate = 0.0\n'

# Ten tests of 11 reads each (plus one write); test 5 does ``{stop}`` after its reads.
TESTS = """
import os
import signal
import pytest

@pytest.mark.parametrize("i", range(10))
def test_reads(cache_redis, i):
    cache_redis.set(f"user:{{i}}:0", "profile", ex=60)
    for k in range(11):
        cache_redis.get(f"user:{{i}}:{{k}}")
    if i == 5:
        {stop}
"""


@pytest.fixture(autouse=True)
def _no_github_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _run(pytester: pytest.Pytester, stop: str, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makefile(".toml", pyproject=TARGETS)
    pytester.makepyfile(test_app=TESTS.format(stop=stop))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rA", "--cache-targets", "--cache-report", "run.json", *args
    )
    report = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, SCHEMA)
    return result, report


def _passed(result: pytest.RunResult) -> list[str]:
    return sorted(re.findall(r"^PASSED (\S+)", result.stdout.str(), re.MULTILINE))


def _observed(report: dict[str, Any]) -> tuple[int, int, list[str]]:
    return report["run"]["tests"], report["patterns"]["*"]["reads"], [test["nodeid"] for test in report["tests"]]


def test_keyboard_interrupt_in_a_worker_counts_every_finished_test_once(pytester: pytest.Pytester) -> None:
    result, report = _run(pytester, "raise KeyboardInterrupt", "-n", "2")
    passed = _passed(result)
    assert passed, result.stdout.str()
    # the interrupted test never finished: as without xdist, its observations are not folded in
    assert _observed(report) == (len(passed), READS_PER_TEST * len(passed), passed)
    assert report["patterns"]["user:*"]["writes"] == len(passed)
    assert report["run"]["workers"] <= 2
    assert report["run"]["crashed_workers"] == []  # interrupted, not crashed: the worker ended its session
    assert "crashed while running" not in "\n".join(line for line in result.stdout.lines if "cachecheck:" in line)


@pytest.mark.parametrize("stop", ["os._exit(1)", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_crashed_worker_keeps_its_finished_tests_and_the_report_says_it_crashed(
    pytester: pytest.Pytester, stop: str
) -> None:
    result, report = _run(pytester, stop, "-n", "2", "--cache-report", "run.md", "--cache-report", "run.html")
    passed = _passed(result)
    assert len(passed) == 9, result.stdout.str()  # the replacement worker runs what the crashed one had left
    assert _observed(report) == (9, 9 * READS_PER_TEST, passed)
    crashes = report["run"]["crashed_workers"]
    assert [crash["test"] for crash in crashes] == ["test_app.py::test_reads[5]"]
    worker = crashes[0]["worker"]
    assert re.fullmatch(r"gw\d+", worker)
    result.stdout.fnmatch_lines(
        [
            f"cachecheck: worker {worker} crashed while running test_app.py::test_reads[5]; "
            "its observations of that test are missing",
            "cachecheck: all 1 targets met",
        ]
    )
    markdown = (pytester.path / "run.md").read_text(encoding="utf-8")
    assert f"Worker `{worker}` crashed while running `test_app.py::test_reads[5]`" in markdown
    html = (pytester.path / "run.html").read_text(encoding="utf-8")
    assert f"Worker <code>{worker}</code> crashed while running <code>test_app.py::test_reads[5]</code>" in html


def test_normal_xdist_run_reports_the_numbers_of_a_single_process_run(pytester: pytest.Pytester) -> None:
    _, single = _run(pytester, "pass", "-p", "xdist", "-n", "0")
    Path(pytester.path / "run.json").rename(pytester.path / "single.json")
    _, double = _run(pytester, "pass", "-n", "2")
    nodeids = [f"test_app.py::test_reads[{i}]" for i in range(10)]
    assert _observed(single) == _observed(double) == (10, 10 * READS_PER_TEST, nodeids)
    for report in (single, double):
        for volatile in ("latency_ms", "latency_cdf"):
            for table in ("patterns", "key_shapes"):
                for row in report[table].values():
                    row.pop(volatile)
        for test in report["tests"]:
            test["metrics"] = {key: value for key, value in test["metrics"].items() if not key.endswith("_ms")}
        report.pop("created")
    assert double["run"].pop("workers") == 2 and single["run"].pop("workers") == 0
    assert double["run"]["crashed_workers"] == single["run"]["crashed_workers"] == []
    assert single == double
