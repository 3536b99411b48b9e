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
from pathlib import Path, PurePath
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
REPORT_SUFFIXES = (".json", ".md", ".html")
_REPORT_SUFFIX_TEXT = ".json, .md or .html"


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


@dataclass(frozen=True)
class Option:
    """A command-line option, its ini key and what a value must be (the phrase after "expected")."""

    flag: str
    ini: str | None
    expected: str

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


OPTIONS: dict[str, Option] = {
    option.dest: option
    for option in (
        Option("--cache-backend", "cachecheck_backend", f"one of {', '.join(BACKENDS)}"),
        Option("--cache-url", "cachecheck_url", f"a URL starting with {', '.join(s + '://' for s in URL_SCHEMES)}"),
        Option("--cache-server-bin", "cachecheck_server_bin", "a redis-server (or valkey-server) executable"),
        Option("--cache-image", "cachecheck_image", f"a Docker image name such as {DEFAULT_IMAGE}"),
        Option("--cache-allow-nonempty", "cachecheck_allow_nonempty", "true or false"),
        Option("--cache-targets", "cachecheck_targets", "a TOML file with [[tool.cachecheck.target]] entries"),
        Option("--cache-report", "cachecheck_report", f"a file path ending in {_REPORT_SUFFIX_TEXT} (e.g. cache.json)"),
        Option("--cache-timing", "cachecheck_timing", f"one of {', '.join(TIMING_MODES)}"),
    )
}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachecheck", "pytest-cachecheck: test your Redis caching layer")

    def both(dest: str, help_text: str, **kwargs: Any) -> None:
        option = OPTIONS[dest]
        group.addoption(option.flag, dest=dest, default=None, help=help_text, **kwargs)
        if option.ini:  # read as text (a TOML list for the report): parse_settings validates it
            parser.addini(option.ini, help_text, default=None)

    both("cache_backend", "isolated Redis: fake (default), server, docker, url, cluster", metavar="NAME")
    both("cache_url", "server for the url backend: redis://, rediss://, unix://, redis+cluster://", metavar="URL")
    both(
        "cache_server_bin", "redis-server (or valkey-server) binary for server and cluster backends", metavar="PATH"
    )
    both("cache_image", f"image for the docker backend (default {DEFAULT_IMAGE})", metavar="IMAGE")
    both(
        "cache_allow_nonempty",
        "url backend: accept a non-empty database (only keys the run writes are deleted); ini: true or false",
        action="store_const",
        const=True,
    )
    both(
        "cache_targets",
        "check run-wide targets from FILE (default pyproject.toml, [tool.cachecheck])",
        metavar="FILE",
        nargs="?",
        const="pyproject.toml",
    )
    both(
        "cache_report",
        "write the cache report to PATH (.json, .md, .html); repeatable",
        metavar="PATH",
        action="append",
    )
    both(
        "cache_timing",
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


def _shown(value: Any, limit: int = 80) -> str:
    """``repr`` for a one-line message that never raises (``10**5000`` has no repr) nor runs on."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except ValueError:  # e.g. a list holding an int beyond sys.get_int_max_str_digits()
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pick(cli: Mapping[str, Any], ini: Mapping[str, Any], dest: str) -> tuple[Any, str]:
    """Command line > ini > unset (None), and the name to show: the option or ``ini <key>``.

    A value that is there but empty (``--cache-targets=``, ``cachecheck_backend =``, a CI
    variable that was never set) is a usage error, never "use the default".
    """
    option = OPTIONS[dest]
    value, name = cli.get(dest), option.flag
    if value is None and option.ini is not None:
        value, name = ini.get(option.ini), f"ini {option.ini}"
    if isinstance(value, str) and not value.strip() or value == []:
        raise pytest.UsageError(f"{name}: empty value; expected {option.expected}")
    return value, name


def _text(cli: Mapping[str, Any], ini: Mapping[str, Any], dest: str) -> tuple[str | None, str]:
    value, name = _pick(cli, ini, dest)
    if value is not None and not isinstance(value, str):
        raise pytest.UsageError(f"{name}: expected {OPTIONS[dest].expected}, got {_shown(value)}")
    return value, name


def _choice(cli: Mapping[str, Any], ini: Mapping[str, Any], dest: str, choices: Sequence[str], default: str) -> str:
    value, name = _text(cli, ini, dest)
    if value is None:
        return default
    if value not in choices:
        raise pytest.UsageError(f"{name}: expected {OPTIONS[dest].expected}, got {_shown(value)}")
    return value


def _flag(cli: Mapping[str, Any], ini: Mapping[str, Any], dest: str) -> bool:
    """The one boolean rule: ``True``/``False`` (an ini file writes ``true``/``false``, any case), nothing else."""
    value, name = _pick(cli, ini, dest)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in ("true", "false"):
        raise pytest.UsageError(f"{name}: expected {OPTIONS[dest].expected}, got {_shown(value)}")
    return text == "true"


def _reports(cli: Mapping[str, Any], ini: Mapping[str, Any]) -> tuple[str, ...]:
    """``--cache-report`` (repeatable) or the ini's whitespace-separated paths (a list in TOML)."""
    value, name = _pick(cli, ini, "cache_report")
    if value is None:
        return ()
    paths = value.split() if isinstance(value, str) else value
    if not isinstance(paths, list):
        raise pytest.UsageError(f"{name}: expected {OPTIONS['cache_report'].expected}, got {_shown(value)}")
    for path in paths:
        if isinstance(path, str) and not path.strip():
            raise pytest.UsageError(f"{name}: empty value; expected {OPTIONS['cache_report'].expected}")
        if not isinstance(path, str) or PurePath(path).suffix not in REPORT_SUFFIXES:  # '.json' has no suffix
            raise pytest.UsageError(f"{name}: expected {OPTIONS['cache_report'].expected}, got {_shown(path)}")
    return tuple(paths)


def parse_settings(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    *,
    invocation_dir: Path,
    rootdir: Path,
    worker: int = 0,
    workers: int = 1,
) -> Settings:
    """Validate raw option values (``cli`` by dest, ``ini`` by key; None: not given) into ``Settings``.

    The one place options and ini keys are checked, free of pytest's config object, so a
    fuzz test can drive it directly; every mistake is a ``pytest.UsageError`` of one line.
    """
    backend = _choice(cli, ini, "cache_backend", BACKENDS, "fake")
    url, url_name = _text(cli, ini, "cache_url")
    if url is not None and ("://" not in url or url.split("://", 1)[0] not in URL_SCHEMES):
        raise pytest.UsageError(f"{url_name}: expected {OPTIONS['cache_url'].expected}, got {_shown(url)}")
    if backend == "url" and url is None:
        raise pytest.UsageError("--cache-backend url needs --cache-url (e.g. --cache-url redis://127.0.0.1:6379/15)")
    server_bin, bin_name = _text(cli, ini, "cache_server_bin")
    server_bin = server_bin or "redis-server"
    if backend in ("server", "cluster") and shutil.which(server_bin) is None:
        raise pytest.UsageError(
            f"{bin_name}: {server_bin!r} is not an executable on PATH; install redis-server "
            "(apt-get install redis-server) or pass --cache-server-bin /path/to/redis-server"
        )
    allow_nonempty = _flag(cli, ini, "cache_allow_nonempty")
    monitor = not cli.get("cache_no_monitor")
    if backend == "url" and not monitor:
        raise pytest.UsageError(
            "--cache-no-monitor cannot be used with --cache-backend url: on a shared server the plugin "
            "deletes only the keys it saw the run write, and without observation it sees none"
        )
    reports = _reports(cli, ini)
    timing = _choice(cli, ini, "cache_timing", TIMING_MODES, "enforce")
    targets, _ = _text(cli, ini, "cache_targets")
    image, _ = _text(cli, ini, "cache_image")
    return Settings(
        backend=backend,
        url=url,
        server_bin=server_bin,
        image=image or DEFAULT_IMAGE,
        allow_nonempty=allow_nonempty,
        targets=targets,
        target_list=load_targets(targets, invocation_dir, rootdir) if targets else (),
        reports=reports,
        monitor=monitor,
        timing=timing,
        rootdir=str(rootdir),
        worker=worker,
        workers=workers,
    )


def settings_from_config(config: pytest.Config) -> Settings:
    """Read every option once, at start-up, and validate it (``parse_settings``)."""
    cli = {dest: config.getoption(dest) for dest in (*OPTIONS, "cache_no_monitor")}
    ini = {option.ini: config.getini(option.ini) for option in OPTIONS.values() if option.ini}
    if pytest.version_tuple < (8,):  # pytest 7 reads an unset key as "": only pytest 8+ tells empty from unset
        ini = {key: value or None for key, value in ini.items()}
    return parse_settings(
        cli,
        ini,
        invocation_dir=config.invocation_params.dir,
        rootdir=config.rootpath,
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
        """The value if it is of this parameter's kind and in range, else one ``MarkerError`` line.

        ``None`` is accepted only where it is the documented default (``max_ms=None``: "no
        ceiling"); ``warmup=None`` or ``required=None`` is a mistake, not "use the default".
        """
        if value is None and self.default is None and not self.required:
            return None
        ok = {
            "number": _is_finite_number(value),
            "int": isinstance(value, int) and _is_finite_number(value),
            "str": isinstance(value, str) and value != "",
            "bool": isinstance(value, bool),
            "command": isinstance(value, str) and value.strip() != "",
        }[self.kind]
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            raise MarkerError(
                f"@pytest.mark.{marker}: argument {self.name!r} must be {self.describe()}, got {_shown(value)}"
            )
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
    "max_fills": TargetMetric("count", False, "a whole number >= 0 (most fills of one key in one cold burst)"),
    "errors": TargetMetric("count", False, "a whole number >= 0 (Redis commands that failed)"),
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
        raise pytest.UsageError(
            f"{label}: expected a table of keys ([[tool.cachecheck.target]]), got {_shown(entry)}"
        )
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
        raise pytest.UsageError(f"{label}: key 'name' must be a non-empty string, got {_shown(name)}")
    if name in names:
        raise pytest.UsageError(f"{label}: key 'name' repeats an earlier target's name; give each target its own")
    limits = []
    for metric, spec in TARGET_METRICS.items():
        if metric not in entry:
            continue
        value = entry[metric]
        if not _limit_is_valid(spec.kind, value):
            raise pytest.UsageError(f"{label}: key {metric!r} must be {spec.description}, got {_shown(value)}")
        limits.append((metric, float(value) if spec.kind != "count" else value))
    if not limits:
        raise pytest.UsageError(f"{label}: sets no metric; add at least one of {', '.join(TARGET_METRICS)}")
    names.add(name)
    return Target(name, pattern, tuple(limits))


def _targets_path(path_text: str, invocation_dir: Path, rootdir: Path) -> Path:
    path = Path(path_text)
    candidates = [path] if path.is_absolute() else [invocation_dir / path, rootdir / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise pytest.UsageError(
        f"--cache-targets: file {path_text!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})"
    )


def load_targets(path_text: str, invocation_dir: Path, rootdir: Path) -> tuple[Target, ...]:
    """Read ``--cache-targets FILE`` (relative to the invocation directory, then the rootdir)."""
    path = _targets_path(path_text, invocation_dir, rootdir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"--cache-targets {path.name}: cannot read {path}: {exc}") from None
    return parse_targets(text, f"--cache-targets {path.name}")


def parse_targets(text: str, where: str) -> tuple[Target, ...]:
    """Validate ``[[tool.cachecheck.target]]`` (or top-level ``[[target]]``) entries of a TOML text.

    Every shape a TOML file can take ends in a ``Target`` tuple or one ``UsageError`` line
    starting with ``where``; an empty list of targets is an error, not "no targets".
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise pytest.UsageError(f"{where}: not valid TOML: {str(exc).splitlines()[0]}") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise pytest.UsageError(f"{where}: 'tool' must be a table ([tool.cachecheck]), got {_shown(tool)}")
    section = tool.get("cachecheck", {})
    if not isinstance(section, dict):
        raise pytest.UsageError(f"{where}: 'tool.cachecheck' must be a table, got {_shown(section)}")
    entries = section.get("target", data.get("target"))
    if entries is None:
        raise pytest.UsageError(f"{where}: no [[tool.cachecheck.target]] entries")
    if not isinstance(entries, list):
        raise pytest.UsageError(
            f"{where}: 'target' must be an array of tables ([[tool.cachecheck.target]]), got {_shown(entries)}"
        )
    if not entries:
        raise pytest.UsageError(f"{where}: 'target' is empty; add at least one [[tool.cachecheck.target]] entry")
    names: set[str] = set()
    return tuple(_parse_target(where, index, entry, names) for index, entry in enumerate(entries, start=1))
