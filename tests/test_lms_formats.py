"""The LMS files import as they are: each export is read back by a parser written from the format's
documentation (not from our writer), on a synthetic class with a roster, a non-submitter, an unknown
submitter and late work.

Canvas, from Canvas's gradebook import rules as documented by Instructure and by universities' Canvas
guides ("How do I import grades in the Gradebook?"; Ohio State's "Import a CSV file to Carmen Grades",
https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades;
VCU's "Gradebook Action Menu", https://ts.vcu.edu/askit/teaching-and-learning/canvas/faculty/grading-faculty/gradebook-action-menu-faculty/;
"Preparing your Canvas gradebook", https://classhelp.screenstepslive.com/a/1960744):
- the first row holds the headers; a student is identified by Student name, ID or SIS User ID, and the
  columns SIS Login ID and Section must be present;
- a column headed ``Name (number)`` updates the existing assignment with that id; any other column that is
  not one of Canvas's own becomes a NEW assignment of that name; read-only columns (Current/Final Score)
  are ignored;
- an optional second row starting ``Points Possible`` gives each column's maximum;
- a grade is a number (or EX, excused); a blank cell is left ungraded, which is not a 0.

Moodle, from Moodle's "Import grades from CSV" (grade/import/csv: gradeimport_csv_load_data,
https://github.com/moodle/moodle/blob/master/grade/import/csv/classes/load_data.php, and its behat
feature grade/tests/behat/grade_import.feature):
- the first row holds the headers, every other row is one user;
- one column is mapped to identify the user (user id, username, ID number or email address); a row whose
  user cannot be found is an error (so no extra rows such as "Points Possible");
- each other mapped column is a grade item; a grade is numeric, an empty cell imports nothing; a grade
  above the item's maximum is not accepted as is.

The long format is plain RFC 4180 CSV: one header row of unique names, one row per student and assignment.
"""
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

A, B = "ch01_gradients", "ch02_rnn"
POLICY = f"due: {{{A}: 2026-10-01 17:00, {B}: 2026-10-08 17:00}}\npercent: 10\nper: day\ngrace_minutes: 10\n"
CANVAS_READ_ONLY = {"Current Score", "Final Score", "Unposted Current Score", "Unposted Final Score",
                    "Current Grade", "Final Grade", "Current Points", "Final Points"}


def _t(name, function, points, max_points, status="passed", message=""):
    return {"name": name, "function": function, "points": points, "max_points": max_points, "status": status,
            "message": message}


@pytest.fixture
def klass(tmp_path) -> Path:
    r = tmp_path / "results"

    def doc(sid, a, pts, when):
        tests = [_t("t1", "f", pts[0], 3, "passed" if pts[0] == 3 else "failed", "f: wrong"),
                 _t("t2", "g", pts[1], 3, "passed" if pts[1] == 3 else "failed", "g: wrong")]
        d = {"student_id": sid, "assignment": a, "score": sum(pts), "max_score": 6, "tests": tests,
             "late": {"submitted": when}}
        (r / sid / a).mkdir(parents=True)
        (r / sid / a / "results.json").write_text(json.dumps(d))

    doc("u001", A, (3, 3), "2026-10-01T16:00:00+00:00")   # on time
    doc("u001", B, (3, 1), "2026-10-10T17:30:00+00:00")   # 2 d 30 min late: -30 %
    doc("u002", A, (3, 0), "2026-10-01T17:05:00+00:00")   # within grace
    doc("intruder", A, (3, 3), "2026-10-01T12:00:00+00:00")  # not on the roster
    (tmp_path / "late_policy.yml").write_text(POLICY)
    (tmp_path / "roster.csv").write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,RNN lab (73412),Gradients (73400),Current Score\n"
        "    Points Possible,,,,,6.00,6.00,(read only)\n"
        "\"Lovelace, Ada\",501,S001,u001,Sec 1,,,\n"
        "\"Hopper, Grace\",502,S002,u002,Sec 1,,,\n"
        "\"Turing, Alan\",503,S003,u003,Sec 2,,,\n"          # never submitted
        "\"Student, Test\",599,,teststudent,Sec 1,,,\n")
    return tmp_path


def _export(klass, fmt, *extra):
    r = subprocess.run([sys.executable, "-m", "autograder", "export", str(klass / "results"), "--format", fmt,
                        "--roster", str(klass / "roster.csv"), "--late-policy", str(klass / "late_policy.yml"),
                        *extra], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


# ------------------------------------------------------------------------------- Canvas, from its rules
def parse_canvas(text: str, existing: dict) -> dict:
    """Canvas's gradebook import as documented. ``existing``: {canvas assignment id: (name, points)}.
    Returns {"grades": {student key: {assignment key: grade or None}}, "new": [names], "errors": [...]}."""
    rows = list(csv.reader(io.StringIO(text), strict=True))
    head = rows[0]
    errors, new, grades = [], [], {}
    for need in ("SIS Login ID", "Section"):
        if need not in head:
            errors.append(f"missing column {need}")
    if not {"Student", "ID", "SIS User ID"} & set(head):
        errors.append("no column identifies the student")
    fixed = {"Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Integration ID", "Root Account"}
    cols = {}
    for i, h in enumerate(head):
        if h in fixed or h in CANVAS_READ_ONLY or h.endswith("(read only)"):
            continue
        m = re.fullmatch(r"(.*\S)\s*\((\d+)\)", h)
        if m and int(m.group(2)) in existing:
            cols[i] = ("existing", int(m.group(2)))
        else:
            cols[i] = ("new", h)
            new.append(h)
    body = rows[1:]
    points = {}
    if body and body[0][0].strip() == "Points Possible":
        for i in cols:
            v = body[0][i].strip()
            if v:
                points[cols[i]] = float(v)
        body = body[1:]
    for n, row in enumerate(body, start=2):
        if len(row) != len(head):
            errors.append(f"row {n}: {len(row)} cells for {len(head)} headers")
            continue
        key = next((row[head.index(c)] for c in ("ID", "SIS User ID", "SIS Login ID") if c in head
                    and row[head.index(c)]), None)
        if key is None:
            errors.append(f"row {n}: no ID, SIS User ID or SIS Login ID: the student cannot be matched")
            continue
        g = {}
        for i, col in cols.items():
            v = row[i].strip()
            if v == "":
                g[col] = None  # ungraded: not a 0
            elif v.upper() == "EX":
                g[col] = "EX"
            else:
                try:
                    g[col] = float(v)
                except ValueError:
                    errors.append(f"row {n}: {v!r} is not a grade")
        grades[key] = g
    return {"grades": grades, "new": new, "errors": errors, "points": points}


def test_canvas_file_imports_as_is(klass):
    text, err = _export(klass, "canvas")
    got = parse_canvas(text, existing={73412: ("RNN lab", 6), 73400: ("Gradients", 6)})
    assert got["errors"] == []
    # no mapping for these names in the roster: one new Canvas assignment per assignment, not per function
    assert got["new"] == [A, B]
    g = got["grades"]
    assert set(g) == {"501", "502", "503"}  # every rostered student, matched by Canvas's own ID; no test student
    assert g["501"] == {("new", A): 6.0, ("new", B): pytest.approx(4 * 0.7)}  # 2 d 30 min late: 30 % off
    assert g["502"] == {("new", A): 3.0, ("new", B): 0.0}   # within grace; B not submitted: an explicit 0
    assert g["503"] == {("new", A): 0.0, ("new", B): 0.0}
    assert "intruder" in err and "not on the roster" in err
    assert got["points"] == {("new", A): 6.0, ("new", B): 6.0}
    assert all(v <= got["points"][col] for row in g.values() for col, v in row.items() if v is not None)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[2][:5] == ["Lovelace, Ada", "501", "S001", "u001", "Sec 1"]


def test_canvas_with_a_mapping_updates_existing_assignments(klass):
    text, _ = _export(klass, "canvas", "--canvas-column", f"{B}=RNN lab", "--canvas-column", f"{A}=Gradients (73400)")
    got = parse_canvas(text, existing={73412: ("RNN lab", 6), 73400: ("Gradients", 6)})
    assert got["errors"] == [] and got["new"] == []
    assert got["grades"]["501"] == {("existing", 73400): 6.0, ("existing", 73412): pytest.approx(2.8)}
    text, _ = _export(klass, "canvas", "--non-submitters", "missing")
    g = parse_canvas(text, existing={})["grades"]
    assert g["503"] == {("new", A): None, ("new", B): None}  # left for Canvas's missing policy


# ------------------------------------------------------------------------------- Moodle, from its rules
def parse_moodle(text: str, users: list[dict], map_from: str, map_to: str, items: dict) -> dict:
    """Moodle's CSV grade import: ``map_from`` the CSV column identifying the user, matched against the user
    field ``map_to`` (email / idnumber); ``items`` {CSV column: (grade item, grademax)}."""
    rows = list(csv.reader(io.StringIO(text), strict=True))
    head, errors, grades = rows[0], [], {}
    if len(set(head)) != len(head):
        errors.append("duplicate headers")
    if map_from not in head:
        return {"errors": [f"no column {map_from}"], "grades": {}}
    for n, row in enumerate(rows[1:], start=2):
        rec = dict(zip(head, row))
        user = next((u for u in users if u[map_to] == rec[map_from]), None)
        if user is None:
            errors.append(f"row {n}: user {rec[map_from]!r} not found")
            continue
        for col, (item, grademax) in items.items():
            v = rec.get(col, "").strip()
            if v == "":
                continue
            try:
                x = float(v)
            except ValueError:
                errors.append(f"row {n}: {v!r} is not numeric")
                continue
            if x > grademax:
                errors.append(f"row {n}: {x} above the maximum {grademax}")
            grades.setdefault(user["username"], {})[item] = x
    return {"errors": errors, "grades": grades}


USERS = [{"username": "u001", "email": "", "idnumber": "S001"}, {"username": "u002", "email": "", "idnumber": "S002"},
         {"username": "u003", "email": "", "idnumber": "S003"}]


def test_moodle_file_imports_as_is(klass):
    text, err = _export(klass, "moodle")
    got = parse_moodle(text, USERS, "ID number", "idnumber", {A: ("Gradients", 6), B: ("RNN lab", 6)})
    assert got["errors"] == [], got
    assert got["grades"] == {"u001": {"Gradients": 6.0, "RNN lab": pytest.approx(2.8)},
                             "u002": {"Gradients": 3.0, "RNN lab": 0.0}, "u003": {"Gradients": 0.0, "RNN lab": 0.0}}
    assert "intruder" in err
    # by email, from our own roster format
    (klass / "roster2.csv").write_text("id,name,email\nu001,Ada Lovelace,ada@uni.edu\nu002,Grace Hopper,grace@uni.edu\n")
    r = subprocess.run([sys.executable, "-m", "autograder", "export", str(klass / "results"), "--format", "moodle",
                        "--roster", str(klass / "roster2.csv"), "--late-policy", str(klass / "late_policy.yml")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    users = [{"username": "u001", "email": "ada@uni.edu"}, {"username": "u002", "email": "grace@uni.edu"}]
    got = parse_moodle(r.stdout, users, "Email address", "email", {A: ("Gradients", 6)})
    assert got["errors"] == [] and got["grades"] == {"u001": {"Gradients": 6.0}, "u002": {"Gradients": 3.0}}
    assert list(csv.reader(io.StringIO(r.stdout)))[1][:2] == ["Ada", "Lovelace"]


# ------------------------------------------------------------------------------------------ long format
def test_long_format_is_one_row_per_student_and_assignment(klass):
    text, _ = _export(klass, "long")
    rows = list(csv.DictReader(io.StringIO(text), strict=True))
    assert len(set(rows[0])) == len(rows[0])
    assert [(r["sis_login_id"], r["assignment"]) for r in rows] == [
        ("u001", A), ("u001", B), ("u002", A), ("u002", B), ("u003", A), ("u003", B)]
    late = [r for r in rows if r["sis_login_id"] == "u001" and r["assignment"] == B][0]
    assert (late["status"], late["raw_score"], late["late_penalty"], late["late"]) == ("graded", "4", "1.2", "yes")
    assert float(late["score"]) == pytest.approx(2.8) and float(late["minutes_late"]) == 2 * 1440 + 30
    grace = [r for r in rows if r["sis_login_id"] == "u002" and r["assignment"] == A][0]
    assert grace["late"] == "no" and grace["late_penalty"] == "0"
    assert [r["status"] for r in rows if r["sis_login_id"] == "u003"] == ["missing", "missing"]


def test_roster_errors_are_one_clear_line(klass):
    (klass / "bad.csv").write_text("name,colour\nAda,blue\n")
    r = subprocess.run([sys.executable, "-m", "autograder", "export", str(klass / "results"), "--format", "canvas",
                        "--roster", str(klass / "bad.csv")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no id column" in r.stderr and len(r.stderr.strip().splitlines()) == 1
