"""Reports: JSON (schema), Markdown (same numbers), GitHub summary, JUnit properties, terminal, xdist merge."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from pytest_cachecheck.report.json_report import SCHEMA

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the report schema (pip install .[test])")

TARGETS = """
[[tool.cachecheck.target]]
name = "users"
pattern = "user:*"
hit_rate = 0.6
p99_ms = 10000
keys_without_ttl = 0

[[tool.cachecheck.target]]
name = "carts"
pattern = "cart:*"
hit_rate = 0.9
"""

APP_TESTS = """
import pytest

@pytest.mark.parametrize("shard", range(6))
def test_users(cache_redis, shard):
    for _ in range(3):
        for user in range(shard, shard + 5):
            if cache_redis.get(f"user:{user}") is None:
                cache_redis.set(f"user:{user}", "profile", ex=60)

@pytest.mark.parametrize("cart", range(4))
def test_carts(cache_redis, cart):
    cache_redis.mget(f"cart:{cart}", f"cart:{cart + 1}")
    cache_redis.hset(f"cart:{cart}", "item", 1)
    cache_redis.hgetall(f"cart:{cart}")

@pytest.mark.cache_hit_rate(0.99, pattern="user:*")
def test_marked(cache_redis):
    cache_redis.get("user:404")

def test_no_redis():
    assert True
"""


@pytest.fixture(autouse=True)
def _no_github_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", pyproject=TARGETS)
    pytester.makepyfile(test_app=APP_TESTS)
    return pytester


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_json_report_follows_the_documented_schema(project: pytest.Pytester) -> None:
    result = project.runpytest("--cache-targets", "--cache-report", "out/run.json")
    result.assert_outcomes(passed=11, failed=1)
    report = _load(project.path / "out" / "run.json")
    jsonschema.validate(report, SCHEMA)
    assert report["version"] == 1 and report["backend"] == "fake"
    assert report["redis_version"].startswith("fakeredis")
    assert [(row["name"], row["metric"], row["status"]) for row in report["targets"]] == [
        ("users", "hit_rate", "met"),
        ("users", "p99_ms", "met"),
        ("users", "keys_without_ttl", "met"),
        ("carts", "hit_rate", "missed"),
    ]
    users = report["patterns"]["user:*"]
    # test_users: 6 tests x 15 GETs, 5 misses each; test_marked: one miss
    assert (users["reads"], users["hits"], users["misses"]) == (91, 60, 31)
    assert users["command_counts"] == {"GET": 91, "SET": 30}
    carts = report["patterns"]["cart:*"]
    # MGET of two absent keys, HSET, HGETALL of the hash just written
    assert (carts["reads"], carts["hits"], carts["misses"], carts["writes"]) == (12, 4, 8, 4)
    assert carts["command_counts"] == {"HGETALL": 4, "HSET": 4, "MGET": 4}
    assert report["patterns"]["*"]["keys_without_ttl"] == 4  # the carts' hashes
    assert report["run"] == {"tests": 12, "workers": 0, "targets": 4, "targets_missed": 1, "crashed_workers": []}
    nodeids = [test["nodeid"] for test in report["tests"]]
    assert "test_app.py::test_no_redis" not in nodeids and len(nodeids) == 11
    marked = next(test for test in report["tests"] if test["nodeid"] == "test_app.py::test_marked")
    assert marked["metrics"]["hit_rate"] == 0.0
    assert marked["checks"][0]["marker"] == "cache_hit_rate" and marked["checks"][0]["status"] == "failed"


def _markdown_table(text: str, heading: str) -> list[list[str]]:
    section = text.split(f"### {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def test_markdown_report_says_what_the_json_says(project: pytest.Pytester) -> None:
    project.runpytest("--cache-targets", "--cache-report", "run.json", "--cache-report", "run.md")
    report = _load(project.path / "run.json")
    markdown = (project.path / "run.md").read_text(encoding="utf-8")
    targets = _markdown_table(markdown, "Targets")
    assert [[row[0], row[2], row[3], row[4], row[5].split(" ", 1)[1]] for row in targets] == [
        [row["name"], row["metric"], row["value_text"], row["limit_text"], row["status"]] for row in report["targets"]
    ]
    patterns = _markdown_table(markdown, "Per-pattern stats")
    assert [row[:5] + row[8:] for row in patterns] == [
        [
            f"`{pattern}`",
            str(stats["reads"]),
            str(stats["hits"]),
            str(stats["misses"]),
            "-" if stats["hit_rate"] is None else f"{stats['hit_rate']:.1%}",
            str(stats["commands"]),
        ]
        for pattern, stats in report["patterns"].items()
    ]
    failed = _markdown_table(markdown, "Failed cache checks")
    assert [row[:2] for row in failed] == [["`test_app.py::test_marked`", "cache_hit_rate"]]


def test_markdown_is_appended_to_the_github_step_summary(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = project.path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--cache-targets")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## cachecheck report\n")
    assert "| carts | `cart:*` | hit_rate | 33.3% | >= 90.0% | ❌ missed |" in text


def test_unwritable_github_summary_is_one_line_not_a_traceback(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "no-such-dir" / "summary.md"))
    result = project.runpytest("--cache-report", "r.json")
    assert result.ret != 0  # the report is still written, the broken summary is not silently lost
    result.stdout.fnmatch_lines(["*GITHUB_STEP_SUMMARY=*summary.md: could not append the Markdown report: *"])
    assert "Traceback" not in result.stdout.str()
    assert (project.path / "r.json").exists()


def test_junit_xml_carries_per_test_cache_metrics(project: pytest.Pytester) -> None:
    project.runpytest("--junitxml", "junit.xml")
    tree = ElementTree.parse(project.path / "junit.xml")
    properties = {
        case.get("name"): {prop.get("name"): prop.get("value") for prop in case.iter("property")}
        for case in tree.iter("testcase")
    }
    assert properties["test_users[0]"] == {
        "cachecheck.hit_rate": "0.666667",
        "cachecheck.reads": "15",
        "cachecheck.commands": "20",
    }
    assert properties["test_marked"]["cachecheck.cache_hit_rate.hit_rate"] == "0.0"
    assert properties["test_no_redis"] == {}


def _deterministic(report: dict[str, Any]) -> dict[str, Any]:
    """Everything in a report that does not depend on timing."""
    counts = ("reads", "hits", "misses", "hit_rate", "writes", "deletes", "errors", "commands", "command_counts")
    ttl = ("keys_written", "keys_without_ttl")

    def stats(table: dict[str, Any]) -> dict[str, Any]:
        return {name: {key: row[key] for key in counts + ttl} for name, row in table.items()}

    return {
        "patterns": stats(report["patterns"]),
        "key_shapes": stats(report["key_shapes"]),
        "targets": [
            (row["name"], row["metric"], row["status"]) for row in report["targets"] if row["metric"] != "p99_ms"
        ],
        "tests": [
            (test["nodeid"], {key: test["metrics"][key] for key in ("commands", "reads", "hits", "misses", "hit_rate")})
            for test in report["tests"]
        ],
        "run": {key: report["run"][key] for key in ("tests", "targets", "targets_missed")},
    }


def test_xdist_workers_merge_to_the_same_counts_as_one_process(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is needed for the -n 2 run")
    single = project.runpytest_subprocess("-p", "xdist", "-n", "0", "--cache-targets", "--cache-report", "one.json")
    double = project.runpytest_subprocess("-p", "xdist", "-n", "2", "--cache-targets", "--cache-report", "two.json")
    assert single.ret == double.ret == pytest.ExitCode.TESTS_FAILED
    one, two = _load(project.path / "one.json"), _load(project.path / "two.json")
    assert two["run"]["workers"] == 2
    assert _deterministic(one) == _deterministic(two)
    double.stdout.fnmatch_lines(["backend fake (*); 12 tests observed on 2 workers", "  carts hit_rate 33.3% *missed"])


def test_terminal_section_fits_80_columns_and_colours_only_when_asked(pytester: pytest.Pytester) -> None:
    long_pattern = "tenant:*:very:long:namespace:for:analytics:dashboards:*"
    pytester.makefile(
        ".toml",
        pyproject=f'[[tool.cachecheck.target]]\nname = "a rather long target name for the dashboards"\n'
        f'pattern = "{long_pattern}"\nhit_rate = 0.5\np99_ms = 10000\n',
    )
    pytester.makepyfile(
        test_app="""
        def test_it(cache_redis):
            key = "tenant:1:very:long:namespace:for:analytics:dashboards:2"
            cache_redis.get(key)
            cache_redis.set(key, 1)
            cache_redis.get(key)
        """
    )
    plain = pytester.runpytest("--cache-targets", "--color=no")
    lines = plain.stdout.lines
    section = lines[lines.index(next(line for line in lines if "- cachecheck -" in line)) :]
    assert all(len(line) <= 80 for line in section), [line for line in section if len(line) > 80]
    assert not any("\x1b[" in line for line in lines)
    plain.stdout.fnmatch_lines(["a rather long target name for the *...*50.0%*>= 50.0%*met"])
    coloured = pytester.runpytest("--cache-targets", "--color=yes")
    assert re.search(r"\x1b\[32m.*cachecheck: all 2 targets met", coloured.stdout.str())


def test_marker_alone_shows_the_section_with_failing_tests_metrics(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import pytest

        @pytest.mark.cache_hit_rate(0.9)
        def test_cold(cache_redis):
            cache_redis.get("product:1")
            cache_redis.set("product:1", "x")
            cache_redis.get("product:1")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- cachecheck -*",
            "failed cache checks:",
            "test_app.py::test_cold",
            "    3 commands, 2 reads, hit rate 50.0%, p99 * ms",
            "    cache_hit_rate: hit rate 50.0% over 2 reads of all keys*",
        ]
    )
    assert "targets met" not in result.stdout.str()


def test_no_section_without_targets_markers_or_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="def test_it(cache_redis):\n    cache_redis.get('k')\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "- cachecheck -" not in result.stdout.str()


def test_reports_are_written_with_parent_folders_and_named_in_the_output(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="def test_it(cache_redis):\n    cache_redis.get('k')\n")
    result = pytester.runpytest("--cache-report", "a/b/r.md", "--cache-report", "r.html")
    result.stdout.fnmatch_lines(["cache report written in *s: a/b/r.md, r.html"])
    assert (pytester.path / "a" / "b" / "r.md").read_text(encoding="utf-8").startswith("## cachecheck report")
    assert (pytester.path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_no_monitor_run_still_writes_a_valid_empty_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="def test_it(cache_redis):\n    cache_redis.get('k')\n")
    pytester.runpytest("--cache-no-monitor", "--cache-report", "r.json")
    report = _load(pytester.path / "r.json")
    jsonschema.validate(report, SCHEMA)
    assert report["patterns"]["*"]["commands"] == 0 and report["tests"] == []


def test_report_json_is_strict_json_even_with_infinite_metrics() -> None:
    from pytest_cachecheck.observe.summary import RunSummary
    from pytest_cachecheck.report.json_report import render
    from pytest_cachecheck.report.model import build_report

    summary = RunSummary()
    summary.tests.append(
        {
            "nodeid": "t",
            "metrics": {"commands": 0, "reads": 0, "hits": 0, "misses": 0, "hit_rate": None},
            "checks": [
                {"marker": "cache_no_stale_reads", "status": "passed", "message": "", "metrics": {"nines": 1e999}}
            ],
        }
    )
    text = render(build_report(summary, [], "fake"))
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    jsonschema.validate(json.loads(text), SCHEMA)


def test_unknown_report_suffix_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--cache-report=r.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --cache-report: expected a file path ending in .json, .md or .html (e.g. cache.json), got 'r.txt'"]
    )


def test_report_that_cannot_be_written_is_one_line_and_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app="def test_it(cache_redis):\n    cache_redis.get('k')\n")
    (pytester.path / "blocker").write_text("a file, not a folder", encoding="utf-8")
    result = pytester.runpytest("--cache-report", "blocker/r.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.stdout.lines[-1].startswith("cachecheck: --cache-report blocker/r.json: could not write it: ")
    assert "Traceback" not in result.stdout.str()


def test_folding_raw_records_equals_folding_classified_events() -> None:
    """The fast fold (no events for single-key commands) adds up exactly what the event-based one does."""
    from pytest_cachecheck.observe.events import classify_raw
    from pytest_cachecheck.observe.summary import RunSummary

    commands: list[tuple[tuple[Any, ...], Any]] = [
        (("GET", "user:1"), None),
        (("SET", "user:1", "x"), True),
        (("SET", b"user:2", "x", "EX", 60), True),
        (("get", "user:1"), b"x"),
        (("EXPIRE", "user:1", 60), 1),
        (("GETEX", "user:2", "PERSIST"), b"x"),
        (("MGET", "user:1", "cart:1"), [b"x", None]),
        (("HMGET", "cart:2", "a", "b"), [None, b"1"]),
        (("HMGET", "cart:3", "a"), [b"1"]),
        (("EXISTS", "cart:1"), 0),
        (("EXISTS", "user:1", "cart:1"), 1),
        (("SUNIONSTORE", "cart:all", "cart:1", "cart:2"), 1),
        (("DEL", "user:1"), 1),
        (("UNLINK", "user:2", "cart:all"), 2),
        (("PING",), True),
        (("GET", "user:3"), ConnectionError("down")),
        (("EVALSHA", "abc", 1, "user:4"), None),
    ]
    records = [
        (index, 1000 * (index % 7 + 1), args, reply, index // 4, 1) for index, (args, reply) in enumerate(commands)
    ]
    fast, classified = RunSummary(["user:*", "cart:*"]), RunSummary(["user:*", "cart:*"])
    for test in range(3):
        assert fast.add_records(f"t::{test}", records) == classified.add_test(
            f"t::{test}", classify_raw(records), records
        )
    assert fast.to_json() == classified.to_json()
    assert fast.patterns["user:*"].keys_written == 6 and fast.patterns["cart:*"].keys_written == 3


NO_MARKER_TESTS = APP_TESTS.split("@pytest.mark.cache_hit_rate")[0]


def _junit_properties(pytester: pytest.Pytester, *options: str) -> dict[str, dict[str, str]]:
    pytester.runpytest("--junitxml", "junit.xml", *options)
    tree = ElementTree.parse(pytester.path / "junit.xml")
    return {
        case.get("name"): {prop.get("name"): prop.get("value") for prop in case.iter("property")}
        for case in tree.iter("testcase")
    }


def test_junit_metrics_do_not_need_a_run_summary(pytester: pytest.Pytester) -> None:
    """Without targets, reports or markers tests are not folded into the run; their JUnit metrics stay the same."""
    pytester.makepyfile(test_app=NO_MARKER_TESTS)
    alone = _junit_properties(pytester)
    assert alone["test_users[0]"] == {
        "cachecheck.hit_rate": "0.666667",
        "cachecheck.reads": "15",
        "cachecheck.commands": "20",
    }
    assert alone == _junit_properties(pytester, "--cache-report", "r.json")


def test_a_marker_added_while_tests_run_still_shows_the_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import pytest

        @pytest.fixture
        def strict(request):
            request.node.add_marker(pytest.mark.cache_hit_rate(0.9))

        def test_plain(cache_redis):
            cache_redis.get("product:2")

        def test_cold(strict, cache_redis):
            cache_redis.get("product:1")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- cachecheck -*",
            "failed cache checks:",
            "test_app.py::test_cold",
            "    1 commands, 1 reads, hit rate 0.0%*",
        ]
    )


def test_key_shapes_in_the_summary_are_those_of_key_shape() -> None:
    """The summary memoises shapes of keys that differ only in digits; each must still be ``key_shape``'s."""
    from collections import Counter

    from pytest_cachecheck.observe.patterns import key_shape
    from pytest_cachecheck.observe.summary import RunSummary

    keys = [
        "user:42:profile",
        "user:7:profile",
        "session:deadbeefcafe",
        "session:0eadbeefcafe",
        "v2.page|home",
        "v30.page|home",
        "img/2024/01/a.png",
        "ab12",
        "AB12CD34EF",
        "order:٣",
        "order:x",
        "123e4567-e89b-12d3-a456-426614174000",
        "",
    ]
    summary = RunSummary()
    summary.add_records("t::keys", [(index, 1000, ("GET", key), None, 0, 1) for index, key in enumerate(keys)])
    assert Counter({shape: stats.misses for shape, stats in summary.shapes.items()}) == Counter(map(key_shape, keys))
