"""Imports point down the layers only (docs/architecture.md): a module never imports one above it.

Interfaces (cli, demo, evals, serialize) -> memory -> results -> pipeline / retrieval -> backends,
embedders -> records, text, temporal, validate, types, errors, config.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "engramdb"

#: Each layer may import its own and lower layers' modules only.
LAYERS: list[set[str]] = [
    {"errors", "types", "config", "records", "text", "temporal", "validate"},
    {"backends", "embedders", "llms"},
    {"pipeline", "retrieval"},
    {"results"},
    {"profile"},
    {"memory", "portable", "importers"},
    {"access", "aio", "migrate"},
    {"cli", "cli_server", "server", "demo", "evals", "serialize", "__init__", "__main__"},
]


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for depth, names in enumerate(LAYERS):
        if top in names:
            return depth
    raise AssertionError(f"engramdb.{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> list[str]:
    package = path.relative_to(SRC).with_suffix("").parts
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("engramdb."):
                    found.append(node.module.removeprefix("engramdb."))
                continue
            base = list(package[: len(package) - node.level])
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                found.append(target)
            else:  # "from . import x" at the package root
                found += [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [
                a.name.removeprefix("engramdb.")
                for a in node.names
                if a.name.startswith("engramdb.")
            ]
    return found


MODULES = sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = ".".join(path.relative_to(SRC).with_suffix("").parts)
    depth = _layer(own)
    upward = [m for m in _imports(path) if _layer(m) > depth]
    assert not upward, f"engramdb.{own} imports {upward} from a higher layer"


def test_backends_import_neither_the_write_nor_the_read_path() -> None:
    for path in (SRC / "backends").rglob("*.py"):
        bad = [m for m in _imports(path) if m.split(".")[0] in ("pipeline", "retrieval", "memory")]
        assert not bad, f"{path.name} imports {bad}"


def test_memory_never_names_a_backend_class() -> None:
    text = (SRC / "memory.py").read_text(encoding="utf-8")
    assert "SQLiteStore" not in text and "backends.sqlite" not in text
