"""Keeping nbgrader in step: test-cell points, and loading results into nbgrader's gradebook.

Each visible test cell sits under the answer cells it checks. A test cell's nbgrader points are the
hidden points of the graded names answered since the previous test cell, so nbgrader's totals (its
gradebook, ``nbgrader export``, formgrader, even ``nbgrader autograde``) have the same maximum as
``python -m autograder grade``, and loading our results gives each cell exactly what its functions
earned.

    python -m autograder sync-points          # rewrite test-cell points in solutions/ (then make release)
    python -m autograder gradebook RESULTS_DIR [--submitted DIR]   # results -> nbgrader's gradebook
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat

from . import notebook as nbmod
from . import runner


def cell_functions(nb: dict) -> dict[str, list[str]]:
    """{test cell grade_id: [graded names answered above it, since the previous test cell]}."""
    out, pending = {}, []
    for c in nb["cells"]:
        m = nbmod.nbgrader_meta(c)
        if m.get("solution") and m.get("grade_id"):
            pending.append(m["grade_id"])
        elif m.get("grade") and m.get("grade_id"):
            out[m["grade_id"]] = pending
            pending = []
    return out


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
    return {cell: float(sum(pts.get(f, 0.0) for f in funcs)) for cell, funcs in cell_functions(nb).items()}


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


def import_results(results: Path, submitted: Path | None = None, course_root: Path = runner.REPO) -> int:
    """Load every results.json under RESULTS_DIR into nbgrader's gradebook (per test cell)."""
    from nbgrader.api import Gradebook, MissingEntry
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    db_url = Config(cfg).CourseDirectory.db_url
    n = 0
    with Gradebook(db_url) as gb:
        for rpath in sorted(results.glob("*/*/results.json")):
            doc = json.loads(rpath.read_text())
            sid, a = doc["student_id"], doc["assignment"]
            try:
                assignment = gb.find_assignment(a)
            except MissingEntry:
                raise SystemExit(f"autograder: assignment {a} is not in nbgrader's gradebook; run `make release` "
                                 "(nbgrader generate_assignment) first") from None
            gb.update_or_create_student(sid)
            try:
                gb.find_submission(a, sid)
            except MissingEntry:
                gb.add_submission(a, sid)
            earned: dict[str, float] = {}
            for t in doc["tests"]:
                earned[t["function"]] = earned.get(t["function"], 0.0) + t["points"]
            for nbrec in assignment.notebooks:
                rel = runner.RELEASE_DIR / a / f"{nbrec.name}.ipynb"
                if not rel.is_file():
                    continue
                mapping = cell_functions(nbmod.load_notebook(rel))
                for cell in nbrec.grade_cells:
                    if cell.cell_type != "code" or cell.name not in mapping:
                        continue
                    g = gb.find_grade(cell.name, nbrec.name, a, sid)
                    g.auto_score = min(cell.max_score, sum(earned.get(f, 0.0) for f in mapping[cell.name]))
            gb.db.commit()
            if submitted is not None:  # formgrader shows the autograded copies
                src = submitted / sid / a
                dst = course_root / "autograded" / sid / a
                if src.is_dir():
                    dst.mkdir(parents=True, exist_ok=True)
                    for nb in src.glob("*.ipynb"):
                        shutil.copy(nb, dst / nb.name)
            n += 1
    return n
