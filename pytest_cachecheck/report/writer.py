"""Write the report files asked for with ``--cache-report`` (format by suffix) and the GitHub summary."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import html, json_report, markdown

RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    ".json": json_report.render,
    ".md": markdown.render,
    ".html": html.render,
}


def write_reports(report: dict[str, Any], paths: Sequence[str], base: Path) -> tuple[list[str], list[str]]:
    """Write each path (relative ones under ``base``), creating parent folders.

    Returns the paths written and one line per path that could not be written.
    """
    written, problems = [], []
    for path_text in paths:
        path = Path(path_text)
        if not path.is_absolute():
            path = base / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(RENDERERS[path.suffix](report), encoding="utf-8")
        except OSError as exc:
            problems.append(f"--cache-report {path_text}: could not write it: {exc.strerror or exc}")
        else:
            written.append(str(path_text))
    return written, problems


def append_github_summary(report: dict[str, Any]) -> str | None:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY`` (GitHub Actions' job summary) when set.

    Returns one line when the file could not be written: a broken job summary must not
    lose the run's verdict, nor end it with a traceback.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    try:
        with open(target, "a", encoding="utf-8") as summary:
            summary.write(markdown.render(report) + "\n")
    except OSError as exc:
        return f"GITHUB_STEP_SUMMARY={target}: could not append the Markdown report: {exc.strerror or exc}"
    return None
