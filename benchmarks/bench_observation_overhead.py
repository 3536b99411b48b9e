"""Observation overhead per command: observed vs unobserved GETs against a real redis-server and fakeredis.

Every GET is paired: the original redis-py ``execute_command`` and the wrapped one
(recording into an active monitor) run back to back on the same connection, in
alternating order, each timed on its own. Loopback round trips wander by +-10% between
blocks of thousands of commands, far more than the microsecond being measured; paired
neighbours see the same machine state, so the difference of each pair keeps the
wrapper's cost and little of the drift. Reported per row: the mean times, the ratio
of the sums (observed / plain over all the GETs), the mean time added per command with
its 95% confidence interval, and the median of the paired differences.

The goal row runs client and server on one CPU (a round trip is then two context
switches, not a cross-CPU wake-up whose cost doubles between runs on a VM); the row on
two CPUs is shown for comparison. The fakeredis goal row observes both sides: the client
wrapper and the fake server's own view of what it executes (``observe.fake_server``),
against fakeredis with neither. Exits 1 when a goal is missed.

The two no-op rows isolate the wrapper: as pipelines' commands take it, and as plain clients'
commands do (``redis.Redis.execute_command``), which also run the baseline probe's rule
(``observe.probe``; here no probe is ever due, as on 99% of commands).

Byte counting (value sizes, ``observe.sizes``) adds nothing to the recording path: it runs
lazily, where the run summary folds a test in (once per group of like commands) and where
``CacheStats`` sizes are asked for. Its rows pair a summary fold (a target pattern, TTL
replay on, as with a report file) and one ``CacheStats`` (every key, and a pattern) over the
same recorded commands (a cache mix: GET hits, GET misses, SET with EX, values of 200 bytes),
with and without the size work, alternating per round, in the thread's CPU time with the
garbage collector held (pure computation: a busy 2-core runner's preemption would otherwise
swamp a tenth of a microsecond). ``--bytes-only`` runs just those rows.

    python benchmarks/bench_observation_overhead.py [--commands 200000] [--bytes-only]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import statistics
import sys
import types
from collections.abc import Callable
from time import perf_counter_ns, thread_time_ns
from typing import Any

import fakeredis
import redis
from fakeredis._socket._base import BaseFakeSocket

from pytest_cachecheck.backends.process import RedisProcess
from pytest_cachecheck.observe import aggregate, fake_server, instrument, probe, summary
from pytest_cachecheck.observe.events import classify_raw
from pytest_cachecheck.observe.instrument import RawEvent
from pytest_cachecheck.observe.monitor import CacheMonitor

BYTES_GOAL_ADDED_US = 0.2  # byte counting, per observed command (summary fold; CacheStats sizes)
GOAL_RATIO = 1.05
GOAL_ADDED_US = 2.0
FAKE_GOAL_RATIO = 1.10  # fakeredis, in-process, client wrapper + the fake server's view
FAKE_GOAL_ADDED_US = 1.5
KEYS = ("bench:key", "bench:missing")  # a hit and a miss, alternating in pairs of pairs
HEADER = "| client                     | plain us | observed | ratio  | added us, mean (95% CI)   | median | goal   |"
RULE = "|----------------------------|----------|----------|--------|---------------------------|--------|--------|"


def paired(plain: Callable[[str], Any], observed: Callable[[str], Any], pairs: int) -> tuple[list[int], list[int]]:
    """ns of each call: ``plain(key)`` and ``observed(key)`` back to back, the order alternating."""
    plain_ns, observed_ns = [0] * pairs, [0] * pairs
    for index in range(pairs):
        key = KEYS[(index >> 1) & 1]
        plain_first = index & 1
        first, second = (plain, observed) if plain_first else (observed, plain)
        start = perf_counter_ns()
        first(key)
        middle = perf_counter_ns()
        second(key)
        end = perf_counter_ns()
        if plain_first:
            plain_ns[index], observed_ns[index] = middle - start, end - middle
        else:
            observed_ns[index], plain_ns[index] = middle - start, end - middle
    return plain_ns, observed_ns


def recorded_pairs(
    client: Any, original: Any, wrapped: Any, pairs: int, plain_client: Any = None, probes_off: bool = False
) -> tuple[list[int], list[int]]:
    """``original`` and ``wrapped`` commands on one client (or the original on ``plain_client``),
    paired, the wrapped one recording into a monitor; a short warm-up first (connection,
    interpreter caches). ``probes_off``: the baseline probe's rule runs after every command, but
    no probe is ever due (a client without a server to probe)."""
    unobserved_client = client if plain_client is None else plain_client

    def plain(key: str) -> Any:
        return original(unobserved_client, "GET", key)

    def observed(key: str) -> Any:
        return wrapped(client, "GET", key)

    monitor = CacheMonitor()
    monitor.activate()
    if probes_off:
        probe.route_baseline(None)
    try:
        paired(plain, observed, 2_000)
        monitor.reset()
        result = paired(plain, observed, pairs)
    finally:
        monitor.deactivate()
    assert monitor.raw_count == pairs, "every observed GET must be recorded once"
    return result


def measure_client(client: Any, pairs: int) -> tuple[list[int], list[int]]:
    """The class's original and installed ``execute_command`` on one client."""
    client.set(KEYS[0], "value")
    instrument.install()
    try:
        wrapped = type(client).execute_command
        return recorded_pairs(client, wrapped.__cachecheck_original__, wrapped, pairs)
    finally:
        instrument.uninstall()


def measure_fake_server_view(pairs: int) -> tuple[list[int], list[int]]:
    """Observed: the client wrapper recording and the fake server's view counting
    (``observe.fake_server``); plain: fakeredis's own ``execute_command`` on a server whose
    socket runs fakeredis's own ``_run_command``. Same data on both servers."""
    assert fake_server.install(), "this fakeredis has no seam for the server-side view"
    watched = fakeredis.FakeServer()
    view = fake_server.attach(watched)
    observed_client = fakeredis.FakeRedis(server=watched)
    plain_client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    for client in (observed_client, plain_client):
        client.set(KEYS[0], "value")
    connection = plain_client.connection_pool.get_connection()
    seam = BaseFakeSocket.__dict__["_run_command"]  # wrapped by the view: the plain socket runs the original
    connection._sock._run_command = types.MethodType(seam.__wrapped__, connection._sock)
    plain_client.connection_pool.release(connection)
    instrument.install()
    try:
        wrapped = type(observed_client).execute_command
        result = recorded_pairs(observed_client, wrapped.__cachecheck_original__, wrapped, pairs, plain_client)
    finally:
        instrument.uninstall()
    assert view is not None and view.counters().calls["GET"] >= pairs, "every GET must reach the server's view"
    return result


class NoOpClient:
    """A client whose command costs nothing: isolates what the wrapper itself adds."""

    def execute_command(self, *args: object, **options: object) -> None:
        return None


def measure_wrapper_alone(pairs: int, probing: bool = False) -> tuple[list[int], list[int]]:
    """The wrapper of pipelines' commands, or (``probing``) of plain clients, which also runs the
    baseline probe's rule after each command (``observe.probe``)."""
    original = NoOpClient.execute_command
    wrapped = instrument._wrap_command(original, probing=probing)
    return recorded_pairs(NoOpClient(), original, wrapped, pairs, probes_off=probing)


def classify_cost_us(client: redis.Redis, count: int) -> float:
    """The lazy part: turning recorded commands into events and stats, per command."""
    instrument.install()
    monitor = CacheMonitor()
    monitor.activate()
    for index in range(count):
        client.get(KEYS[index & 1])
    monitor.deactivate()
    instrument.uninstall()
    start = perf_counter_ns()
    monitor.stats()
    return (perf_counter_ns() - start) / count / 1000


def cache_mix_records(count: int) -> list[RawEvent]:
    """``count`` commands recorded from a fakeredis client: GET hits (1/2), GET misses (1/4), SET EX (1/4)."""
    client = fakeredis.FakeRedis()
    value = b"v" * 200
    instrument.install()
    monitor = CacheMonitor()
    monitor.activate()
    try:
        for index in range(count):
            slot = (index // 4) % 500  # the two GETs after a SET read the key it just wrote: hits
            key = f"user:{slot}:profile"
            if index % 4 == 0:
                client.set(key, value, ex=60)
            elif index % 4 == 1:
                client.get(f"missing:{slot}")
            else:
                client.get(key)
    finally:
        monitor.deactivate()
        instrument.uninstall()
    return monitor.records


def byte_counting_pairs(records: list[RawEvent], rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    """CPU ns per command of the two lazy passes without (plain) and with (observed) sizes, paired per round.

    ``summary fold``: the run summary's per-group size pass (every test, whenever the summary is
    read) against one that answers "no bytes" at once. ``CacheStats sizes``: ``bytes_written``
    read (sizes are worked out on first use: a ``cache_size`` marker) against a hit rate only, for
    every key (``"*"``) and for a pattern (``stats("user:*")``, ``cache_size(pattern=...)``). The
    garbage collector waits outside each timed pass: its pauses land in whichever pass reaches
    its threshold, tenths of microseconds per command of noise on a claim of a tenth.
    """
    events = classify_raw(records)

    def timed(work: Callable[[], object]) -> int:
        gc.collect()
        gc.disable()
        try:
            start = thread_time_ns()
            work()
            return thread_time_ns() - start
        finally:
            gc.enable()

    def fold(sized: bool) -> int:
        original = summary._group_sizes
        if not sized:
            summary._group_sizes = lambda command, outcome, records: (0, 0, None)
        try:
            return timed(lambda: summary.RunSummary(("user:*",)).add_records("bench", records))
        finally:
            summary._group_sizes = original

    def cache_stats(pattern: str) -> Callable[[bool], int]:
        def measure(sized: bool) -> int:
            def work() -> None:
                result = aggregate.compute_stats(events, pattern)
                assert (result.bytes_written if sized else result.hit_rate) is not None

            return timed(work)

        return measure

    pairs: dict[str, tuple[list[float], list[float]]] = {}
    measures = (
        ("summary fold", fold),
        ("CacheStats sizes", cache_stats("*")),
        ("CacheStats, pattern", cache_stats("user:*")),
    )
    for name, measure in measures:
        plain, observed = [], []
        measure(True), measure(False)  # warm-up
        for index in range(rounds):
            if index & 1:
                plain_ns, observed_ns = measure(False), measure(True)
            else:
                observed_ns, plain_ns = measure(True), measure(False)
            plain.append(plain_ns / len(records))
            observed.append(observed_ns / len(records))
        pairs[name] = (plain, observed)
    return pairs


def row(
    name: str,
    plain: list[int] | list[float],
    observed: list[int] | list[float],
    goal: bool,
    goal_ratio: float = GOAL_RATIO,
    goal_added_us: float = GOAL_ADDED_US,
) -> bool:
    differences = [(o - p) / 1000 for o, p in zip(observed, plain)]
    added = statistics.fmean(differences)
    margin = 1.96 * statistics.stdev(differences) / math.sqrt(len(differences))
    ratio = sum(observed) / sum(plain)
    ok = ratio <= goal_ratio and added <= goal_added_us
    status = ("met" if ok else "MISSED") if goal else "info"
    print(
        f"| {name:<26} | {statistics.fmean(plain) / 1000:>8.2f} | {statistics.fmean(observed) / 1000:>8.2f} | "
        f"{ratio:>6.3f} | {added:>+6.2f} ({added - margin:+.2f} to {added + margin:+.2f}) | "
        f"{statistics.median(differences):>+6.2f} | {status:<6} |"
    )
    return ok or not goal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200_000, help="paired GETs per redis-server row (>= 100k)")
    parser.add_argument("--server-bin", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--bytes-only", action="store_true", help="only the byte-counting rows (CPU time, no server)")
    options = parser.parse_args()
    pairs = options.commands
    if options.bytes_only:
        return 0 if bytes_rows() else 1

    print(f"observation overhead, {pairs:,} paired GETs per redis-server row (plain and observed back to back)")
    print(f"goal on redis-server (one CPU): ratio <= {GOAL_RATIO} and <= {GOAL_ADDED_US} us added per command")
    print(
        f"goal on fakeredis with the server-side view: ratio <= {FAKE_GOAL_RATIO} and <= {FAKE_GOAL_ADDED_US} us "
        "added per command\n"
    )
    print(HEADER)
    print(RULE)
    ok = True
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    rows: list[tuple[str, bool]] = []
    if len(cpus) >= 2:
        rows.append(("redis-server, two CPUs", False))
    rows.append(("redis-server, one CPU", True))
    for name, goal in rows:
        server = RedisProcess(options.server_bin)
        try:
            if goal and cpus and server.pid is not None:  # this thread and the server, forked from another
                os.sched_setaffinity(0, {min(cpus)})  # thread: pinned by its pid
                os.sched_setaffinity(server.pid, {min(cpus)})
            client = redis.Redis(host=server.host, port=server.port)
            plain, observed = measure_client(client, pairs)
            ok &= row(name, plain, observed, goal)
            if goal:
                cost = classify_cost_us(client, 100_000)
            client.close()
        finally:
            server.stop()
    plain, observed = measure_client(fakeredis.FakeRedis(), pairs // 4)
    ok &= row("fakeredis (in-process)", plain, observed, goal=False)
    plain, observed = measure_fake_server_view(pairs // 4)
    ok &= row(
        "fakeredis + server view",
        plain,
        observed,
        goal=True,
        goal_ratio=FAKE_GOAL_RATIO,
        goal_added_us=FAKE_GOAL_ADDED_US,
    )
    plain, observed = measure_wrapper_alone(pairs)
    ok &= row("wrapper alone (no-op)", plain, observed, goal=False)
    plain, observed = measure_wrapper_alone(pairs, probing=True)
    ok &= row("wrapper + probe rule", plain, observed, goal=False)
    ok &= bytes_rows(header=False)
    print(f"lazy classification + stats, once per test, not per call: {cost:.2f} us per command")
    return 0 if ok else 1


def bytes_rows(header: bool = True) -> bool:
    """The byte-counting rows (CPU time of lazy passes, no server), each against its goal."""
    if header:
        print(HEADER)
        print(RULE)
    ok = True
    for name, (plain, observed) in byte_counting_pairs(cache_mix_records(20_000), rounds=101).items():
        ok &= row(f"bytes: {name}", plain, observed, True, math.inf, BYTES_GOAL_ADDED_US)
    print(
        "\nadded: mean of the paired differences (observed - plain); ratio: sum observed / sum plain."
        f"\nbytes rows: CPU us per command over 20,000 recorded commands (GET hit 1/2, miss 1/4, SET EX 1/4, "
        f"200-byte values), 101 rounds, without and with value sizes (goal <= {BYTES_GOAL_ADDED_US} us added "
        "each; no ratio goal)"
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())
