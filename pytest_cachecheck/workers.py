"""pytest-xdist: how each worker's observations reach the controller's run summary, exactly once.

Each test's share of the summary travels with its teardown report, the one channel
xdist has per test, so a worker that crashes (``os._exit``, a segfault, SIGKILL) loses
only the test it was running. Whatever was folded after the last report is sent once
more in ``workeroutput`` when the worker ends its session. The controller consumes
each share as it merges it, which is what makes it exactly once even where xdist
calls ``pytest_testnodedown`` twice for one worker (a KeyboardInterrupt in a test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .observe.summary import RunSummary

REPORT_ATTRIBUTE = "cachecheck_summary"  # on a worker's teardown report: that test's share, as JSON
OUTPUT_KEY = "cachecheck"  # in a worker's ``workeroutput``: what no report carried


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class WorkerSide:
    """In an xdist worker: each teardown report carries what its test added to the summary."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        report = yield
        if call.when == "teardown":
            share = self.summary.take_json()
            if share is not None:
                setattr(report, REPORT_ATTRIBUTE, share)
        return report

    def finish(self, config: pytest.Config) -> None:
        """At the worker's session end: the rest (normally nothing) goes in ``workeroutput``."""
        share = self.summary.take_json()
        if share is not None:
            config.workeroutput[OUTPUT_KEY] = share  # type: ignore[attr-defined]


class ControllerSide:
    """In the xdist controller (registered in every non-worker run; without xdist its hooks see nothing)."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Merge a test's share and take it off the report, so no later hook (or report log) carries it."""
        share = report.__dict__.pop(REPORT_ATTRIBUTE, None)
        if share is not None:
            self.summary.merge(RunSummary.from_json(share), worker=getattr(report, "worker_id", None))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker that never sent ``workeroutput`` did not end its session: it crashed or was killed."""
        output = getattr(node, "workeroutput", None)
        if output is None:
            self.summary.crashes.setdefault(node.gateway.id, None)
            return
        share = output.pop(OUTPUT_KEY, None)
        if share is not None:
            self.summary.merge(RunSummary.from_json(share), worker=node.gateway.id)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """The test a crashed worker was running: the one whose observations are missing.

        xdist calls this for a KeyboardInterrupt too, after the worker ended its session
        normally: that test was interrupted (as without xdist), and the worker did not crash.
        """
        worker = report.node.gateway.id  # type: ignore[attr-defined]
        if worker in self.summary.crashes:
            self.summary.crashes[worker] = crashitem
