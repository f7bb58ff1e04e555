"""nbgrader's test-cell points, kept equal to the hidden tests' (``python -m autograder sync-points``).

Each visible test cell sits under the answer cells it checks. A test cell's nbgrader points are the
hidden points of the graded names answered since the previous test cell (see nbgrader_bridge.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ..core import notebook as nbmod
from ..core import runner


def cell_functions(nb: dict, together=()) -> dict[str, list[str]]:
    """{test cell grade_id: [graded names answered above it, since the previous test cell]}; the names
    in ``together`` (``<notebook>:together``, the whole chain's check: no answer cell) go to the last."""
    out, pending = {}, []
    for c in nb["cells"]:
        m = nbmod.nbgrader_meta(c)
        if m.get("solution") and m.get("grade_id"):
            pending.append(m["grade_id"])
        elif m.get("grade") and m.get("grade_id"):
            out[m["grade_id"]] = pending
            pending = []
    if together and out:
        last = list(out)[-1]
        out[last] = out[last] + list(together)
    return out


def together_names(pts: dict) -> list[str]:
    """The graded names with no answer cell (``<notebook>:together``) among a notebook's points."""
    return [f for f in pts if f.endswith(":together")]


def hidden_points(assignment: str) -> dict[str, dict[str, float]]:
    """{notebook: {graded name: hidden points}}."""
    pts: dict[str, dict[str, float]] = {}
    for nbt in runner.load_assignment(assignment):
        for t in nbt.tests:
            pts.setdefault(nbt.notebook, {}).setdefault(t.function, 0.0)
            pts[nbt.notebook][t.function] += t.points
    return pts


def expected_cell_points(assignment: str, nb_name: str, nb: dict) -> dict[str, float]:
    pts = hidden_points(assignment).get(nb_name, {})
    return {cell: float(sum(pts.get(f, 0.0) for f in funcs))
            for cell, funcs in cell_functions(nb, together_names(pts)).items()}


def sync_points(solutions: Path = runner.REPO / "solutions", chapters=None) -> list[str]:
    """Rewrite the points of every test cell in solutions/; returns what changed."""
    changed = []
    for a in chapters or runner.assignments():
        for path in sorted((solutions / a).glob("*.ipynb")):
            raw = nbformat.read(str(path), as_version=4)
            want = expected_cell_points(a, path.stem, raw)
            dirty = False
            for c in raw["cells"]:
                m = c.get("metadata", {}).get("nbgrader", {})
                gid = m.get("grade_id")
                if m.get("grade") and gid in want and m.get("points") != want[gid]:
                    changed.append(f"{path.relative_to(solutions.parent)}: {gid} {m.get('points')} -> {want[gid]:g}")
                    m["points"] = want[gid]
                    dirty = True
            if dirty:
                nbformat.write(raw, str(path))
    return changed

