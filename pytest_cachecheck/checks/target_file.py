"""``--cache-targets FILE``: ``[[tool.cachecheck.target]]`` entries -> validated ``Target``s.

Which keys a target may set and what each limit must be come from the metric registry
(``metrics.TARGET_METRICS``); every shape a TOML file can take ends in a ``Target`` tuple
or one ``pytest.UsageError`` line naming the file, the target and the key.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..metrics import TARGET_METRICS
from ..observe.patterns import validate as validate_pattern
from .arguments import shown

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

TARGET_KEYS = ("name", "pattern", *TARGET_METRICS)


@dataclass(frozen=True)
class Target:
    """One ``[[tool.cachecheck.target]]`` entry: limits on the run's metrics for keys matching a glob."""

    name: str
    pattern: str
    limits: tuple[tuple[str, float], ...]


def _parse_target(where: str, index: int, entry: Any, names: set[str]) -> Target:
    label = f"{where}, target #{index}"
    if not isinstance(entry, dict):
        raise pytest.UsageError(f"{label}: expected a table of keys ([[tool.cachecheck.target]]), got {shown(entry)}")
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
        raise pytest.UsageError(f"{label}: key 'pattern' must be {problem}, got {shown(pattern)}")
    name = entry.get("name", pattern)
    if not isinstance(name, str) or not name:
        raise pytest.UsageError(f"{label}: key 'name' must be a non-empty string, got {shown(name)}")
    if name in names:
        raise pytest.UsageError(f"{label}: key 'name' repeats an earlier target's name; give each target its own")
    limits = []
    for metric in TARGET_METRICS.values():
        if metric.name not in entry:
            continue
        value = entry[metric.name]
        if not metric.limit_is_valid(value):
            raise pytest.UsageError(f"{label}: key {metric.name!r} must be {metric.expected}, got {shown(value)}")
        limits.append((metric.name, value if metric.kind.name == "count" else float(value)))
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
        raise pytest.UsageError(f"{where}: 'tool' must be a table ([tool.cachecheck]), got {shown(tool)}")
    section = tool.get("cachecheck", {})
    if not isinstance(section, dict):
        raise pytest.UsageError(f"{where}: 'tool.cachecheck' must be a table, got {shown(section)}")
    entries = section.get("target", data.get("target"))
    if entries is None:
        raise pytest.UsageError(f"{where}: no [[tool.cachecheck.target]] entries")
    if not isinstance(entries, list):
        raise pytest.UsageError(
            f"{where}: 'target' must be an array of tables ([[tool.cachecheck.target]]), got {shown(entries)}"
        )
    if not entries:
        raise pytest.UsageError(f"{where}: 'target' is empty; add at least one [[tool.cachecheck.target]] entry")
    names: set[str] = set()
    return tuple(_parse_target(where, index, entry, names) for index, entry in enumerate(entries, start=1))
