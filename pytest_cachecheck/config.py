"""Options and ini keys -> validated ``Settings``; marker argument specs and their validation.

Every user mistake becomes one line that names the option, ini key, marker or argument
and says what was expected (pytest shows ``UsageError`` without a traceback).
"""

from __future__ import annotations

import difflib
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .backends.base import worker_index
from .observe.patterns import validate as validate_pattern

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

BACKENDS = ("fake", "server", "docker", "url", "cluster")
URL_SCHEMES = ("redis", "rediss", "unix", "redis+cluster")
DEFAULT_IMAGE = "redis:7-alpine"
TIMING_MODES = ("enforce", "report")


@dataclass(frozen=True)
class Settings:
    backend: str = "fake"
    url: str | None = None
    server_bin: str = "redis-server"
    image: str = DEFAULT_IMAGE
    allow_nonempty: bool = False
    targets: str | None = None
    reports: tuple[str, ...] = ()
    monitor: bool = True
    timing: str = "enforce"
    rootdir: str = "."
    worker: int = 0
    workers: int = 1  # xdist workers in the run (1 without xdist)
    target_list: tuple[Target, ...] = ()

    @property
    def enforce_timing(self) -> bool:
        """``--cache-timing enforce``: clock-measured checks and targets fail when missed."""
        return self.timing == "enforce"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachecheck", "pytest-cachecheck: test your Redis caching layer")

    def both(option: str, ini: str | None, help_text: str, ini_type: str | None = None, **kwargs: Any) -> None:
        group.addoption(option, dest=option[2:].replace("-", "_"), default=None, help=help_text, **kwargs)
        if ini:
            parser.addini(ini, help_text, type=ini_type, default=None)  # type: ignore[arg-type]

    both(
        "--cache-backend",
        "cachecheck_backend",
        "isolated Redis: fake (default), server, docker, url, cluster",
        metavar="NAME",
    )
    both(
        "--cache-url",
        "cachecheck_url",
        "server for the url backend: redis://, rediss://, unix://, redis+cluster://",
        metavar="URL",
    )
    both(
        "--cache-server-bin",
        "cachecheck_server_bin",
        "redis-server (or valkey-server) binary for server and cluster backends",
        metavar="PATH",
    )
    both(
        "--cache-image", "cachecheck_image", f"image for the docker backend (default {DEFAULT_IMAGE})", metavar="IMAGE"
    )
    both(
        "--cache-allow-nonempty",
        "cachecheck_allow_nonempty",
        "url backend: accept a non-empty database (only keys the run writes are deleted)",
        ini_type="bool",
        action="store_const",
        const=True,
    )
    both(
        "--cache-targets",
        "cachecheck_targets",
        "check run-wide targets from FILE (default pyproject.toml, [tool.cachecheck])",
        metavar="FILE",
        nargs="?",
        const="pyproject.toml",
    )
    both(
        "--cache-report",
        "cachecheck_report",
        "write the cache report to PATH (.json, .md, .html); repeatable",
        metavar="PATH",
        action="append",
    )
    both(
        "--cache-timing",
        "cachecheck_timing",
        "enforce (default): wall-clock checks (latency, speedup, invalidation time) fail tests and targets; "
        "report: they are shown and warned about, never failing (counts, hit rates, stale reads still fail)",
        metavar="MODE",
    )
    group.addoption(
        "--cache-no-monitor",
        dest="cache_no_monitor",
        action="store_true",
        default=False,
        help="do not instrument Redis clients (zero overhead; markers that need data then error)",
    )


def _pick(config: pytest.Config, dest: str, ini: str) -> Any:
    """Command line > ini > None."""
    value = config.getoption(dest)
    if value is None:
        value = config.getini(ini)
    return value if value not in ("", []) else None


def settings_from_config(config: pytest.Config) -> Settings:
    """Read and validate every option once, at start-up."""
    backend = _pick(config, "cache_backend", "cachecheck_backend") or "fake"
    if backend not in BACKENDS:
        raise pytest.UsageError(f"--cache-backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    url = _pick(config, "cache_url", "cachecheck_url")
    if url is not None:
        scheme = str(url).split("://", 1)[0] if "://" in str(url) else ""
        if scheme not in URL_SCHEMES:
            raise pytest.UsageError(
                f"--cache-url: expected a URL starting with {', '.join(s + '://' for s in URL_SCHEMES)}, got {url!r}"
            )
    if backend == "url" and url is None:
        raise pytest.UsageError("--cache-backend url needs --cache-url (e.g. --cache-url redis://127.0.0.1:6379/15)")
    server_bin = _pick(config, "cache_server_bin", "cachecheck_server_bin") or "redis-server"
    if backend in ("server", "cluster") and shutil.which(server_bin) is None:
        raise pytest.UsageError(
            f"--cache-server-bin: {server_bin!r} is not an executable on PATH; install redis-server "
            "(apt-get install redis-server) or pass --cache-server-bin /path/to/redis-server"
        )
    allow_nonempty = bool(_pick(config, "cache_allow_nonempty", "cachecheck_allow_nonempty"))
    monitor = not config.getoption("cache_no_monitor")
    if backend == "url" and not monitor:
        raise pytest.UsageError(
            "--cache-no-monitor cannot be used with --cache-backend url: on a shared server the plugin "
            "deletes only the keys it saw the run write, and without observation it sees none"
        )
    reports = config.getoption("cache_report") or config.getini("cachecheck_report") or []
    if isinstance(reports, str):
        reports = reports.split()
    for path in reports:
        if not str(path).endswith((".json", ".md", ".html")):
            raise pytest.UsageError(f"--cache-report: expected a path ending in .json, .md or .html, got {path!r}")
    timing = _pick(config, "cache_timing", "cachecheck_timing") or "enforce"
    if timing not in TIMING_MODES:
        raise pytest.UsageError(f"--cache-timing: expected one of {', '.join(TIMING_MODES)}, got {timing!r}")
    targets = _pick(config, "cache_targets", "cachecheck_targets")
    return Settings(
        backend=backend,
        url=url,
        server_bin=server_bin,
        image=_pick(config, "cache_image", "cachecheck_image") or DEFAULT_IMAGE,
        allow_nonempty=allow_nonempty,
        targets=targets,
        target_list=load_targets(str(targets), config) if targets else (),
        reports=tuple(str(path) for path in reports),
        monitor=monitor,
        timing=timing,
        rootdir=str(config.rootpath),
        worker=worker_index(getattr(config, "workerinput", {}).get("workerid", "")),
        workers=int(getattr(config, "workerinput", {}).get("workercount", 1) or 1),
    )


# ---------------------------------------------------------------- markers


class MarkerError(Exception):
    """A marker used with a wrong argument; the message is one line naming both."""


@dataclass(frozen=True)
class Param:
    """One marker argument: its type (``number``, ``int``, ``str``, ``bool``, ``command``) and range."""

    name: str
    kind: str
    positional: bool = False
    required: bool = False
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    variadic: bool = False

    def describe(self) -> str:
        what = {
            "number": "a number",
            "int": "a whole number",
            "str": "a string",
            "bool": "True or False",
            "command": "a Redis command name",
        }[self.kind]
        if self.low is not None and self.high is not None:
            return f"{what} from {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what

    def check(self, marker: str, value: Any) -> Any:
        if value is None and not self.required:
            return None
        ok = {
            "number": _is_finite_number(value),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str) and value != "",
            "bool": isinstance(value, bool),
            "command": isinstance(value, str) and value.strip() != "",
        }[self.kind]
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            raise MarkerError(f"@pytest.mark.{marker}: argument {self.name!r} must be {self.describe()}, got {value!r}")
        return value.upper() if self.kind == "command" else value


def _is_finite_number(value: Any) -> bool:
    """An int or float that is finite as a float (``10**400`` is not: ``math.isfinite`` overflows)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class MarkerSpec:
    """A marker's signature, validated when the test is set up."""

    name: str
    params: tuple[Param, ...]
    help: str
    extra_check: Any = field(default=None, compare=False)

    def signature(self) -> str:
        parts, star = [], False
        for param in self.params:
            if param.variadic:
                parts.append(f"*{param.name}")
                star = True
                continue
            if not param.positional and not star:
                parts.append("*")
                star = True
            parts.append(param.name if param.required else f"{param.name}={param.default!r}")
        return f"{self.name}({', '.join(parts)})"

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Map the marker's arguments to parameters, checking count, names, types and ranges."""
        bound: dict[str, Any] = {}
        positional = [param for param in self.params if param.positional or param.variadic]
        variadic = next((param for param in positional if param.variadic), None)
        if variadic is not None:
            bound[variadic.name] = tuple(variadic.check(self.name, value) for value in args)
            if not args and variadic.required:
                raise MarkerError(
                    f"@pytest.mark.{self.name}: give at least one {variadic.name.rstrip('s')}, "
                    f"e.g. {self.signature()}"
                )
        else:
            if len(args) > len(positional):
                raise MarkerError(
                    f"@pytest.mark.{self.name}: takes {len(positional)} positional argument(s), "
                    f"got {len(args)}; signature {self.signature()}"
                )
            for param, value in zip(positional, args):
                bound[param.name] = value
        known = {param.name: param for param in self.params}
        for name, value in kwargs.items():
            if name not in known or known[name].variadic:
                raise MarkerError(f"@pytest.mark.{self.name}: unknown argument {name!r}; signature {self.signature()}")
            if name in bound:
                raise MarkerError(f"@pytest.mark.{self.name}: argument {name!r} given twice")
            bound[name] = value
        for param in self.params:
            if param.variadic:
                continue
            if param.name not in bound:
                if param.required:
                    raise MarkerError(
                        f"@pytest.mark.{self.name}: missing argument {param.name!r}; signature {self.signature()}"
                    )
                bound[param.name] = param.default
            bound[param.name] = param.check(self.name, bound[param.name])
        if self.extra_check is not None:
            problem = self.extra_check(bound)
            if problem:
                raise MarkerError(f"@pytest.mark.{self.name}: {problem}")
        return bound


# ---------------------------------------------------------------- run-wide targets (--cache-targets)


@dataclass(frozen=True)
class TargetMetric:
    """A metric a target may set: how its limit is read and compared."""

    kind: str  # "fraction", "ms", "count" or "ratio"
    minimum: bool  # True: the measured value must be >= the limit; False: <=
    description: str
    timing: bool = False  # measured with a clock: --cache-timing report shows a miss without failing


TARGET_METRICS: dict[str, TargetMetric] = {
    "hit_rate": TargetMetric("fraction", True, "a number from 0 to 1 (fraction of reads that hit)"),
    "p50_ms": TargetMetric("ms", False, "a number of milliseconds > 0", timing=True),
    "p95_ms": TargetMetric("ms", False, "a number of milliseconds > 0", timing=True),
    "p99_ms": TargetMetric("ms", False, "a number of milliseconds > 0", timing=True),
    "max_ms": TargetMetric("ms", False, "a number of milliseconds > 0", timing=True),
    "invalidation_ms": TargetMetric("ms", False, "a number of milliseconds > 0", timing=True),
    "stale_reads": TargetMetric("count", False, "a whole number >= 0"),
    "keys_without_ttl": TargetMetric("count", False, "a whole number >= 0"),
    "speedup": TargetMetric("ratio", True, "a number > 0 (cached/uncached ratio)", timing=True),
}
TARGET_KEYS = ("name", "pattern", *TARGET_METRICS)


@dataclass(frozen=True)
class Target:
    """One ``[[tool.cachecheck.target]]`` entry: limits on the run's metrics for keys matching a glob."""

    name: str
    pattern: str
    limits: tuple[tuple[str, float], ...]


def _limit_is_valid(kind: str, value: Any) -> bool:
    if not _is_finite_number(value):
        return False
    if kind == "fraction":
        return 0 <= value <= 1
    if kind == "count":
        return isinstance(value, int) and value >= 0
    return value > 0


def _parse_target(where: str, index: int, entry: Any, names: set[str]) -> Target:
    label = f"{where}, target #{index}"
    if not isinstance(entry, dict):
        raise pytest.UsageError(f"{label}: expected a table of keys ([[tool.cachecheck.target]]), got {entry!r}")
    if isinstance(entry.get("name"), str) and entry["name"]:
        label = f"{where}, target {entry['name']!r}"
    for key in entry:
        if key not in TARGET_KEYS:
            close = difflib.get_close_matches(key, TARGET_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(TARGET_KEYS)}"
            raise pytest.UsageError(f"{label}: unknown key {key!r}; {hint}")
    pattern = entry.get("pattern", "*")
    problem = validate_pattern(pattern)
    if problem:
        raise pytest.UsageError(f"{label}: key 'pattern' must be {problem}")
    name = entry.get("name", pattern)
    if not isinstance(name, str) or not name:
        raise pytest.UsageError(f"{label}: key 'name' must be a non-empty string, got {name!r}")
    if name in names:
        raise pytest.UsageError(f"{label}: key 'name' repeats an earlier target's name; give each target its own")
    limits = []
    for metric, spec in TARGET_METRICS.items():
        if metric not in entry:
            continue
        value = entry[metric]
        if not _limit_is_valid(spec.kind, value):
            raise pytest.UsageError(f"{label}: key {metric!r} must be {spec.description}, got {value!r}")
        limits.append((metric, float(value) if spec.kind != "count" else value))
    if not limits:
        raise pytest.UsageError(f"{label}: sets no metric; add at least one of {', '.join(TARGET_METRICS)}")
    names.add(name)
    return Target(name, pattern, tuple(limits))


def _targets_path(path_text: str, config: pytest.Config) -> Path:
    path = Path(path_text)
    candidates = [path] if path.is_absolute() else [config.invocation_params.dir / path, config.rootpath / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise pytest.UsageError(
        f"--cache-targets: file {path_text!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})"
    )


def load_targets(path_text: str, config: pytest.Config) -> tuple[Target, ...]:
    """Read and validate ``[[tool.cachecheck.target]]`` (or top-level ``[[target]]``) from a TOML file."""
    path = _targets_path(path_text, config)
    where = f"--cache-targets {path.name}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"{where}: not valid TOML: {exc}") from None
    section = data.get("tool", {}).get("cachecheck", {})
    entries = section.get("target", data.get("target")) if isinstance(section, dict) else None
    if entries is None:
        raise pytest.UsageError(f"{where}: no [[tool.cachecheck.target]] entries in {path}")
    if not isinstance(entries, list):
        raise pytest.UsageError(f"{where}: 'target' must be an array of tables ([[tool.cachecheck.target]])")
    names: set[str] = set()
    return tuple(_parse_target(where, index, entry, names) for index, entry in enumerate(entries, start=1))
