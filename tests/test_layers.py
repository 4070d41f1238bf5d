"""The layers of ARCHITECTURE.md hold: every import of every module goes down (or sideways), never up.

``core → networks → engine → controllers → parking → scenarios``; a module may import its own
layer or a lower one, function-level imports included; controllers and parking do not import
each other. Parsed with ``ast`` (nothing is imported), so it is fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The code folders in layer order; "core" is the package root ``greenwave``.
LAYERS: tuple[str, ...] = ("core", "networks", "engine", "controllers", "parking", "scenarios")
RANK = {name: i for i, name in enumerate(LAYERS)}
# Pairs of layers that may not import each other although one ranks above the other.
APART = {frozenset({"controllers", "parking"})}


def _package_parts(path: Path) -> list[str]:
    """The package of a module file as parts: core/x.py → [greenwave], engine/a/b.py → [greenwave, engine, a]."""
    rel = path.relative_to(REPO).parts
    folder, inner = rel[0], list(rel[1:-1])
    return ["greenwave"] + ([] if folder == "core" else [folder]) + inner


def _layer_of(dotted: list[str]) -> str | None:
    """The layer of an absolute module name given as parts; None when it is not greenwave's."""
    if not dotted or dotted[0] != "greenwave":
        return None
    if len(dotted) > 1 and dotted[1] in RANK and dotted[1] != "core":
        return dotted[1]
    return "core"


def _imported_layers(path: Path) -> list[tuple[int, str, str]]:
    """(line, layer, spelled import) for every import of a greenwave module in the file, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_parts(path)
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                layer = _layer_of(alias.name.split("."))
                if layer is not None:
                    found.append((node.lineno, layer, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                targets = [base + module.split(".")] if module else [base + [a.name] for a in node.names]
            else:
                targets = [module.split(".")]
            spelled = f"from {'.' * node.level}{module} import {', '.join(a.name for a in node.names)}"
            for target in targets:
                layer = _layer_of(target)
                if layer is not None:
                    found.append((node.lineno, layer, spelled))
    return found


def _allowed(own: str, imported: str) -> bool:
    if own == imported:
        return True
    if frozenset({own, imported}) in APART:
        return False
    return RANK[imported] < RANK[own]


def layer_violations() -> list[str]:
    """Every import against the layer order, as 'file:line: layer imports layer (statement)'."""
    bad: list[str] = []
    for own in LAYERS:
        for path in sorted((REPO / own).rglob("*.py")):
            for line, imported, spelled in _imported_layers(path):
                if not _allowed(own, imported):
                    rel = path.relative_to(REPO).as_posix()
                    bad.append(f"{rel}:{line}: {own} imports {imported} ({spelled})")
    return bad


def test_every_code_folder_is_a_layer() -> None:
    for layer in LAYERS:
        assert (REPO / layer / "__init__.py").is_file(), layer


def test_the_checker_sees_relative_and_absolute_imports() -> None:
    assert _layer_of(["greenwave", "errors"]) == "core"
    assert _layer_of(["greenwave"]) == "core"
    assert _layer_of(["greenwave", "scenarios", "demand"]) == "scenarios"
    assert _layer_of(["numpy"]) is None
    assert not _allowed("controllers", "parking") and not _allowed("parking", "controllers")
    assert _allowed("parking", "engine") and not _allowed("engine", "parking")
    assert _allowed("scenarios", "parking") and _allowed("core", "core")


def test_imports_follow_the_layers() -> None:
    bad = layer_violations()
    order = " → ".join(LAYERS)
    assert not bad, f"imports against the layer order ({order}):\n" + "\n".join(bad)
