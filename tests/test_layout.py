"""The house's floor plan, checked: the trust boundary as folders, imports that point one way, no
circles, and rooms small enough to read at once (README, "Layout")."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "autograder"
# Every module of the grader outside its hidden tests and their kit, by dotted name.
ROOMS = {".".join(f.relative_to(REPO).with_suffix("").parts): f
         for sub in ("", "sandbox", "core", "platforms") for f in sorted((PKG / sub).glob("*.py"))}
MAX_LINES, MAX_FUNCTION = 420, 80


def imports_of(name: str, path: Path) -> set[str]:
    """The modules ``name`` imports (at any depth: function-level imports count), resolved to dotted
    names; a relative import is resolved against the module's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import module`
    return out


def grader_imports(name: str) -> set[str]:
    """The grader's own modules and packages that ``name`` imports (``from core.api import x``: core.api)."""
    out = set()
    for m in imports_of(name, ROOMS[name]):
        while m and m not in ROOMS and m.startswith("autograder.") and m.rpartition(".")[0] + ".__init__" != m:
            if f"{m}.__init__" in ROOMS:
                break
            m = m.rpartition(".")[0]
        if m.startswith("autograder"):
            out.add(m)
    return out


def test_the_sandbox_package_imports_nothing_of_the_trusted_side():
    """What enters the sandbox (a copy of autograder/sandbox/) can import only itself: a trusted module
    imported there would be trusted code beside the student's bytes, and could not even be found."""
    side = {n for n in ROOMS if n.startswith("autograder.sandbox")}
    assert {"autograder.sandbox.zygote", "autograder.sandbox.child", "autograder.sandbox.wire"} <= side
    for name in side:
        bad = {m for m in imports_of(name, ROOMS[name])
               if m.startswith("autograder") and not m.startswith("autograder.sandbox")}
        assert not bad, f"{name} imports {sorted(bad)}: the sandbox side may import nothing of the trusted side"
        tree = ast.parse(ROOMS[name].read_text())
        absolute_own = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level
                        and (n.module or "").split(".")[0] in ("sandbox", "autograder")]
        assert not absolute_own, f"{name}: imports its own package by name ({absolute_own}); use relative imports"


def test_the_trusted_side_enters_the_sandbox_only_through_its_wire_format_and_reaper():
    """The trusted side may use the wire format and the reaper; never the zygote, the child or the
    guards (code that only ever runs beside student bytes)."""
    for name in ROOMS:
        if name.startswith("autograder.sandbox"):
            continue
        side = {m for m in grader_imports(name) if m.startswith("autograder.sandbox.")}
        assert side <= {"autograder.sandbox.wire", "autograder.sandbox.reaper"}, (name, side)


def test_the_core_never_imports_a_platform():
    for name in ROOMS:
        if name.startswith("autograder.core"):
            bad = {m for m in grader_imports(name) if m.startswith(("autograder.platforms", "autograder.cli"))}
            assert not bad, f"{name} imports {sorted(bad)}: the core knows no platform (pass a hook instead)"


def test_no_circles():
    """The graph of the grader's modules, function-level imports included, has no cycle."""
    graph = {n: {m for m in grader_imports(n) if m in ROOMS and m != n and not m.endswith("__init__")}
             for n in ROOMS}
    state: dict[str, int] = {}

    def visit(n, path):
        if state.get(n) == 2:
            return
        assert state.get(n) != 1, "a circle: " + " -> ".join(path[path.index(n):] + [n])
        state[n] = 1
        for m in sorted(graph[n]):
            visit(m, path + [n])
        state[n] = 2

    for n in sorted(graph):
        visit(n, [])


@pytest.mark.parametrize("name", sorted(ROOMS))
def test_every_room_is_small_enough_to_read_at_once(name):
    src = ROOMS[name].read_text()
    lines = src.count("\n")
    assert lines <= MAX_LINES, f"{name}: {lines} lines (at most {MAX_LINES}): split it along its jobs"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(src))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION]
    assert not long, f"{name}: functions over {MAX_FUNCTION} lines: {long}"


def test_the_sandbox_copy_is_the_whole_package():
    """The launcher copies every module of autograder/sandbox/, and the zygote starts from it alone."""
    from autograder.core import launch

    assert launch.SIDE == PKG / "sandbox"


def test_the_readme_describes_these_folders():
    readme = (REPO / "README.md").read_text()
    for folder in ("autograder/sandbox/", "autograder/core/", "autograder/platforms/", "autograder/testkit/",
                   "autograder/tests/"):
        assert folder in readme, f"README's layout section does not name {folder}"
