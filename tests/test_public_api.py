"""The public surface (SPEC 9.4): every name a test writes imports from ``pytest_cachecheck``; the
warnings are ``pytest.PytestWarning`` subclasses a strict job can turn into errors by their public path."""

from __future__ import annotations

import re
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
    for name in ("CacheStats", "ConsistencyReport", "Amplification", "StampedeReport", "Visibility", "Scaling", *WARNINGS):
        assert name in pytest_cachecheck.__all__, name


def test_names_the_docs_use_are_exported() -> None:
    """A class name the README or docs show in backticks (``Amplification(...)``) that the package defines."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in [ROOT / "README.md", *ROOT.glob("docs/*.md")])
    shown = set(re.findall(r"`([A-Z][a-z]+(?:[A-Z][a-z]+)+)(?:\(|`)", text))
    ours = {name for name in shown if name.endswith("Warning") or name in {"CacheStats", "ConsistencyReport"}}
    assert ours and ours <= set(pytest_cachecheck.__all__), ours - set(pytest_cachecheck.__all__)


@pytest.mark.parametrize("name", WARNINGS)
def test_warnings_are_pytest_warnings_under_one_base(name: str) -> None:
    warning = getattr(pytest_cachecheck, name)
    assert issubclass(warning, pytest_cachecheck.CachecheckWarning)
    assert issubclass(warning, pytest.PytestWarning)
    assert warning.__module__ == "pytest_cachecheck"


@pytest.mark.parametrize("category", ["pytest_cachecheck.InconclusiveCheckWarning", "pytest_cachecheck.CachecheckWarning"])
def test_a_strict_job_turns_an_inconclusive_check_into_an_error(pytester: pytest.Pytester, category: str) -> None:
    pytester.makepyfile(
        test_few="""
        import pytest

        @pytest.mark.cache_latency(p99_ms=50)
        def test_few_samples(cache_redis):
            cache_redis.get("a")
        """
    )
    relaxed = pytester.runpytest("-p", "no:cacheprovider")
    relaxed.assert_outcomes(passed=1, warnings=1)
    relaxed.stdout.fnmatch_lines(["*test_few.py:3: InconclusiveCheckWarning: cache_latency inconclusive: p99*"])
    strict = pytester.runpytest("-p", "no:cacheprovider", "-W", f"error::{category}")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*InconclusiveCheckWarning: cache_latency inconclusive: p99*"])


def test_the_registry_is_what_targets_and_the_report_schema_accept() -> None:
    schema_metrics = SCHEMA["properties"]["targets"]["items"]["properties"]["metric"]["enum"]
    assert schema_metrics == list(TARGET_METRICS)
    assert set(METRICS) - set(TARGET_METRICS) == {"invalidation_scaling_ms"}
    for metric in METRICS.values():
        assert metric.measured_by and metric.direction in ("ceiling", "floor")
        assert metric.format(None) == "-"
    assert [METRICS[name].format(value) for name, value in [("hit_rate", 0.9123), ("p99_ms", 0.3531), ("p99_ms", 12.44)]] == [
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
