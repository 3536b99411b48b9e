"""Data flows one way (backend -> observation -> checks -> report): a lower layer never imports a higher one,
and the leaf modules every layer shares import nothing of the package (the command table's ``word`` aside)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_cachecheck"
LEAVES = {
    "metrics": set(),
    "warning_types": set(),
    "interception": set(),
    "worker_id": set(),
    "text": set(),
    "own_commands": {"observe.commands"},
}
HIGHER = {
    "backends": ("observe.instrument", "observe.monitor", "checks", "report", "config", "runtime", "plugin"),
    "observe": ("checks", "report", "config", "runtime", "plugin", "backends"),
    "checks": ("report", "config", "runtime", "plugin"),
}


def imports_of(path: Path) -> set[str]:
    """The package-relative modules ``path`` imports (``observe.commands``), type-checking-only ones included."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[: len(parts) - node.level])
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if node.module is None or module in ("", "observe", "checks", "backends", "report"):
                found |= {".".join([*base, alias.name]).lstrip(".") for alias in node.names}
            else:
                found.add(module)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_cachecheck"):
            found.add(node.module.removeprefix("pytest_cachecheck").lstrip("."))
    return found


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_nothing_of_ours(leaf: str) -> None:
    assert imports_of(PACKAGE / f"{leaf}.py") <= LEAVES[leaf]


@pytest.mark.parametrize("layer", sorted(HIGHER))
def test_no_layer_imports_a_higher_one(layer: str) -> None:
    wrong = {
        f"{path.name} imports {module}"
        for path in (PACKAGE / layer).glob("*.py")
        for module in imports_of(path)
        if any(module == higher or module.startswith(higher + ".") for higher in HIGHER[layer])
    }
    assert wrong == set()


def test_renderers_share_formatters_instead_of_importing_each_other() -> None:
    renderers = ("terminal", "markdown", "html", "json_report")
    for name in renderers:
        others = {f"report.{other}" for other in renderers if other != name}
        assert imports_of(PACKAGE / "report" / f"{name}.py") & others == set(), name
