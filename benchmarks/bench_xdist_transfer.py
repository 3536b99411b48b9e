"""What sending each test's summary share to the pytest-xdist controller costs, per test.

A typical test (the report-overhead workload: 100 commands, GET then SET ... EX or
EXPIRE on ``user:<n>:<i>``, two targets) is observed on the fake backend and folded
into a worker's summary; then the worker's side (``take_json``, the text that rides on
the teardown report), the channel (the report serialised as xdist sends it, pytest's
``_to_json`` then execnet's ``dumps``, with the share minus without it) and the
controller's side (``from_json`` + ``merge``) are timed over ``--tests`` tests, next
to what the test itself and its fold into the summary take.

    python benchmarks/bench_xdist_transfer.py [--tests 2000] [--commands 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import execnet
import fakeredis
import pytest

from pytest_cachecheck.observe import instrument
from pytest_cachecheck.observe.monitor import CacheMonitor
from pytest_cachecheck.observe.summary import RunSummary
from pytest_cachecheck.workers import REPORT_ATTRIBUTE


def observed_test(client: fakeredis.FakeRedis, n: int, commands: int) -> CacheMonitor:
    monitor = CacheMonitor()
    monitor.activate()
    for i in range(commands // 2):
        key = f"user:{n}:{i % 20}"
        if client.get(key) is None:
            client.set(key, "profile", ex=60)
        else:
            client.expire(key, 60)
    monitor.deactivate()
    return monitor


def teardown_report(nodeid: str) -> pytest.TestReport:
    return pytest.TestReport(nodeid, (nodeid, 0, nodeid), {}, "passed", None, "teardown", [], duration=0.001)


def _channel_seconds(report: pytest.TestReport) -> float:
    """Best of 5: a teardown report serialised as the worker sends it."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        execnet.dumps(report._to_json())
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--commands", type=int, default=100)
    args = parser.parse_args()
    instrument.install()
    client = fakeredis.FakeRedis()
    worker = RunSummary(["user:*", "*"])
    controller = RunSummary(["user:*", "*"])
    body, fold, take, channel, merge, sizes = [], [], [], [], [], []
    for n in range(args.tests):
        started = time.perf_counter()
        monitor = observed_test(client, n, args.commands)
        body.append(time.perf_counter() - started)
        nodeid = f"test_app.py::test_workload[{n}]"
        started = time.perf_counter()
        worker.add_records(nodeid, monitor.records)
        fold.append(time.perf_counter() - started)
        started = time.perf_counter()
        share = worker.take_json()
        take.append(time.perf_counter() - started)
        assert share is not None
        sizes.append(len(share.encode()))
        report = teardown_report(nodeid)
        without = _channel_seconds(report)
        setattr(report, REPORT_ATTRIBUTE, share)
        channel.append(max(0.0, _channel_seconds(report) - without))
        started = time.perf_counter()
        controller.merge(RunSummary.from_json(share), worker="gw0")
        merge.append(time.perf_counter() - started)
        client.flushdb()
    instrument.uninstall()
    assert controller.test_count == args.tests
    assert controller.patterns["*"].command_count == args.tests * args.commands

    def us(values: list[float]) -> str:
        p95 = sorted(values)[int(0.95 * len(values))]
        return f"median {statistics.median(values) * 1e6:7.1f} us, p95 {p95 * 1e6:7.1f} us"

    print(f"{args.tests} tests x {args.commands} commands, targets user:* and *")
    print(f"share size        median {statistics.median(sizes):7.0f} B, max {max(sizes)} B")
    print(f"test body         {us(body)}")
    print(f"fold into summary {us(fold)}")
    print(f"worker take_json  {us(take)}")
    print(f"report channel    {us(channel)} (serialised with the share minus without)")
    print(f"controller merge  {us(merge)} (from_json + merge)")
    added = [a + b + c for a, b, c in zip(take, channel, merge)]
    print(f"added per test    {us(added)}; {sum(added) / sum(body):.1%} of the test bodies' time")


if __name__ == "__main__":
    main()
