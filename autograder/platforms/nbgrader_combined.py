"""One set of totals: our scores for the test cells plus nbgrader's gradebook for everything a person
graded and the late penalty, added up as ``nbgrader export`` does (``python -m autograder gradebook
RESULTS_DIR --export FILE``). See nbgrader_bridge.py for the whole picture.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from ..core import classrun
from . import latepolicy
from .nbgrader_course import _cell_map, _is_test_cell, _lateness, _points_by_function, _results_docs, course, course_policy


# ---------------------------------------------------------------- one set of totals: ours + manual grades
def combined_rows(results_dir: Path, course_root: Path | None = None, late_policy=None) -> list[dict]:
    """One row per results.json: our scores for the test cells, nbgrader's gradebook for everything a
    person graded (manual scores, overrides, extra credit) and the late penalty, added up the way
    ``nbgrader export`` does (score = max(0, raw - penalty); max = the assignment's nbgrader maximum), the
    penalty being the course's late policy on the gradebook's timestamp, computed afresh on that total."""
    from nbgrader.api import Gradebook, MissingEntry

    cfg, cd = course(course_root)
    policy = course_policy(cfg, late_policy, cd.root)
    rows, stale = [], set()
    with Gradebook(cd.db_url, cd.course_id) as gb:
        for _rpath, doc in _results_docs(results_dir):
            sid, a = doc["student_id"], doc["assignment"]
            pts, _tests = _points_by_function(doc)
            try:
                asg = gb.find_assignment(a)
            except MissingEntry:
                asg = None
            try:
                sub = gb.find_submission(a, sid) if asg is not None else None
            except MissingEntry:
                sub = None
            raw, mx, penalty, ts, late = float(doc["score"]), float(doc["max_score"]), 0.0, None, 0.0
            lat = latepolicy.lateness_of(doc, policy)
            if asg is not None:
                raw, mx = 0.0, float(asg.max_score)
                for nbrec in asg.notebooks:
                    mapping = _cell_map(cd, a, nbrec.name)
                    grades = {}
                    if sub is not None:
                        grades = {g.name: g for g in gb.find_submission_notebook(nbrec.name, a, sid).grades}
                    for cell in list(nbrec.grade_cells) + list(nbrec.task_cells):
                        g = grades.get(cell.name)
                        extra = float(g.extra_credit or 0.0) if g is not None else 0.0
                        if g is not None and g.manual_score is not None:
                            s = float(g.manual_score)
                        elif _is_test_cell(cell, mapping):
                            s = min(float(cell.max_score), float(sum(pts.get(f, 0.0) for f in mapping[cell.name])))
                            if g is not None and g.auto_score is not None and abs(g.auto_score - s) > 1e-9:
                                stale.add(f"{sid}/{a}")
                        elif g is not None and g.auto_score is not None:
                            s = float(g.auto_score)
                        else:
                            s = 0.0
                        raw += s + extra
                if sub is not None:
                    lat = _lateness(policy, a, sid, sub)
                    ts = sub.timestamp
            penalty = lat.penalty(raw, mx)
            late = lat.minutes_late * 60.0
            if sub is not None and abs(float(sub.late_submission_penalty or 0.0) - penalty) > 1e-6:
                stale.add(f"{sid}/{a}")
            rows.append({"student_id": sid, "assignment": a, "score": max(0.0, raw - penalty), "max_score": mx,
                         "raw_score": raw, "late_submission_penalty": penalty,
                         "timestamp": ts.isoformat() if ts is not None else "", "seconds_late": late})
    if stale:
        print(f"autograder: nbgrader's gradebook holds older scores or late penalties for {len(stale)} submission(s) "
              f"({', '.join(sorted(stale)[:5])}{', ...' if len(stale) > 5 else ''}); these totals use the "
              "results, nbgrader export will not until you run `python -m autograder gradebook`",
              file=sys.stderr)
    return rows


def combined_totals(results_dir: Path, course_root: Path | None = None,
                    late_policy=None) -> dict[tuple[str, str], tuple[float, float]]:
    """{(student, assignment): (score, max_score)}: the totals ``nbgrader export`` and formgrader show once
    the results are loaded (``import_results``) and manual grading is done."""
    return {(r["student_id"], r["assignment"]): (r["score"], r["max_score"])
            for r in combined_rows(results_dir, course_root, late_policy)}


COMBINED_COLUMNS = ["student_id", "assignment", "score", "max_score", "raw_score", "late_submission_penalty",
                    "timestamp", "seconds_late"]


def write_combined_csv(path: Path, results_dir: Path, course_root: Path | None = None, late_policy=None) -> int:
    """Write the combined totals as CSV (grades.csv's four columns first, then the raw score, nbgrader's
    late penalty, the submission timestamp and how late it was); returns the number of rows."""
    rows = sorted(combined_rows(results_dir, course_root, late_policy), key=lambda r: (r["student_id"], r["assignment"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COMBINED_COLUMNS)
    for r in rows:
        w.writerow([r["student_id"], r["assignment"], classrun._num(r["score"]), classrun._num(r["max_score"]),
                    classrun._num(r["raw_score"]), classrun._num(r["late_submission_penalty"]), r["timestamp"],
                    classrun._num(r["seconds_late"])])
    classrun.atomic_write(Path(path), buf.getvalue())
    return len(rows)
