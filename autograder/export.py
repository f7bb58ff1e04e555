"""Grades for an LMS: ``python -m autograder export RESULTS_DIR --format canvas|per-question [--out FILE]``.

Reads every ``RESULTS_DIR/<student>/<assignment>/results.json`` the grader wrote, using only the
CONTRACT's keys (``student_id``, ``assignment``, ``score``, ``max_score``, and per test ``name``,
``function``, ``points``, ``max_points``, ``status``, ``message``); other keys are ignored, so the
export keeps working as the grader adds fields.

- ``per-question``: ``student_id``, then one column per graded name (``ch04_lstm: lstm_step_forward``:
  the points of every hidden test of that name), then each assignment's total; the first data row is
  ``Points Possible``. One row per student; an assignment a student has no result for stays empty.
- ``canvas``: Canvas's gradebook import layout (``Student, ID, SIS User ID, SIS Login ID, Section``, a
  ``Points Possible`` row, then one column per graded name; ``--per-assignment`` for one column per
  assignment instead). The student id goes to ``SIS User ID``: use ids that Canvas knows.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ClassResults:
    """Everything the grader wrote for a class, by the CONTRACT's keys."""
    docs: list = field(default_factory=list)  # every results.json, parsed
    bad: list = field(default_factory=list)  # (path, why) for files that could not be read

    @property
    def students(self) -> list[str]:
        return sorted({d["student_id"] for d in self.docs})

    @property
    def assignments(self) -> list[str]:
        return sorted({d["assignment"] for d in self.docs})

    def functions(self, assignment: str) -> list[tuple[str, float]]:
        """(graded name, points possible) in the order the tests list them."""
        pts: dict[str, float] = {}
        for d in self.docs:
            if d["assignment"] != assignment:
                continue
            seen: dict[str, float] = defaultdict(float)
            for t in d["tests"]:
                seen[t["function"]] += t["max_points"]
            for f, p in seen.items():
                pts.setdefault(f, p)
                pts[f] = max(pts[f], p)
        return list(pts.items())

    def max_score(self, assignment: str) -> float:
        return max((d["max_score"] for d in self.docs if d["assignment"] == assignment), default=0.0)


def _num(v, default=0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def load_results(results_dir: Path, assignment: str | None = None) -> ClassResults:
    out = ClassResults()
    for p in sorted(Path(results_dir).glob("*/*/results.json")):
        try:
            d = json.loads(p.read_text())
            tests = [{"name": str(t["name"]), "function": str(t.get("function") or t["name"]),
                      "points": _num(t.get("points")), "max_points": _num(t.get("max_points")),
                      "status": str(t.get("status", "")), "message": str(t.get("message") or ""),
                      "grader_fault": bool(t.get("grader_fault", False))}
                     for t in d.get("tests") or []]
            doc = {"student_id": str(d.get("student_id") or p.parent.parent.name),
                   "assignment": str(d.get("assignment") or p.parent.name),
                   "score": _num(d.get("score"), sum(t["points"] for t in tests)),
                   "max_score": _num(d.get("max_score"), sum(t["max_points"] for t in tests)),
                   "tests": tests}
            if isinstance(d.get("subtotals"), dict):
                doc["subtotals"] = d["subtotals"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            out.bad.append((str(p), f"{type(e).__name__}: {e}"))
            continue
        if assignment and doc["assignment"] != assignment:
            continue
        out.docs.append(doc)
    return out


def _fmt(x: float) -> str:
    return f"{x:g}"


def _columns(res: ClassResults, per_assignment: bool):
    cols = []  # (header, points possible, getter(doc) -> value)
    for a in res.assignments:
        if per_assignment:
            cols.append((a, res.max_score(a), a, None))
        else:
            for f, pts in res.functions(a):
                cols.append((f"{a}: {f}", pts, a, f))
    return cols


def _value(doc: dict, function: str | None) -> float:
    if function is None:
        return doc["score"]
    return sum(t["points"] for t in doc["tests"] if t["function"] == function)


def export(res: ClassResults, fmt: str, per_assignment: bool = False) -> str:
    by = {(d["student_id"], d["assignment"]): d for d in res.docs}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if fmt == "per-question":
        cols = _columns(res, per_assignment=False)
        totals = [(f"{a}: total", res.max_score(a), a, None) for a in res.assignments]
        allcols = cols + totals
        w.writerow(["student_id"] + [c[0] for c in allcols])
        w.writerow(["Points Possible"] + [_fmt(c[1]) for c in allcols])
        for s in res.students:
            row = [s]
            for _, _, a, f in allcols:
                d = by.get((s, a))
                row.append("" if d is None else _fmt(_value(d, f)))
            w.writerow(row)
    elif fmt == "canvas":
        cols = _columns(res, per_assignment)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] + [c[0] for c in cols])
        w.writerow(["Points Possible", "", "", "", ""] + [_fmt(c[1]) for c in cols])
        for s in res.students:
            row = [s, "", s, "", ""]
            for _, _, a, f in cols:
                d = by.get((s, a))
                row.append("" if d is None else _fmt(_value(d, f)))
            w.writerow(row)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return buf.getvalue()


def command(a) -> int:
    """``python -m autograder export RESULTS_DIR --format ... [--out FILE]`` (see autograder/cli.py)."""
    if not a.results.is_dir():
        print(f"autograder: error: RESULTS_DIR {a.results} is not a directory", file=sys.stderr)
        return 2
    res = load_results(a.results, a.assignment)
    for path, why in res.bad:
        print(f"autograder: skipped unreadable {path} ({why})", file=sys.stderr)
    if not res.docs:
        print(f"autograder: error: no results.json under {a.results}/<student>/<assignment>/", file=sys.stderr)
        return 2
    text = export(res, a.format, getattr(a, "per_assignment", False))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
        print(f"autograder: {len(res.students)} students, {len(res.assignments)} assignments -> {a.out}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
