"""The public surface (SPEC 9.4): every name a test writes imports from ``pytest_cachecheck``; the
warnings are ``pytest.PytestWarning`` subclasses a strict job can turn into errors by their public path."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import pytest_cachecheck
from pytest_cachecheck.metrics import METRICS, TARGET_METRICS
from pytest_cachecheck.report.json_report import SCHEMA

ROOT = Path(__file__).resolve().parent.parent
WARNINGS = ("InconclusiveCheckWarning", "TimingNotEnforcedWarning", "FakeViewWarning", "LeftoverKeysWarning")


def test_every_exported_name_imports() -> None:
    missing = [name for name in pytest_cachecheck.__all__ if not hasattr(pytest_cachecheck, name)]
    assert missing == []
    for name in (
        "CacheStats",
        "ConsistencyReport",
        "Amplification",
        "StampedeReport",
        "Visibility",
        "Scaling",
        *WARNINGS,
    ):
        assert name in pytest_cachecheck.__all__, name


DOCS = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
# Internal classes the docs describe without a test ever naming them (how the plugin works inside)
INTERNAL = {"Metric", "ServerBackend", "TestContext"}  # Metric: the README tells developers how to add one


def _snippets(*, code_only: bool = False) -> list[tuple[str, str]]:
    """(file, text) for each fenced code block and each inline code span (its line breaks joined).

    ``code_only``: Python blocks and inline spans, not terminal output (whose table headers are words).
    """
    found = []
    for path in DOCS:
        prose: list[str] = []
        block: list[str] | None = None
        language = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if block is None and line.lstrip().startswith("```"):
                block, language = [], line.lstrip().strip("`").strip()
            elif block is not None and line.rstrip().endswith("```"):  # also output ending in ``` on its line
                block.append(line.rstrip().removesuffix("```"))
                if not code_only or language == "python":
                    found.append((path.name, "\n".join(block)))
                block = None
            elif block is not None:
                block.append(line)
            else:
                prose.append(line)
        found += [(path.name, span.replace("\n", " ")) for span in re.findall(r"`([^`]+)`", "\n".join(prose))]
    return found


def test_every_name_the_docs_import_or_dot_is_public() -> None:
    """``from pytest_cachecheck import X`` and ``pytest_cachecheck.X`` (``-W error::...``) in README.md
    and docs/ name X in ``__all__``: a user never has to reach into a submodule."""
    imported, dotted = [], []
    for where, text in _snippets():
        for group in re.findall(r"from pytest_cachecheck import (\([^)]*\)|[\w, ]+)", text):
            imported += [(where, name.strip()) for name in group.strip("()").split(",") if name.strip()]
        # ``python -m pytest_cachecheck.backends.docker``: a process the plugin starts, not an import
        dotted += [(where, name) for name in re.findall(r"(?<!-m )\bpytest_cachecheck\.(\w+)", text)]
    assert len(imported) >= 3 and len(dotted) >= 5  # the docs do show both forms
    for where, name in imported + dotted:
        assert name in pytest_cachecheck.__all__ and hasattr(pytest_cachecheck, name), f"{where}: {name}"


def test_every_class_of_ours_the_docs_show_is_exported() -> None:
    """A class the package defines that README.md or docs/ show in code (``Divergence``, ``ServerStats``)."""
    defined = {
        node.name
        for path in (ROOT / "pytest_cachecheck").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }
    shown = {name for _, text in _snippets(code_only=True) for name in re.findall(r"\b([A-Z][A-Za-z0-9]+)\b", text)}
    ours = (shown & defined) - INTERNAL
    assert {"CacheStats", "ConsistencyReport", "Amplification", "InconclusiveCheckWarning"} <= ours
    assert ours - set(pytest_cachecheck.__all__) == set()


@pytest.mark.parametrize("name", WARNINGS)
def test_warnings_are_pytest_warnings_under_one_base(name: str) -> None:
    warning = getattr(pytest_cachecheck, name)
    assert issubclass(warning, pytest_cachecheck.CachecheckWarning)
    assert issubclass(warning, pytest.PytestWarning)
    assert warning.__module__ == "pytest_cachecheck"


@pytest.mark.parametrize(
    "category", ["pytest_cachecheck.InconclusiveCheckWarning", "pytest_cachecheck.CachecheckWarning"]
)
def test_a_strict_job_turns_an_inconclusive_check_into_an_error(pytester: pytest.Pytester, category: str) -> None:
    pytester.makepyfile(
        test_few="""
        import pytest

        @pytest.mark.cache_latency(p99_ms=50)
        def test_few_samples(cache_redis):
            cache_redis.get("a")
        """
    )
    relaxed = pytester.runpytest()
    relaxed.assert_outcomes(passed=1, warnings=1)
    relaxed.stdout.fnmatch_lines(["*test_few.py:3: InconclusiveCheckWarning: cache_latency inconclusive: p99*"])
    strict = pytester.runpytest("-W", f"error::{category}")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*InconclusiveCheckWarning: cache_latency inconclusive: p99*"])


def test_the_registry_is_what_targets_and_the_report_schema_accept() -> None:
    schema_metrics = SCHEMA["properties"]["targets"]["items"]["properties"]["metric"]["enum"]
    assert schema_metrics == list(TARGET_METRICS)
    assert set(METRICS) - set(TARGET_METRICS) == {"invalidation_scaling_ms"}
    for metric in METRICS.values():
        assert metric.measured_by and metric.direction in ("ceiling", "floor")
        assert metric.format(None) == "-"
    assert [
        METRICS[name].format(value) for name, value in [("hit_rate", 0.9123), ("p99_ms", 0.3531), ("p99_ms", 12.44)]
    ] == [
        "91.2%",
        "0.353 ms",
        "12.4 ms",
    ]
    assert METRICS["speedup"].limit_text(2) == ">= 2.00x" and METRICS["stale_reads"].limit_text(0) == "<= 0"


def test_inner_runs_have_no_cacheprovider_without_asking(pytester: pytest.Pytester) -> None:
    """tests/conftest.py: a pytester run without ``-p no:cacheprovider`` leaves no ``.pytest_cache``."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert not (pytester.path / ".pytest_cache").exists()


def test_every_target_metric_is_measured_or_reported_as_no_data() -> None:
    """A metric added to the registry without its measurement fails here, not in a user's run."""
    from pytest_cachecheck.checks.target_file import Target
    from pytest_cachecheck.checks.targets import NO_DATA, evaluate_targets
    from pytest_cachecheck.observe.summary import RunSummary

    limits = tuple((name, 1) for name in TARGET_METRICS)
    empty = evaluate_targets([Target("all", "*", limits)], RunSummary())
    assert [(row.metric, row.status) for row in empty] == [(name, NO_DATA) for name in TARGET_METRICS]
    observed = RunSummary()
    observed.add_records("t::a", [(0, 2_000_000, ("GET", "k"), None, 0, 1)])
    rows = {row.metric: row for row in evaluate_targets([Target("all", "*", limits)], observed)}
    for name, metric in TARGET_METRICS.items():
        if metric.source in ("reads", "commands"):
            assert rows[name].value is not None, name


NEW_METRIC = """
import importlib.util, json, pathlib, sys
import jsonschema

# metrics.py is a leaf: load it first, with the newcomer's entry, then the package that reads it
package = pathlib.Path(importlib.util.find_spec("pytest_cachecheck").origin).parent
spec = importlib.util.spec_from_file_location("pytest_cachecheck.metrics", package / "metrics.py")
metrics = sys.modules["pytest_cachecheck.metrics"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metrics)
entry = metrics.Metric("evictions", metrics.COUNT, metrics.CEILING, metrics.FIXTURE, "sum", "a test calling evict()")
metrics.METRICS["evictions"] = metrics.TARGET_METRICS["evictions"] = entry  # the newcomer's one entry

from pytest_cachecheck import Measurement
from pytest_cachecheck.checks.target_file import parse_targets
from pytest_cachecheck.checks.targets import evaluate_targets
from pytest_cachecheck.observe.summary import RunSummary
from pytest_cachecheck.report import html, json_report, markdown, model

targets = parse_targets('[[tool.cachecheck.target]]\\nname = "lru"\\npattern = "user:*"\\nevictions = 2', "t.toml")
summary = RunSummary(target.pattern for target in targets)
for test, count in (("t::a", 2), ("t::b", 1)):  # ... and its measurement: what evict() appends
    summary.add_records(test, [], measurements=[Measurement("evictions", count, ("user:1",))])
report = model.build_report(summary, evaluate_targets(targets, summary), "fake")
jsonschema.validate(report, json_report.SCHEMA)
(row,) = report["targets"]
print(json.dumps([row["value_text"], row["limit_text"], row["status"]]))
print("markdown", "evictions" in markdown.render(report), "html", "evictions" in html.render(report))
try:
    parse_targets('[[tool.cachecheck.target]]\\nname = "bad"\\nevictions = -1', "t.toml")
except Exception as exc:
    print(exc)
"""


def test_a_new_metric_is_one_registry_entry_and_its_measurement(pytester: pytest.Pytester) -> None:
    """The issue's promise, end to end in a fresh interpreter: a ``Metric`` entry and the code that appends its
    ``Measurement``; target files, the run summary, target evaluation and every report take it, unchanged."""
    result = pytester.run(sys.executable, "-c", NEW_METRIC)
    assert result.ret == 0, result.stderr.str()
    assert result.outlines == [
        '["3", "<= 2", "missed"]',  # summed over the two tests, formatted as a count
        "markdown True html True",
        "t.toml, target 'bad': key 'evictions' must be a whole number >= 0, got -1",
    ]
