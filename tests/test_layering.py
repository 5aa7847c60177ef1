"""Imports flow one way (DESIGN.md, section 1), and this test holds them to it.

``actors`` -> ``supervision``, ``aggregates``, ``journal``; ``journal`` and
``aggregates`` never import ``actors`` or ``supervision``; ``supervision`` knows
nothing of workflows or storage; ``aggregates`` is pure domain, without storage; and
``chronik_errors``, the root error below them all, imports none of them. Every
import counts, also one under ``if TYPE_CHECKING:`` or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("journal", "aggregates", "supervision", "actors")


def modules_of(layer: str, root: Path = ROOT) -> list[Path]:
    """The source files of a package, or the one file of a top-level module."""
    if (root / layer).is_dir():
        return sorted((root / layer).rglob("*.py"))
    return [path for path in [root / f"{layer}.py"] if path.is_file()]


def imported_names(path: Path, root: Path = ROOT) -> list[tuple[int, str, str]]:
    """(line, top-level name imported, the import statement) of every import.

    A relative import stays inside its own top-level package, so it names that.
    """
    own = path.relative_to(root).parts[0].removesuffix(".py")
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [own if node.level else node.module or ""]
        else:
            continue
        found += [
            (node.lineno, name.split(".")[0], ast.unparse(node)) for name in names
        ]
    return sorted(found)


def forbidden_imports(layer: str, forbidden: set[str], root: Path = ROOT) -> list[str]:
    """Each import of a forbidden layer in ``layer``, as 'path:line: statement'."""
    return [
        f"{path.relative_to(root)}:{line}: {statement}"
        for path in modules_of(layer, root)
        for line, name, statement in imported_names(path, root)
        if name in forbidden
    ]


def assert_imports_none_of(layer: str, forbidden: set[str]) -> None:
    assert modules_of(layer), f"no modules found for {layer!r} under {ROOT}"
    offending = forbidden_imports(layer, forbidden)
    assert not offending, (
        f"{layer} must not import {', '.join(sorted(forbidden))} "
        "(DESIGN.md section 1: imports flow one way), but:\n  " + "\n  ".join(offending)
    )


def test_chronik_errors_imports_none_of_the_four_packages() -> None:
    assert_imports_none_of("chronik_errors", set(PACKAGES))


@pytest.mark.parametrize("layer", ["journal", "aggregates"])
def test_journal_and_aggregates_never_import_actors_or_supervision(layer: str) -> None:
    assert_imports_none_of(layer, {"actors", "supervision"})


def test_supervision_imports_neither_journal_aggregates_nor_actors() -> None:
    assert_imports_none_of("supervision", {"journal", "aggregates", "actors"})


def test_aggregates_does_not_import_journal() -> None:
    assert_imports_none_of("aggregates", {"journal"})


def test_the_check_names_the_module_the_line_and_the_import(tmp_path: Path) -> None:
    package = tmp_path / "supervision"
    package.mkdir()
    (package / "__init__.py").write_text("from . import _tree\n")
    (package / "_tree.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from journal._errors import JournalError\n"
        "def later() -> None:\n"
        "    import actors.cli\n"
    )

    found = forbidden_imports("supervision", {"journal", "actors"}, tmp_path)

    assert found == [
        "supervision/_tree.py:4: from journal._errors import JournalError",
        "supervision/_tree.py:6: import actors.cli",
    ]
