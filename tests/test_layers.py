"""The package's shape: every import (module level or inside a function) points down the layers, and
no function is over 80 lines.

A package may import only packages of lower layers, so the graph is a DAG with the CLI on
top, and the metrics (`evaluation`) stay a leaf any trainer or judge can use. A new
top-level module must be given a layer here, which is where its place gets decided.
"""

from __future__ import annotations

import ast
from pathlib import Path

import diffreid

PACKAGE = Path(diffreid.__file__).parent

# bottom to top; within a layer packages do not import one another
LAYERS: list[set[str]] = [
    {"__init__", "errors", "runtime"},
    {"artifacts", "config", "registry"},
    {"data", "evaluation", "scaleout", "training"},
    {"reid"},
    {"baselines", "filtering", "settings", "synthesis"},
    {"run_spec"},  # above settings: a run config's settings are checked against their registry
    {"judges", "report", "small_benchmark"},
    {"pipeline"},
    {"cli"},
    {"__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
# the metrics: numpy and faiss, nothing of diffreid but its errors and file writing
METRICS_MAY_IMPORT = {"errors", "artifacts"}


def _unit(path: Path) -> str:
    """The top-level package or module a file belongs to."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported_units(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; write diffreid.… in full")
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "diffreid":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        for target in _imported_units(path) - {unit}:
            edges.setdefault((unit, target), []).append(str(path.relative_to(PACKAGE.parent)))
    return edges


def test_every_top_level_module_has_a_layer():
    units = {_unit(p) for p in PACKAGE.rglob("*.py")}
    assert units - set(LAYER) == set(), "give each new top-level package or module a layer in LAYERS"


def test_imports_point_down_the_layers():
    upward = [f"{a} (layer {LAYER[a]}) imports {b} (layer {LAYER[b]}) in {', '.join(files)}"
              for (a, b), files in _edges().items() if LAYER[b] >= LAYER[a]]
    assert upward == []


def test_metrics_are_a_leaf():
    found = {b: files for (a, b), files in _edges().items() if a == "evaluation"}
    assert set(found) <= METRICS_MAY_IMPORT, found


def test_the_check_sees_imports_inside_functions(tmp_path):
    """A function-level import counts as much as one at the top (cycles hide there)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from diffreid.pipeline import run\n    import diffreid.cli\n")
    assert _imported_units(module) == {"pipeline", "cli"}


def test_no_function_is_over_80_lines():
    """Long functions hide several jobs; the package keeps each under 80 lines."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert long == []
