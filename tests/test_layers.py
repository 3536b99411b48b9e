"""Data flows one way (backend -> observation -> checks -> report): a lower layer never imports a higher one,
and the leaf modules every layer shares import nothing of the package (``own_commands`` aside: ``text.word``)."""

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
    "own_commands": {"text"},
}
HIGHER = {
    "backends": ("observe.instrument", "observe.monitor", "checks", "report", "config", "runtime", "plugin"),
    "observe": ("checks", "report", "config", "runtime", "plugin", "backends"),
    "checks": ("report", "config", "runtime", "plugin"),
}


def imports_of(path: Path) -> set[str]:
    """The package-relative modules ``path`` imports (``observe.commands``), type-checking-only ones included.

    ``from ..observe import instrument`` names the module ``observe.instrument`` (a name imported
    from a package is its module), ``from ..observe.commands import classify`` names ``observe.commands``.
    """
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[: len(parts) - node.level])
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_cachecheck"):
            module = node.module.removeprefix("pytest_cachecheck").lstrip(".")
        else:
            continue
        if (PACKAGE / module.replace(".", "/")).is_dir():
            found |= {f"{module}.{alias.name}".lstrip(".") for alias in node.names}
        else:
            found.add(module)
    return found


def test_a_module_imported_from_a_package_is_named_with_its_package() -> None:
    # ``from ...observe import instrument`` in a subpackage: read as ``instrument`` alone, an import
    # of a higher layer written this way (``from ..checks import targets``) would pass unseen
    found = imports_of(PACKAGE / "checks" / "consistency" / "__init__.py")
    assert {"observe.instrument", "checks.base", "checks.consistency.driver"} <= found


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_nothing_of_ours(leaf: str) -> None:
    assert imports_of(PACKAGE / f"{leaf}.py") <= LEAVES[leaf]


@pytest.mark.parametrize("layer", sorted(HIGHER))
def test_no_layer_imports_a_higher_one(layer: str) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / layer).rglob("*.py")
        for module in imports_of(path)
        if any(module == higher or module.startswith(higher + ".") for higher in HIGHER[layer])
    }
    assert wrong == set()


def test_renderers_share_formatters_instead_of_importing_each_other() -> None:
    renderers = ("terminal", "markdown", "html", "json_report")
    for name in renderers:
        others = {f"report.{other}" for other in renderers if other != name}
        assert imports_of(PACKAGE / "report" / f"{name}.py") & others == set(), name
