"""End of the run (controller or single process): evaluate targets, build the report, write the files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks.targets import TargetResult, evaluate_targets
from ..config import Settings
from ..observe.summary import RunSummary
from .model import build_report
from .writer import append_github_summary, write_reports


@dataclass(frozen=True)
class RunReport:
    """What the terminal summary shows and what decides the exit status."""

    report: dict[str, Any]
    results: list[TargetResult]
    written: list[str] = field(default_factory=list)
    write_seconds: float = 0.0
    show: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def missed(self) -> list[TargetResult]:
        return [result for result in self.results if result.failed]

    @property
    def failed(self) -> bool:
        """A missed target or a report that could not be written fails the run."""
        return bool(self.missed or self.problems)


def finish_run(summary: RunSummary, settings: Settings, base: Path) -> RunReport:
    """Targets against the merged summary; the report files; whether the terminal section is due."""
    results = evaluate_targets(settings.target_list, summary, enforce_timing=settings.enforce_timing)
    report = build_report(summary, results, settings.backend)
    started = time.perf_counter()
    written, problems = write_reports(report, settings.reports, base)
    if settings.target_list or settings.reports:
        summary_problem = append_github_summary(report)
        if summary_problem is not None:
            problems.append(summary_problem)
    seconds = time.perf_counter() - started
    any_marker = any(test["checks"] for test in summary.tests)
    show = bool(settings.target_list or settings.reports or any_marker)
    return RunReport(report, results, written, seconds, show or bool(problems), problems)
