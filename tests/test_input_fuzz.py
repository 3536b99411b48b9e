"""Bad input never ends in a traceback, and is never silently accepted.

The fuzz tests drive the validation entry points the plugin itself uses (``parse_settings``
for options and ini keys, ``MarkerSpec.bind`` for marker arguments, ``parse_targets`` for
target files) with generated values, valid and invalid. What is valid is written down here
again, from the documented types and ranges (README "Options and ini keys", "Markers",
"Run-wide targets"), not taken from the plugin, and every outcome is compared with it:
an invalid value must give exactly one ``UsageError``/``MarkerError`` line naming the
option, key or argument; a valid one must be accepted with the value the user meant.
The pytester tests at the end show the same errors as a user sees them.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pytest_cachecheck.checks import CHECKS
from pytest_cachecheck.checks.arguments import MarkerError, require_number, require_whole
from pytest_cachecheck.checks.target_file import parse_targets
from pytest_cachecheck.config import Settings, parse_settings
from pytest_cachecheck.observe.commands import is_known
from pytest_cachecheck.text import safe_repr

FUZZ = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ---------------------------------------------------------------- the documented rules, independently


def finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def whole_number(value: Any) -> bool:
    return isinstance(value, int) and finite_number(value)


def glob(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value.count("[") == value.count("]")


def blank(value: Any) -> bool:
    return isinstance(value, str) and value.strip() == ""


# ---------------------------------------------------------------- options and ini keys

BACKENDS = {"fake", "server", "docker", "url", "cluster"}
SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://")
REPORT_EXTENSIONS = (".json", ".md", ".html")
FLAGS = {
    "cache_backend": ("--cache-backend", "cachecheck_backend"),
    "cache_url": ("--cache-url", "cachecheck_url"),
    "cache_server_bin": ("--cache-server-bin", "cachecheck_server_bin"),
    "cache_image": ("--cache-image", "cachecheck_image"),
    "cache_allow_nonempty": ("--cache-allow-nonempty", "cachecheck_allow_nonempty"),
    "cache_targets": ("--cache-targets", "cachecheck_targets"),
    "cache_report": ("--cache-report", "cachecheck_report"),
    "cache_timing": ("--cache-timing", "cachecheck_timing"),
}

GOOD_TARGETS = '[[tool.cachecheck.target]]\nname = "users"\npattern = "user:*"\nhit_rate = 0.8\n'
BAD_TARGETS = "[tool]\ncachecheck = 5\n"


def report_path_ok(path: str) -> bool:
    """A file name (not just an extension) ending in .json, .md or .html."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return dot > 0 and name[dot:] in REPORT_EXTENSIONS


MODES = st.sampled_from(["clean", "one fault", "chaos"])  # all valid / one field anything / all anything


def report_path(valid: bool) -> st.SearchStrategy[str]:
    extensions = [".json", ".md", ".html"] + ([] if valid else [".JSON", ".txt", "", "json"])
    stems = st.sampled_from(["cache", "r.1", "."]) if valid else st.text(alphabet="ab.", max_size=3)
    built = st.builds(
        lambda folder, stem, ext: folder + stem + ext,
        st.sampled_from(["", "out/", "/tmp/"]),
        stems,
        st.sampled_from(extensions),
    )
    return built if valid else built | st.sampled_from([".json", "out/.md", "/tmp/.html", "a.json.txt"])


junk = st.one_of(st.text(max_size=8), st.sampled_from(["", " ", "\t", "\n"]))
# per option: (values the README documents as valid, anything else a user might type)
VALUES: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "cache_backend": (
        st.sampled_from(["fake", "docker", "server"]),
        st.sampled_from(["FAKE", "memcached", " fake"]) | junk,
    ),
    "cache_url": (
        st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(SCHEMES), st.sampled_from(["h:1/0", "/s.sock"])),
        st.sampled_from(["http://h", "redis:/h", "://h", "127.0.0.1:6379", "REDIS://h"]) | junk,
    ),
    "cache_server_bin": (st.just("redis-server"), st.sampled_from(["/nonexistent/redis-server", "", " "])),
    "cache_image": (st.sampled_from(["redis:7-alpine", "valkey/valkey:8"]), junk),
    "cache_targets": (st.just("good.toml"), st.sampled_from(["bad.toml", "missing.toml", "", " "])),
    "cache_timing": (st.sampled_from(["enforce", "report"]), st.sampled_from(["Report", "off"]) | junk),
    "cache_allow_nonempty": (
        st.sampled_from(["true", "false", "True", "FALSE", " true "]) | st.booleans(),
        st.sampled_from(["maybe", "yes", "1", "0", "", " "]),
    ),
    "cache_report": (
        st.lists(report_path(True), min_size=1, max_size=2).map(" ".join) | st.lists(report_path(True), max_size=2),
        st.lists(report_path(False), max_size=3).map(" ".join) | st.lists(report_path(False), max_size=2),
    ),
}


@st.composite
def option_values(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A command line (by dest; None: not given) and an ini file (by key; None: not set)."""
    mode = draw(MODES)
    faulty = draw(st.sampled_from(sorted(VALUES))) if mode == "one fault" else None
    cli: dict[str, Any] = {"cache_no_monitor": draw(st.booleans())}
    ini: dict[str, Any] = {}
    for dest, (good, bad) in VALUES.items():
        key = FLAGS[dest][1]
        if dest == faulty:  # the bad value where it takes effect: on the command line, or in the ini alone
            in_cli = dest != "cache_allow_nonempty" and draw(st.booleans())
            value = draw(bad)
            cli[dest], ini[key] = (value, draw(st.none() | good)) if in_cli else (None, value)
        else:
            values = st.none() | good | bad if mode == "chaos" else st.none() | good
            cli[dest], ini[key] = draw(values), draw(values)
        if dest == "cache_allow_nonempty" and cli[dest] is not None:
            cli[dest] = True  # a flag: given or not
        elif dest == "cache_report" and isinstance(cli[dest], str):
            cli[dest] = cli[dest].split() or [""]  # repeated --cache-report PATH
    return cli, ini


def expected_settings(cli: dict[str, Any], ini: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """What the documented rules say: the settings, or the names an error may point at."""
    problems: set[str] = set()
    given: dict[str, tuple[Any, str]] = {}
    for dest, (flag, key) in FLAGS.items():
        if cli.get(dest) is not None:
            given[dest] = (cli[dest], flag)
        elif ini.get(key) is not None:
            given[dest] = (ini[key], key)
    for value, name in given.values():
        if blank(value) or value == []:
            problems.add(name)
    value, name = given.get("cache_backend", ("fake", ""))
    if value not in BACKENDS:
        problems.add(name)
    backend = value
    url, name = given.get("cache_url", (None, ""))
    if url is not None and not url.startswith(SCHEMES):
        problems.add(name)
    if backend == "url" and url is None:
        problems.add("--cache-url")
    server_bin, name = given.get("cache_server_bin", ("redis-server", ""))
    if backend in ("server", "cluster") and shutil.which(server_bin or "redis-server") is None:
        problems.add(name)
    value, name = given.get("cache_allow_nonempty", (False, ""))
    allow = value is True or (isinstance(value, str) and value.strip().lower() == "true")
    if not (isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false"))):
        problems.add(name)
    if backend == "url" and cli["cache_no_monitor"]:  # the url backend needs observation
        problems.add("--cache-no-monitor")
    value, name = given.get("cache_report", ([], ""))
    reports = value.split() if isinstance(value, str) else value
    if not all(report_path_ok(path) for path in reports):
        problems.add(name)
    timing, name = given.get("cache_timing", ("enforce", ""))
    if timing not in ("enforce", "report"):
        problems.add(name)
    targets, name = given.get("cache_targets", (None, ""))
    if targets not in (None, "good.toml"):
        problems.add("--cache-targets")
    expected = {"backend": backend, "timing": timing, "allow_nonempty": allow, "reports": tuple(reports)}
    return expected, problems


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-project")
    (folder / "good.toml").write_text(GOOD_TARGETS)
    (folder / "bad.toml").write_text(BAD_TARGETS)
    return folder


def outcome(call: Callable[[], Any], error: type[Exception]) -> tuple[Any, str | None]:
    """The result, or the error's message; any other exception propagates and fails the test."""
    try:
        return call(), None
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return None, message


@FUZZ
@given(option_values())
def test_fuzz_options_and_ini(project_dir: Path, values: tuple[dict[str, Any], dict[str, Any]]) -> None:
    cli, ini = values
    expected, problems = expected_settings(cli, ini)
    result, message = outcome(
        lambda: parse_settings(cli, ini, invocation_dir=project_dir, rootdir=project_dir), pytest.UsageError
    )
    event("invalid" if problems else "valid")
    if problems:
        assert message is not None, f"accepted invalid input {cli} {ini}: {result}"
        assert any(name in message for name in problems), f"{message!r} names none of {problems}"
    else:
        assert message is None, f"rejected valid input {cli} {ini}: {message}"
        assert isinstance(result, Settings)
        got = {"backend": result.backend, "timing": result.timing, "allow_nonempty": result.allow_nonempty}
        assert {**got, "reports": result.reports} == expected


# ---------------------------------------------------------------- marker arguments

COMMAND = re.compile(r"[A-Z][A-Z0-9_.\-]*( [A-Z][A-Z0-9_.\-]*)?")


def number(low: float, *, open_low: bool = False, high: float | None = None) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        if not finite_number(value):
            return False
        return (value > low if open_low else value >= low) and (high is None or value <= high)

    return ok


def optional(rule: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or rule(value)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def command_name(value: Any) -> bool:
    """One or two words of a Redis command the command table knows (its data, not its validator)."""
    return isinstance(value, str) and COMMAND.fullmatch(value.upper()) is not None and is_known(value)


# name -> (positional names, {argument: (rule, default, valid values)}, whole-marker rule: a token or None)
NO_DEFAULT = object()
Params = dict[str, tuple[Callable[[Any], bool], Any, st.SearchStrategy[Any]]]
FRACTION = st.floats(0, 1) | st.sampled_from([0, 1])
AT_LEAST_0 = st.floats(0, 1e6) | st.integers(0, 10**6)
ABOVE_0 = st.floats(1e-3, 1e6) | st.integers(1, 10**6)
GLOBS = st.sampled_from(["*", "user:*", "a[b]", "k?"])
COMMANDS = st.sampled_from(["GET", "get", "config set", "HGETALL", "KEYS"])
WHOLE = st.integers(0, 100)
LATENCY_CEILINGS = ("mean_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")
COST_BOUNDS = ("round_trips", "commands", "bytes")
MARKERS: dict[str, tuple[tuple[str, ...], Params, Callable[[dict[str, Any]], str | None]]] = {
    "cache_hit_rate": (
        ("min",),
        {
            "min": (number(0, high=1), NO_DEFAULT, FRACTION),
            "pattern": (glob, "*", GLOBS),
            "warmup": (lambda v: whole_number(v) and v >= 0, 0, WHOLE),
        },
        lambda a: None,
    ),
    "cache_no_stale_reads": ((), {"max_staleness_ms": (number(0), 0, AT_LEAST_0)}, lambda a: None),
    "cache_invalidation": (
        ("max_ms",),
        {
            "max_ms": (optional(number(0, open_low=True)), None, st.none() | ABOVE_0),
            "mean_ms": (optional(number(0, open_low=True)), None, st.none() | ABOVE_0),
            "o1": (is_bool, False, st.booleans()),
        },
        lambda a: "give" if a["max_ms"] is None and a["mean_ms"] is None and a["o1"] is not True else None,
    ),
    "cache_latency": (
        (),
        {
            **{name: (optional(number(0, open_low=True)), None, st.none() | ABOVE_0) for name in LATENCY_CEILINGS},
            "pattern": (glob, "*", GLOBS),
            "command": (optional(command_name), None, st.none() | COMMANDS),
        },
        lambda a: "give" if all(a[n] is None for n in LATENCY_CEILINGS) else None,
    ),
    "cache_cost": (
        (),
        {name: (optional(lambda v: whole_number(v) and v >= 0), None, st.none() | WHOLE) for name in COST_BOUNDS},
        lambda a: "give" if all(a[n] is None for n in COST_BOUNDS) else None,
    ),
    "cache_size": (
        (),
        {
            "max_value_bytes": (optional(lambda v: whole_number(v) and v >= 0), None, st.none() | WHOLE),
            "memory_kb": (optional(number(0, open_low=True)), None, st.none() | ABOVE_0),
            "pattern": (glob, "*", GLOBS),
        },
        lambda a: "give" if a["max_value_bytes"] is None and a["memory_kb"] is None else None,
    ),
    "cache_speedup": (("min",), {"min": (number(0, open_low=True), NO_DEFAULT, ABOVE_0)}, lambda a: None),
    "cache_stampede": (
        ("max_fills",),
        {"max_fills": (lambda v: whole_number(v) and v >= 1, 1, st.integers(1, 100)), "pattern": (glob, "*", GLOBS)},
        lambda a: None,
    ),
    "cache_ttl": (
        (),
        {
            "min_s": (optional(number(0)), None, st.none() | AT_LEAST_0),
            "max_s": (optional(number(0, open_low=True)), None, st.none() | ABOVE_0),
            "pattern": (glob, "*", GLOBS),
            "required": (is_bool, True, st.booleans()),
        },
        lambda a: "'min_s'" if None not in (a["min_s"], a["max_s"]) and a["min_s"] > a["max_s"] else None,
    ),
}

marker_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([10**400, -(10**400), 10**5000, 2**63, 0.5, 1.0, 1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["*", "user:*", "a[", "a[b]", "", " ", "GET", "get", "config set", "KEYS", "1x", "A B C"]),
    st.text(max_size=5),
    st.lists(st.integers(0, 2), max_size=2),
)

# values that look almost right: the documented default's "unset", bools as numbers, beyond float range
TRICKY = st.sampled_from([None, True, False, 10**400, math.nan, math.inf, -0.001, 1.0001, "", " ", "1", [1], 2.5])


@st.composite
def marker_call(draw: st.DrawFn) -> tuple[str, list[Any], dict[str, Any]]:
    """A marker's name and arguments: all documented-valid, one argument anything, or all anything."""
    name = draw(st.sampled_from(sorted(CHECKS)))
    mode = draw(MODES)
    if name == "cache_forbid":
        args = draw(st.lists(COMMANDS if mode == "clean" else COMMANDS | marker_values, max_size=3))
        return name, args, ({"commands": draw(marker_values)} if mode == "chaos" and draw(st.booleans()) else {})
    positional, params, _ = MARKERS[name]
    if mode == "chaos":
        args = draw(st.lists(marker_values, max_size=2))
        keys = draw(st.lists(st.sampled_from([*params, "patern", "commands"]), max_size=3, unique=True))
        return name, args, {key: draw(marker_values) for key in keys}
    chosen = {
        key: draw(valid) for key, (_, default, valid) in params.items() if default is NO_DEFAULT or draw(st.booleans())
    }
    if mode == "one fault":
        key = draw(st.sampled_from([*params, "patern"]))
        chosen[key] = draw(TRICKY | marker_values)
    args = []
    for key in positional:
        if key in chosen and draw(st.booleans()):
            args.append(chosen.pop(key))
        else:
            break
    return name, args, chosen


def marker_problems(name: str, args: list[Any], kwargs: dict[str, Any]) -> set[str]:
    """Tokens one of which an error message must contain; empty: the call is valid."""
    if name == "cache_forbid":
        problems = {f"{key!r}" for key in kwargs}
        if not args:
            problems.add("at least one")
        problems |= {"command" for value in args if not command_name(value)}
        return problems
    positional, params, whole = MARKERS[name]
    problems = set()
    if len(args) > len(positional):
        return {"positional"}
    given = dict(zip(positional, args))
    for key, value in kwargs.items():
        if key not in params:
            problems.add(f"{key!r}")
        elif key in given:
            problems.add(f"{key!r}")
        else:
            given[key] = value
    if problems:
        return problems
    for key, (rule, default, _) in params.items():
        if key not in given:
            if default is NO_DEFAULT:
                problems.add(f"{key!r}")
            given[key] = default
        elif not rule(given[key]):
            problems.add(f"{key!r}")
    if not problems and (token := whole(given)):
        problems.add(token)
    return problems


@FUZZ
@given(marker_call())
def test_fuzz_marker_arguments(call: tuple[str, list[Any], dict[str, Any]]) -> None:
    name, args, kwargs = call
    problems = marker_problems(name, args, kwargs)
    bound, message = outcome(lambda: CHECKS[name].spec.bind(args, kwargs), MarkerError)
    event(f"{name}: {'invalid' if problems else 'valid'}")
    if problems:
        assert message is not None, f"accepted invalid {name}(*{args}, **{kwargs}): {bound}"
        assert message.startswith(f"@pytest.mark.{name}"), message
        assert any(token in message for token in problems), f"{message!r} names none of {problems}"
    else:
        assert message is None, f"rejected valid {name}(*{args}, **{kwargs}): {message}"
        if name == "cache_forbid":
            assert bound == {"commands": tuple(value.upper() for value in args)}
        else:
            positional, params, _ = MARKERS[name]
            given = {**dict(zip(positional, args)), **kwargs}
            expected = {key: given.get(key, default) for key, (_, default, _) in params.items()}
            if expected.get("command") is not None:
                expected["command"] = expected["command"].upper()
            assert bound == expected


TRICKY_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    10**400,
    10**5000,
    math.nan,
    math.inf,
    -0.001,
    1.0001,
    0.5,
    "",
    " ",
    "1",
    [1],
]


def test_every_argument_with_every_tricky_value() -> None:
    """The fuzz's rare corners, exhaustively: each argument of each marker alone set to each value."""
    cases = 0
    for name, (positional, params, _) in MARKERS.items():
        required = {key: 0.5 for key in positional if params[key][1] is NO_DEFAULT}
        for key in params:
            for value in TRICKY_VALUES:
                kwargs = {**required, key: value}
                if name == "cache_invalidation" and key != "o1":
                    kwargs["o1"] = True  # so that max_ms alone decides
                problems = marker_problems(name, [], kwargs)
                bound, message = outcome(lambda: CHECKS[name].spec.bind([], kwargs), MarkerError)  # noqa: B023
                assert (message is not None) == bool(problems), f"{name}({kwargs}): {message or bound}"
                cases += 1
    assert cases == 476  # every (marker, argument, value) triple: 28 arguments x 17 values


# ---------------------------------------------------------------- target files

LIMITS: dict[str, Callable[[Any], bool]] = {
    "hit_rate": number(0, high=1),
    **{key: number(0, open_low=True) for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "invalidation_ms")},
    "stale_reads": lambda v: whole_number(v) and v >= 0,
    "keys_without_ttl": lambda v: whole_number(v) and v >= 0,
    "speedup": number(0, open_low=True),
    "max_fills": lambda v: whole_number(v) and v >= 0,
    "errors": lambda v: whole_number(v) and v >= 0,
}
WHERE = "--cache-targets pyproject.toml"


def toml(value: Any) -> str:
    """A TOML value (inline tables and arrays; ASCII strings, so JSON escapes are TOML escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(key)} = {toml(item)}" for key, item in value.items()) + "}"


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-2, 3),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.0, 1.5, 0.0, 250.0]),
    st.text(alphabet="ab:*[]", max_size=4),
)
VALID_LIMITS = {
    "hit_rate": FRACTION,
    **{key: ABOVE_0 for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "invalidation_ms", "speedup")},
    "stale_reads": WHOLE,
    "keys_without_ttl": WHOLE,
}


@st.composite
def entry(draw: st.DrawFn, mode: str) -> dict[str, Any]:
    """One target: documented-valid, with one key anything, or any keys and values."""
    if mode == "chaos":
        keys = st.sampled_from(["name", "pattern", *LIMITS, "hitrate", "p90_ms"])
        return draw(st.dictionaries(keys, toml_scalars | st.lists(toml_scalars, max_size=1), max_size=4))
    metrics = draw(st.lists(st.sampled_from(sorted(VALID_LIMITS)), min_size=1, max_size=3, unique=True))
    item = {metric: draw(VALID_LIMITS[metric]) for metric in metrics}
    if draw(st.booleans()):
        item["pattern"] = draw(GLOBS)
    item["name"] = draw(st.text(alphabet="abcdefgh", min_size=1, max_size=6))
    if mode == "one fault":
        item[draw(st.sampled_from(["name", "pattern", *LIMITS, "hitrate"]))] = draw(toml_scalars)
    return item


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(MODES)
    items = draw(st.lists(entry(mode), min_size=0 if mode == "chaos" else 1, max_size=3))
    if mode != "chaos":
        return {"tool": {"cachecheck": {"target": items}}} if draw(st.booleans()) else {"target": items}
    return draw(
        st.sampled_from(
            [
                {"tool": {"cachecheck": {"target": items + [draw(toml_scalars)]}}},
                {"target": items},
                {"target": draw(toml_scalars)},
                {"tool": draw(toml_scalars)},
                {"tool": {"cachecheck": draw(toml_scalars)}},
                {"tool": {"cachecheck": {"other": 1}}},
            ]
        )
    )


def document_is_valid(data: dict[str, Any]) -> bool:
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or not isinstance(tool.get("cachecheck", {}), dict):
        return False
    items = tool.get("cachecheck", {}).get("target", data.get("target"))
    if not isinstance(items, list) or not items:
        return False
    names = []
    for item in items:
        if not isinstance(item, dict) or not set(item) <= {"name", "pattern", *LIMITS}:
            return False
        pattern = item.get("pattern", "*")
        names.append(item.get("name", pattern))
        limits = [key for key in item if key in LIMITS]
        if not glob(pattern) or not isinstance(names[-1], str) or names[-1] == "" or not limits:
            return False
        if not all(LIMITS[key](item[key]) for key in limits):
            return False
    return len(set(names)) == len(names)


@FUZZ
@given(documents())
def test_fuzz_target_files(data: dict[str, Any]) -> None:
    text = "\n".join(f"{json.dumps(key)} = {toml(value)}" for key, value in data.items())
    targets, message = outcome(lambda: parse_targets(text, WHERE), pytest.UsageError)
    event("valid" if document_is_valid(data) else "invalid")
    if document_is_valid(data):
        assert message is None, f"rejected valid {text!r}: {message}"
        assert len(targets) == len(data.get("tool", {}).get("cachecheck", {}).get("target", data.get("target")))
    else:
        assert message is not None, f"accepted invalid {text!r}: {targets}"
        assert message.startswith(WHERE), message


@FUZZ
@given(st.text(alphabet='[]="\n ab1.tool', max_size=30))
def test_fuzz_target_file_text(text: str) -> None:
    """Any text at all, TOML or not: a result or one line, never a traceback."""
    _, message = outcome(lambda: parse_targets(text, WHERE), pytest.UsageError)
    assert message is None or message.startswith(WHERE)


# ---------------------------------------------------------------- as a user sees them (pytester)


def assert_one_clean_line(result: pytest.RunResult, line: str) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert output.count(line) == 1, output
    for noise in ("Traceback", "INTERNALERROR", "During handling", "pytest_cachecheck/"):
        assert noise not in output, output


@pytest.mark.parametrize(
    ("args", "ini", "line"),
    [
        (
            ["--cache-report", ".json"],
            "",
            "ERROR: --cache-report: expected a file path ending in .json, .md or .html (e.g. cache.json), got '.json'",
        ),
        (
            ["--cache-backend="],
            "",
            "ERROR: --cache-backend: empty value; expected one of fake, server, docker, url, cluster",
        ),
        (["--cache-timing="], "", "ERROR: --cache-timing: empty value; expected one of enforce, report"),
        (
            ["--cache-targets="],
            "",
            "ERROR: --cache-targets: empty value; expected a TOML file with [[tool.cachecheck.target]] entries",
        ),
        (
            [],
            "cachecheck_allow_nonempty = maybe",
            "ERROR: ini cachecheck_allow_nonempty: expected true or false, got 'maybe'",
        ),
        pytest.param(
            [],
            "cachecheck_timing =",
            "ERROR: ini cachecheck_timing: empty value; expected one of enforce, report",
            marks=pytest.mark.skipif(
                int(pytest.__version__.split(".")[0]) < 8, reason="pytest 7 reads an empty ini value as unset"
            ),
        ),
    ],
    ids=["report-suffix-only", "empty-backend", "empty-timing", "empty-targets", "ini-bool", "ini-empty"],
)
def test_bad_options_are_one_usage_line(pytester: pytest.Pytester, args: list[str], ini: str, line: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_one_clean_line(result, line)


@pytest.mark.parametrize(
    ("toml_text", "line"),
    [
        ("tool = 5\n", "ERROR: --cache-targets targets.toml: 'tool' must be a table ([tool.cachecheck]), got 5"),
        (
            "target = []\n",
            "ERROR: --cache-targets targets.toml: 'target' is empty; add at least one [[tool.cachecheck.target]] entry",
        ),
    ],
    ids=["tool-not-a-table", "no-targets"],
)
def test_bad_target_files_are_one_usage_line(pytester: pytest.Pytester, toml_text: str, line: str) -> None:
    pytester.makefile(".toml", targets=toml_text)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-targets", "targets.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_one_clean_line(result, line)


@pytest.mark.parametrize("test_path", ["sub", "sub/test_a.py", "sub/test_a.py::test_a"])
def test_cache_targets_does_not_swallow_a_test_path(pytester: pytest.Pytester, test_path: str) -> None:
    """``--cache-targets`` alone means pyproject.toml, so argparse hands it the test path after it:
    one line that says what to write, not "file not found (looked in D, D)"."""
    pytester.makepyfile(**{"sub/test_a": "def test_a():\n    pass\n"})
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-targets", test_path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_one_clean_line(
        result,
        f"ERROR: --cache-targets: {test_path!r} is a test path, not a targets file; write --cache-targets=FILE, "
        f"or put --cache-targets after the test paths (pytest {test_path} --cache-targets)",
    )
    missing = pytester.runpytest("-p", "no:cacheprovider", "--cache-targets", "nothere.toml")
    assert_one_clean_line(missing, f"ERROR: --cache-targets: file 'nothere.toml' not found (looked in {pytester.path})")


def test_report_ini_paths_are_pytest_paths(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cachecheck_report`` is pytest's ``paths`` type: split as a shell would (a quoted path with a space),
    relative to the ini file's directory, whatever directory pytest runs from."""
    pytester.makeini("[pytest]\ncachecheck_report = out/run.json 'with space.md'\n")
    pytester.makepyfile(**{"sub/test_a": "def test_a(cache_redis):\n    cache_redis.get('a')\n"})
    result = pytester.runpytest("-p", "no:cacheprovider", "sub")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cache report written in * s: out/run.json, with space.md"])
    monkeypatch.chdir(pytester.path / "sub")
    (pytester.path / "out" / "run.json").unlink()
    below = pytester.runpytest("-p", "no:cacheprovider")
    below.assert_outcomes(passed=1)
    below.stdout.fnmatch_lines(
        [f"cache report written in * s: {pytester.path}/out/run.json, {pytester.path}/with space.md"]
    )
    assert (pytester.path / "out" / "run.json").is_file() and (pytester.path / "with space.md").is_file()
    assert not (pytester.path / "sub" / "out").exists()


def test_bad_marker_arguments_error_once_each(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app=textwrap.dedent(
            """
            import pytest

            @pytest.mark.cache_hit_rate(0.5, warmup=None)
            def test_warmup(cache_redis):
                cache_redis.get("a")

            @pytest.mark.cache_no_stale_reads(max_staleness_ms=None)
            def test_staleness_none(cache_consistency):
                pass

            @pytest.mark.cache_no_stale_reads(max_staleness_ms=10**400)
            def test_staleness_huge(cache_consistency):
                pass

            @pytest.mark.cache_ttl(required=None)
            def test_required(cache_redis):
                cache_redis.set("no-ttl", 1)

            @pytest.mark.cache_invalidation(o1=None)
            def test_o1(cache_invalidation):
                pass
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rN")
    result.assert_outcomes(errors=5)
    for line in (
        "@pytest.mark.cache_hit_rate: argument 'warmup' must be a whole number >= 0, got None",
        "@pytest.mark.cache_no_stale_reads: argument 'max_staleness_ms' must be a number >= 0, got None",
        "@pytest.mark.cache_no_stale_reads: argument 'max_staleness_ms' must be a number >= 0, "
        "got an int of about 401 digits",
        "@pytest.mark.cache_ttl: argument 'required' must be True or False, got None",
        "@pytest.mark.cache_invalidation: argument 'o1' must be True or False, got None",
    ):
        assert_one_clean_line(result, line)


def test_valid_ini_boolean_is_still_accepted(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncachecheck_allow_nonempty = True\ncachecheck_timing = report\n")
    pytester.makepyfile("def test_uses_redis(cache_redis):\n    cache_redis.set('a', 1)\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def repr_id(value: Any) -> str:
    return safe_repr(value, limit=24)


@pytest.mark.parametrize(
    "value", [True, False, math.nan, math.inf, -math.inf, 10**400, "3", None, [3], 2.5], ids=repr_id
)
def test_fixture_method_numbers_follow_the_marker_rule(value: Any) -> None:
    """One rule for numbers everywhere: a bool is not a number, nor is an infinite or non-finite one
    (``cache_faults.latency(ms=inf)`` would sleep forever), nor text; a whole number is an int."""
    if value != 2.5:
        with pytest.raises(ValueError, match=r"^cache_faults\.latency: ms must be a number >= 0, got "):
            require_number("cache_faults.latency", "ms", value, low=0)
    if value != 10**400:
        with pytest.raises(ValueError, match=r"^cache_bench\.speedup: rounds must be a whole number >= 3, got "):
            require_whole("cache_bench.speedup", "rounds", value, low=3)
    assert require_number("x", "n", 2, low=0, high=3) == 2.0 and require_whole("x", "n", 3, low=3) == 3
