"""The ranges ``pyproject.toml`` declares are the ones the version matrix tests: each floor is the
version the ``oldest`` cell (``noxfile.OLDEST``) pins, and no core dependency has an upper cap."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli fallback of Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def oldest_pins() -> dict[str, Requirement]:
    """``OLDEST`` read from noxfile.py without importing it (nox need not be installed)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == "OLDEST" for target in targets):
            return {name: Requirement(pin) for name, pin in ast.literal_eval(value).items()}
    raise AssertionError("noxfile.py has no OLDEST")


def test_every_floor_is_the_version_the_oldest_cell_pins() -> None:
    declared = {
        requirement.name: requirement
        for requirement in map(
            Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        )
    }
    pins = oldest_pins()
    assert set(pins) == {"redis", "fakeredis", "pytest"}
    for name, pin in pins.items():
        (pinned,) = pin.specifier
        assert pinned.operator == "==", pin
        floors = [spec for spec in declared[name].specifier if spec.operator == ">="]
        assert len(floors) == 1, f"{name}: one floor, got {declared[name]}"
        assert Version(floors[0].version) == Version(pinned.version), f"{declared[name]} but the oldest cell pins {pin}"
        assert declared[name].extras == pin.extras, f"{declared[name]} vs {pin}"
        caps = [spec for spec in declared[name].specifier if spec.operator in ("<", "<=", "==", "~=", "!=")]
        assert caps == [], f"{declared[name]}: no upper caps, the newest cells test whatever is newest"
