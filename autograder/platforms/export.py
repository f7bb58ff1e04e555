"""Grades for an LMS: ``python -m autograder export RESULTS_DIR --format canvas|moodle|long|per-question
[--roster CSV] [--late-policy FILE] [--non-submitters zero|missing] [--out FILE]``.

Reads every ``RESULTS_DIR/<student>/<assignment>/results.json`` the grader wrote, by the CONTRACT's keys
(``student_id``, ``assignment``, ``score``, ``max_score``, and per test ``name``, ``function``, ``points``,
``max_points``, ``status``, ``message``) plus, when present, ``late`` (the submission time the grader
recorded), ``isolation`` and ``grader_faults``; other keys are ignored.

Every score leaving here is the score after the course's late policy (autograder/latepolicy.py: the same
function, on the same recorded submission time, as grades.csv, results.json's ``final_score``, the
combined CSV and nbgrader's gradebook).

- ``canvas``: Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section`` (from the
  roster), a ``Points Possible`` row, one column per assignment, headed ``Name (canvas id)`` when the
  roster is a Canvas export holding that assignment (or ``--canvas-column``), else the assignment's name
  (Canvas then creates the assignment); ``--per-question``: a column per graded name instead.
- ``moodle``: Moodle's "Import grades from CSV": ``First name, Last name, ID number, Email address``,
  then one column per assignment (map "Identify user by" to the email address or ID number).
- ``long``: one row per student and assignment, with the raw score, the penalty and the lateness.
- ``per-question``: ``student_id``, one column per graded name (raw points), each assignment's late
  penalty (when a policy applies) and total (after it); the first data row is ``Points Possible``.

With ``--roster``, every rostered student has a row: a non-submitter gets an explicit 0 (or, with
``--non-submitters missing``, an empty cell: Canvas then applies its own missing policy); a student with
results who is not on the roster is left out of the Canvas and Moodle files and named on stderr (the roster
is read by roster.py).
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import latepolicy
from .roster import CANVAS_FIXED, Person, Roster, RosterError, load_roster


@dataclass
class ClassResults:
    """Everything the grader wrote for a class, by the CONTRACT's keys, with each result's lateness."""
    docs: list = field(default_factory=list)  # every results.json, parsed
    bad: list = field(default_factory=list)  # (path, why) for files that could not be read
    policy: latepolicy.LatePolicy = field(default_factory=latepolicy.LatePolicy.none)

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

    def has_late_policy(self) -> bool:
        return any(d["lateness"].due is not None for d in self.docs)


def _num(v, default=0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def load_results(results_dir: Path, assignment: str | None = None,
                 policy: latepolicy.LatePolicy | None = None) -> ClassResults:
    """Every results.json under RESULTS_DIR; each doc gets ``lateness`` (latepolicy.Lateness) and
    ``final_score`` under ``policy`` (default: the course's, ``latepolicy.find()``)."""
    policy = latepolicy.find() if policy is None else policy
    out = ClassResults(policy=policy)
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
                   "tests": tests,
                   "isolation": str(d.get("isolation") or "unknown"),
                   "grader_faults": [str(x) for x in (d.get("grader_faults") or [])],
                   "late": d.get("late") if isinstance(d.get("late"), dict) else {}}
            if isinstance(d.get("subtotals"), dict):
                doc["subtotals"] = d["subtotals"]
            doc["lateness"] = latepolicy.lateness_of(doc, policy)
            doc["final_score"] = doc["lateness"].apply(doc["score"], doc["max_score"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            out.bad.append((str(p), f"{type(e).__name__}: {e}"))
            continue
        if assignment and doc["assignment"] != assignment:
            continue
        out.docs.append(doc)
    return out


# --------------------------------------------------------------------------------------------- the table
@dataclass
class Row:
    """One student in an export: who (from the roster when there is one), their result per assignment."""
    student_id: str
    person: Person | None
    docs: dict  # assignment -> doc


def class_rows(res: ClassResults, roster: Roster | None, warn=None) -> list[Row]:
    """Every rostered student (in roster order) or, without a roster, every student with results; results of
    students not on the roster are named through ``warn`` and left out."""
    by = defaultdict(dict)
    for d in res.docs:
        by[d["student_id"]][d["assignment"]] = d
    if roster is None:
        return [Row(s, None, by[s]) for s in sorted(by)]
    rows, claimed = [], set()
    people = {id(p): p for p in roster.people}
    owner: dict[int, list[str]] = defaultdict(list)
    for s in sorted(by):
        p = roster.find(s)
        if p is None:
            continue
        owner[id(p)].append(s)
        claimed.add(s)
    for p in roster.people:
        ids = owner.get(id(p), [])
        docs = {}
        for s in ids:
            docs.update(by[s])
        rows.append(Row(ids[0] if ids else (p.id or p.sis_login_id or p.sis_user_id or p.email), p, docs))
    unknown = sorted(set(by) - claimed)
    if unknown and warn is not None:
        warn(f"{len(unknown)} student(s) with results are not on the roster {roster.source} and are left out: "
             + ", ".join(unknown))
    del people
    return rows


def _fmt(x: float) -> str:
    return f"{round(float(x), 4):g}"


def _value(doc: dict, function: str | None) -> float:
    """A doc's points for one graded name (after the late penalty, in proportion) or its final score."""
    if function is None:
        return doc["final_score"]
    raw = sum(t["points"] for t in doc["tests"] if t["function"] == function)
    if doc["score"] <= 0:
        return raw
    return round(raw * doc["final_score"] / doc["score"], 4)


def _cell(doc, function, non_submitters: str) -> str:
    if doc is None:
        return "0" if non_submitters == "zero" else ""
    return _fmt(_value(doc, function))


def canvas_headers(res: ClassResults, roster: Roster | None, explicit: dict) -> dict:
    heads = {}
    for a in res.assignments:
        if a in explicit:  # a full "Name (id)" header, or a Canvas assignment's name found in a Canvas roster
            heads[a] = roster.canvas_headers.get(explicit[a], explicit[a]) if roster is not None else explicit[a]
        elif roster is not None and a in roster.canvas_headers:
            heads[a] = roster.canvas_headers[a]
        else:
            heads[a] = a
    return heads


def export(res: ClassResults, fmt: str, per_assignment: bool = True, roster: Roster | None = None,
           non_submitters: str = "zero", canvas_columns: dict | None = None, warn=None,
           per_question: bool = False) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    rows = class_rows(res, roster, warn)
    if fmt == "per-question":
        cols = [(f"{a}: {f}", pts, a, f) for a in res.assignments for f, pts in res.functions(a)]
        extra = []
        for a in res.assignments:
            if res.has_late_policy():
                extra.append((f"{a}: late penalty", None, a, "__penalty__"))
            extra.append((f"{a}: total", res.max_score(a), a, None))
        allcols = cols + extra
        w.writerow(["student_id"] + [c[0] for c in allcols])
        w.writerow(["Points Possible"] + ["" if c[1] is None else _fmt(c[1]) for c in allcols])
        for r in rows:
            out = [r.student_id]
            for _, _, a, f in allcols:
                d = r.docs.get(a)
                if d is None:
                    out.append("0" if non_submitters == "zero" else "")
                elif f == "__penalty__":
                    out.append(_fmt(d["score"] - d["final_score"]))
                elif f is None:
                    out.append(_fmt(d["final_score"]))
                else:  # raw points: the total is their sum minus the penalty
                    out.append(_fmt(sum(t["points"] for t in d["tests"] if t["function"] == f)))
            w.writerow(out)
    elif fmt == "canvas":
        heads = canvas_headers(res, roster, canvas_columns or {})
        if per_question:
            cols = [(f"{a}: {f}", pts, a, f) for a in res.assignments for f, pts in res.functions(a)]
        else:
            cols = [(heads[a], res.max_score(a), a, None) for a in res.assignments]
        w.writerow(list(CANVAS_FIXED) + [c[0] for c in cols])
        w.writerow(["Points Possible", "", "", "", ""] + [_fmt(c[1]) for c in cols])
        for r in rows:
            p = r.person
            if p is None:
                fixed = [r.student_id, "", r.student_id, "", ""]
            else:
                fixed = [p.name or r.student_id, p.canvas_id, p.sis_user_id, p.sis_login_id, p.section]
            w.writerow(fixed + [_cell(r.docs.get(a), f, non_submitters) for _, _, a, f in cols])
    elif fmt == "moodle":
        w.writerow(["First name", "Last name", "ID number", "Email address"] + res.assignments)
        for r in rows:
            p = r.person or Person(id=r.student_id, name=r.student_id)
            first, last = p.first_last
            w.writerow([first, last, p.sis_user_id or p.id or r.student_id, p.email]
                       + [_cell(r.docs.get(a), None, non_submitters) for a in res.assignments])
    elif fmt == "long":
        w.writerow(["student_id", "name", "email", "sis_user_id", "sis_login_id", "section", "assignment", "status",
                    "score", "max_score", "raw_score", "late_penalty", "late", "minutes_late", "submitted", "due"])
        for r in rows:
            p = r.person or Person(id=r.student_id)
            for a in res.assignments:
                d = r.docs.get(a)
                who = [r.student_id, p.name, p.email, p.sis_user_id, p.sis_login_id, p.section, a]
                if d is None:
                    w.writerow(who + ["missing", "0" if non_submitters == "zero" else "", _fmt(res.max_score(a)),
                                      "", "", "", "", "", ""])
                    continue
                lat = d["lateness"]
                w.writerow(who + ["graded", _fmt(d["final_score"]), _fmt(d["max_score"]), _fmt(d["score"]),
                                  _fmt(d["score"] - d["final_score"]), "yes" if lat.late else "no",
                                  _fmt(round(lat.minutes_late, 1)),
                                  lat.submitted.isoformat() if lat.submitted else "",
                                  lat.due.isoformat() if lat.due else ""])
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return buf.getvalue()


def _warn(msg: str) -> None:
    print(f"autograder: {msg}", file=sys.stderr)


def load_inputs(a):
    """(ClassResults, Roster | None) for the export and report commands, or an exit code."""
    if not a.results.is_dir():
        _warn(f"error: RESULTS_DIR {a.results} is not a directory")
        return 2
    try:
        policy = latepolicy.find(getattr(a, "late_policy", None))
        roster = load_roster(a.roster) if getattr(a, "roster", None) else None
    except (latepolicy.LatePolicyError, RosterError) as e:
        _warn(f"error: {e}")
        return 2
    res = load_results(a.results, getattr(a, "assignment", None), policy)
    for path, why in res.bad:
        _warn(f"skipped unreadable {path} ({why})")
    if not res.docs:
        _warn(f"error: no results.json under {a.results}/<student>/<assignment>/")
        return 2
    return res, roster


def command(a) -> int:
    """``python -m autograder export RESULTS_DIR --format ... [--out FILE]`` (see autograder/cli.py)."""
    got = load_inputs(a)
    if isinstance(got, int):
        return got
    res, roster = got
    cols = {}
    for spec in getattr(a, "canvas_column", []) or []:
        if "=" not in spec:
            _warn(f"error: --canvas-column {spec!r}: write ASSIGNMENT=HEADER, e.g. 'ch02_rnn=RNN lab (73412)'")
            return 2
        k, v = spec.split("=", 1)
        cols[k.strip()] = v.strip()
    if a.format == "canvas" and roster is None:
        _warn("no --roster: Canvas matches rows by ID, SIS User ID or SIS Login ID; the grader's student ids "
              "are put in Student and SIS User ID")
    text = export(res, a.format, roster=roster, non_submitters=getattr(a, "non_submitters", "zero"),
                  canvas_columns=cols, warn=_warn, per_question=getattr(a, "per_question", False))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
        _warn(f"{len(text.splitlines()) - (2 if a.format in ('canvas', 'per-question') else 1)} students, "
              f"{len(res.assignments)} assignments -> {a.out}")
    else:
        sys.stdout.write(text)
    return 0
