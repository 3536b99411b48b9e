"""``@pytest.mark.cache_hit_rate(min, *, pattern="*", warmup=0)``: counts, not timings."""

from __future__ import annotations

from typing import Any

from ..observe.aggregate import compute_stats, drop_first_reads
from ..observe.patterns import MATCH_ALL
from ..text import plural
from .arguments import MarkerSpec, Param
from .base import FAILED, PASSED, Check, CheckResult, TestContext

SPEC = MarkerSpec(
    name="cache_hit_rate",
    params=(
        Param("min", "number", positional=True, required=True, low=0, high=1),
        Param("pattern", "pattern", default=MATCH_ALL),
        Param("warmup", "int", default=0, low=0),
    ),
    help="hit rate over the reads this test made (keys matching pattern, after the first warmup reads) must be >= min",
)


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    minimum, pattern, warmup = params["min"], params["pattern"], params["warmup"]
    events = drop_first_reads(context.monitor.events, pattern, warmup)
    stats = compute_stats(events, pattern)
    metrics = {"hit_rate": stats.hit_rate, "reads": stats.reads, "hits": stats.hits, "misses": stats.misses}
    if stats.local_hits:
        metrics["local_hits"] = stats.local_hits
    where = f"keys matching {pattern!r}" if pattern != "*" else "all keys"
    records = context.data.get("server_stats") or []
    # Reads inside scripts (and from unobserved clients) show only server-side: quoted beside a failure.
    server = (
        f"; {records[-1].describe()}" if records and records[-1].keyspace_hits + records[-1].keyspace_misses else ""
    )
    if stats.hit_rate is None:
        after = f" after the first {warmup} (warmup)" if warmup else ""
        if stats.writes:
            return CheckResult(
                SPEC.name,
                FAILED,
                f"cache_hit_rate: {stats.writes} writes, no reads of {where}{after}: the test filled the cache "
                f"but never read from it; call the code path that reads through the cache{server}",
                metrics,
            )
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_hit_rate: no reads of {where} were observed{after}; "
            f"the code under test must read through a redis-py client during the test{server}",
            metrics,
        )
    if stats.hit_rate >= minimum:
        return CheckResult(SPEC.name, PASSED, f"hit rate {stats.hit_rate:.1%} >= {minimum:.1%}", metrics)
    top = ", ".join(f"{shape} ({count})" for shape, count in stats.miss_shapes.most_common(3))
    return CheckResult(
        SPEC.name,
        FAILED,
        f"cache_hit_rate: hit rate {stats.hit_rate:.1%} over {stats.reads} reads of {where} "
        f"({hits_text(stats.hits, stats.local_hits)}, {plural(stats.misses, 'miss', 'misses')}) "
        f"is below the minimum {minimum:.1%}; "
        f"most misses: {top}{server}",
        metrics,
    )


def hits_text(hits: int, local_hits: int) -> str:
    """``12 hits``, or with client-side caching ``12 hits (9 local, 3 from the server)``: round trips apart."""
    if not local_hits:
        return plural(hits, "hit")
    return f"{plural(hits, 'hit')} ({local_hits} local, {hits - local_hits} from the server)"


CHECK = Check(SPEC, evaluate)
