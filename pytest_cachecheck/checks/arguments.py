"""Marker arguments: each marker's signature declared once, every value validated by one set of rules.

A check declares its marker as a ``MarkerSpec`` of ``Param``s; ``MarkerSpec.bind`` maps the
marker's ``args``/``kwargs`` to them and turns any mistake into one ``MarkerError`` line that
names the marker, the argument and what was expected. The rules are the same for every marker:
a bool is never a number, ``None`` only where it is the documented default, a ``pattern`` is a
glob checked by ``observe.patterns.validate``, a ``command`` a Redis command name the command
table knows (with a did-you-mean for a typo such as ``FLUSHAL``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..metrics import is_finite_number
from ..observe.commands import COMMAND_NAMES, is_known
from ..observe.patterns import validate as validate_pattern
from ..text import safe_repr

KINDS = {
    "number": "a number",
    "int": "a whole number",
    "str": "a string",
    "bool": "True or False",
    "command": "a Redis command name",
    "pattern": "a glob",
}
# One or two words (``CONFIG SET``), as the server's command table spells them.
_COMMAND = re.compile(r"^[A-Z][A-Z0-9_.\-]*( [A-Z][A-Z0-9_.\-]*)?$")
_COMMAND_EXAMPLE = "a Redis command name such as 'KEYS' or 'CONFIG SET'"


def _range(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    return ""


def require_number(
    api: str, name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """A number given to a fixture method (``cache_faults.latency(ms)``), by the markers' rule: an int or
    float, never a bool, finite, in range; else one ``ValueError`` line naming the method and argument."""
    __tracebackhide__ = True  # raised into the user's test: the traceback ends at their call
    ok = is_finite_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise ValueError(f"{api}: {name} must be a number{_range(low, high, low_open)}, got {safe_repr(value)}")
    return float(value)


def is_whole_number(value: Any, low: int | None = None) -> bool:
    """An int that is not a bool (``True`` is not 1 repeat), at least ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def require_whole(api: str, name: str, value: Any, *, low: int | None = None) -> int:
    """A whole number given to a fixture method (``cache_bench.speedup(rounds=...)``), by the same rule."""
    __tracebackhide__ = True
    if not is_whole_number(value, low):
        raise ValueError(f"{api}: {name} must be a whole number{_range(low, None, False)}, got {safe_repr(value)}")
    return int(value)


class MarkerError(Exception):
    """A marker used with a wrong argument; the message is one line naming both."""


def unknown_command(value: Any) -> str | None:
    """For a well-formed command name the command table does not know: a did-you-mean hint; else None.

    Module commands (``FT.SEARCH``, any name with a dot) cannot be listed and are accepted.
    """
    name = value.upper()
    if is_known(name):
        return None
    close = difflib.get_close_matches(name.split(" ")[0], COMMAND_NAMES, n=1)
    return f"did you mean {close[0]!r}?" if close else "check its spelling (module commands have a dot: 'FT.SEARCH')"


@dataclass(frozen=True)
class Param:
    """One marker argument: its kind (one of ``KINDS``), range and default."""

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
        what = KINDS[self.kind]
        if self.low is not None and self.high is not None:
            return f"{what} from {self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what

    def check(self, marker: str, value: Any) -> Any:
        """The value if it is of this parameter's kind and in range, else one ``MarkerError`` line.

        ``None`` is accepted only where it is the documented default (``max_ms=None``: "no
        ceiling"); ``warmup=None`` or ``required=None`` is a mistake, not "use the default".
        A command name comes back upper-cased.
        """
        if value is None and self.default is None and not self.required:
            return None
        where = f"@pytest.mark.{marker}: argument"
        if self.kind == "pattern":
            problem = validate_pattern(value)
            if problem:
                raise MarkerError(f"{where} {self.name!r} must be {problem}, got {safe_repr(value)}")
            return value
        if self.kind == "command":
            # a variadic argument (cache_forbid's) is named by its value, a keyword one by its name and value
            named_by_value = self.variadic and isinstance(value, str)
            if not isinstance(value, str) or not _COMMAND.match(value.upper()):
                subject = f"{value!r}" if named_by_value else f"{self.name!r}"
                got = "" if named_by_value else f", got {safe_repr(value)}"
                raise MarkerError(f"{where} {subject} must be {_COMMAND_EXAMPLE}{got}")
            hint = unknown_command(value)
            if hint is not None:
                subject = f"{value!r}" if named_by_value else f"{self.name!r}: {safe_repr(value)}"
                raise MarkerError(f"{where} {subject} is not a Redis command; {hint}")
            return value.upper()
        ok = {
            "number": is_finite_number(value),
            "int": isinstance(value, int) and is_finite_number(value),
            "str": isinstance(value, str) and value != "",
            "bool": isinstance(value, bool),
        }[self.kind]
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            raise MarkerError(f"{where} {self.name!r} must be {self.describe()}, got {safe_repr(value)}")
        return value


@dataclass(frozen=True)
class MarkerSpec:
    """A marker's signature, validated when the test is set up.

    ``extra_check`` sees the bound arguments and returns a problem that involves more than
    one of them (``min_s`` above ``max_s``, no ceiling given), or None.
    """

    name: str
    params: tuple[Param, ...]
    help: str
    extra_check: Callable[[dict[str, Any]], str | None] | None = field(default=None, compare=False)

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
                    f"@pytest.mark.{self.name}: give at least one {variadic.name.rstrip('s')}, e.g. {self.signature()}"
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
