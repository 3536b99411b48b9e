"""Options and ini keys -> validated ``Settings``.

Every user mistake becomes one line that names the option, ini key, marker or argument
and says what was expected (pytest shows ``UsageError`` without a traceback).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

import pytest

from .checks.target_file import Target, load_targets
from .text import safe_repr
from .worker_id import worker_index

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
    ini_type: Literal["string", "paths"] = "string"  # pytest's addini type; "paths": relative to the ini file

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
        Option(
            "--cache-report",
            "cachecheck_report",
            f"a file path ending in {_REPORT_SUFFIX_TEXT} (e.g. cache.json)",
            ini_type="paths",
        ),
        Option("--cache-timing", "cachecheck_timing", f"one of {', '.join(TIMING_MODES)}"),
    )
}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachecheck", "pytest-cachecheck: test your Redis caching layer")

    def both(dest: str, help_text: str, **kwargs: Any) -> None:
        option = OPTIONS[dest]
        group.addoption(option.flag, dest=dest, default=None, help=help_text, **kwargs)
        if option.ini:  # read as text (report paths as pytest's "paths"): parse_settings validates it
            parser.addini(option.ini, help_text, type=option.ini_type, default=None)

    both("cache_backend", "isolated Redis: fake (default), server, docker, url, cluster", metavar="NAME")
    both("cache_url", "server for the url backend: redis://, rediss://, unix://, redis+cluster://", metavar="URL")
    both("cache_server_bin", "redis-server (or valkey-server) binary for server and cluster backends", metavar="PATH")
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
        raise pytest.UsageError(f"{name}: expected {OPTIONS[dest].expected}, got {safe_repr(value)}")
    return value, name


def _choice(cli: Mapping[str, Any], ini: Mapping[str, Any], dest: str, choices: Sequence[str], default: str) -> str:
    value, name = _text(cli, ini, dest)
    if value is None:
        return default
    if value not in choices:
        raise pytest.UsageError(f"{name}: expected {OPTIONS[dest].expected}, got {safe_repr(value)}")
    return value


def _flag(cli: Mapping[str, Any], ini: Mapping[str, Any], dest: str) -> bool:
    """The one boolean rule: ``True``/``False`` (an ini file writes ``true``/``false``, any case), nothing else."""
    value, name = _pick(cli, ini, dest)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in ("true", "false"):
        raise pytest.UsageError(f"{name}: expected {OPTIONS[dest].expected}, got {safe_repr(value)}")
    return text == "true"


def _reports(cli: Mapping[str, Any], ini: Mapping[str, Any]) -> tuple[str, ...]:
    """``--cache-report`` (repeatable) or the ini's paths (pytest splits them as a shell would; a list in TOML).

    A text (as a fuzz test passes it, free of pytest) is split on whitespace."""
    value, name = _pick(cli, ini, "cache_report")
    if value is None:
        return ()
    paths = value.split() if isinstance(value, str) else value
    if not isinstance(paths, list):
        raise pytest.UsageError(f"{name}: expected {OPTIONS['cache_report'].expected}, got {safe_repr(value)}")
    for path in paths:
        if isinstance(path, str) and not path.strip():
            raise pytest.UsageError(f"{name}: empty value; expected {OPTIONS['cache_report'].expected}")
        if not isinstance(path, str) or PurePath(path).suffix not in REPORT_SUFFIXES:  # '.json' has no suffix
            raise pytest.UsageError(f"{name}: expected {OPTIONS['cache_report'].expected}, got {safe_repr(path)}")
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
        raise pytest.UsageError(f"{url_name}: expected {OPTIONS['cache_url'].expected}, got {safe_repr(url)}")
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
        worker=worker,
        workers=workers,
    )


def _relative(path: Any, base: Path) -> Any:
    """A path under ``base`` as a relative text (for messages); other paths as they are."""
    if not isinstance(path, PurePath):
        return path
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def settings_from_config(config: pytest.Config) -> Settings:
    """Read every option once, at start-up, and validate it (``parse_settings``)."""
    cli = {dest: config.getoption(dest) for dest in (*OPTIONS, "cache_no_monitor")}
    ini = {option.ini: config.getini(option.ini) for option in OPTIONS.values() if option.ini}
    if pytest.version_tuple < (8,):  # pytest 7 reads an unset key as "" ([]): only pytest 8+ tells empty from unset
        ini = {key: value or None for key, value in ini.items()}
    reports = ini.get(OPTIONS["cache_report"].ini or "")
    if isinstance(reports, list):  # absolute Paths (relative to the ini file): shown relative to the invocation dir
        ini["cachecheck_report"] = [_relative(path, config.invocation_params.dir) for path in reports]
    return parse_settings(
        cli,
        ini,
        invocation_dir=config.invocation_params.dir,
        rootdir=config.rootpath,
        worker=worker_index(getattr(config, "workerinput", {}).get("workerid", "")),
        workers=int(getattr(config, "workerinput", {}).get("workercount", 1) or 1),
    )
