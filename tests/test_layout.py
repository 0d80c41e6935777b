"""The layout holds: rooms by pipeline stage, imports that never go up or round in circles, short
modules, thin tools, metrics without torch, and tests that mirror the package."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "show_attend"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every show_attend module a file imports (at module level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("show_attend")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("show_attend"):
                if node.module is None:  # `from . import module`: the module, not its package
                    out |= {f"{target}.{a.name}" for a in node.names}
                else:
                    out.add(target)
                    out |= {f"{target}.{a.name}" for a in node.names}  # `from pkg import module`
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in out if m in modules}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "show_attend"


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_upward():
    """A module never imports a package it sits in (its parents' __init__): that is how cycles start."""
    for module, targets in _graph().items():
        parents = {".".join(module.split(".")[:i]) for i in range(1, len(module.split(".")))}
        assert not (targets & parents), f"{module} imports its parent package {targets & parents}"


def test_rooms_form_no_cycle():
    edges: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        if module == "show_attend":
            continue  # the public API's lazy re-exports
        edges.setdefault(_room(module), set()).update(_room(t) for t in targets if _room(t) != _room(module))
    state: dict[str, int] = {}

    def visit(room: str, path: list[str]) -> None:
        state[room] = 1
        for nxt in sorted(edges.get(room, ())):
            assert state.get(nxt) != 1, "import cycle between rooms: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[room] = 2

    for room in sorted(edges):
        if room not in state:
            visit(room, [room])
    # the stages below the model never reach up into the stages that use them
    for low in ("utils", "config", "metrics", "model"):
        assert not edges.get(low, set()) & {"training", "evaluation", "viz", "cli", "api", "checkpoint"}, low


def test_modules_are_short_and_tools_are_thin():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
    thick = {p.name: n for p in (REPO / "tools").glob("*.py") if (n := len(p.read_text().splitlines())) >= 15}
    assert not thick, f"tools/*.py must stay under 15 lines: {thick}"


def test_metrics_and_geometry_import_no_torch():
    code = ("import sys, show_attend.metrics, show_attend.model.geometry, show_attend.evaluation.tables; "
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tests_mirror_the_package():
    """Each subpackage has its test folder; no test file sits in a folder the package does not have."""
    rooms = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    test_rooms = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and p.name != "fixtures"}
    assert test_rooms <= rooms, test_rooms - rooms
    assert {"model", "data", "metrics", "evaluation", "viz", "training", "cli", "utils"} <= test_rooms
