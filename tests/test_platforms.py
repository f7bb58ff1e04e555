"""One class, every output, one late policy (issue 21).

A class of chapter 2 graded once by ``python -m autograder grade`` under a late_policy.yml: on time, within
the grace period, 1 minute past it, 39 h late, 8 days late (past "zero after 7 days"), 30 h late with a
2-day extension, a buggy notebook handed in late (so that the penalty is a percent of a score below the
maximum), and a rostered student who handed in nothing. Every output must give each student the same
number, and that number must be the one computed here by hand from the policy's rules:
grades.csv, results.json, the Canvas / Moodle / long / per-question exports, the report, the combined CSV
and ``nbgrader export`` (after ``python -m autograder gradebook``).

Also: the roster (a Canvas gradebook export accepted as it is), stale results after ``--only``, and the
report at 1280 and 400 px in Chromium.
"""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import REPO, headless_chromium, make_class, run_grader

A = "ch02_rnn"
BIN = Path(sys.executable).parent
DUE = datetime(2026, 10, 8, 17, 0, tzinfo=timezone.utc)
POLICY = f"""# the course's late policy (docs/publishing.md)
due:
  {A}: 2026-10-08 17:00
grace_minutes: 15
percent: 10
per: day
cap_percent: 50
zero_after_days: 7
extensions:
  s6ext: {{{A}: 2d}}
"""
# student -> (submitted at, percent removed by hand from the rules above, buggy?)
CLASS = {
    "s1ontime": (DUE - timedelta(hours=2), 0, False),
    "s2grace": (DUE + timedelta(minutes=12), 0, False),          # within the 15 min grace period
    "s3late": (DUE + timedelta(minutes=16), 10, False),          # 16 min late: one started day
    "s4late39h": (DUE + timedelta(hours=39), 20, False),         # 1 d 15 h late: two started days
    "s5verylate": (DUE + timedelta(days=8), 100, False),         # past zero_after_days: 0
    "s6ext": (DUE + timedelta(hours=30), 0, False),              # 30 h late, but a 2-day extension
    "s7buggy": (DUE + timedelta(hours=5), 10, True),             # a score below the maximum, 10 % off it
}
ABSENT = "s8absent"
ROSTER_CANVAS = (  # Canvas's own gradebook export ("Export Entire Gradebook"), as Canvas writes it
    "Student,ID,SIS User ID,SIS Login ID,Section,RNN lab (73412),Current Score,Final Score\n"
    "    Points Possible,,,,,42.00,(read only),(read only)\n"
    + "".join(f"\"{s}, Student\",{1000 + i},SIS{i:03d},{s},Section A,,,\n"
              for i, s in enumerate(list(CLASS) + [ABSENT]))
    + "\"Student, Test\",9999,,test_student,Section A,,,\n")


def _cli(*args, cwd=REPO, timeout=900):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def _nbgrader(root, *args, timeout=600):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    r = subprocess.run([str(BIN / "nbgrader"), *args], cwd=root, capture_output=True, text=True, env=env,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f UTC")  # what nbgrader collect / zip_collect write


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A course root (nbgrader_config.py, late_policy.yml, the chapter's source and release), its class in
    submitted/, graded once."""
    root = tmp_path_factory.mktemp("platforms")
    shutil.copytree(REPO / "solutions" / A, root / "solutions" / A)
    shutil.copy(REPO / "nbgrader_config.py", root)
    (root / "late_policy.yml").write_text(POLICY)
    (root / "roster.csv").write_text(ROSTER_CANVAS)
    buggy = root / "buggy"
    buggy.mkdir()
    for p in (REPO / "solutions" / A).glob("*.ipynb"):
        shutil.copy(p, buggy / p.name)
    nb = buggy / "rnn_numpy.ipynb"
    src = nb.read_text()
    assert "np.tanh(" in src
    nb.write_text(src.replace("np.tanh(", "np.sin(", 1))  # a classic mistake in the step forward
    make_class(root / "submitted", {s: {A: buggy if b else REPO / "solutions" / A} for s, (_t, _p, b) in CLASS.items()})
    for s, (t, _p, _b) in CLASS.items():
        (root / "submitted" / s / A / "timestamp.txt").write_text(_stamp(t) + "\n")
    r = run_grader(root / "submitted", root / "results", "--workers", "2", "--late-policy",
                   str(root / "late_policy.yml"))
    assert r.returncode == 0, r.stderr
    return root


def _expected(root) -> dict:
    """By hand: the raw score (sum of the tests' points) minus the percent of it the rules remove."""
    out = {}
    for s, (_t, pct, _b) in CLASS.items():
        doc = json.loads((root / "results" / s / A / "results.json").read_text())
        raw = sum(t["points"] for t in doc["tests"])
        out[s] = round(raw * (1 - pct / 100), 4)
    return out


def _rows(text):
    return list(csv.reader(io.StringIO(text)))


def _report_scores(html: str) -> dict:
    """{student: score} from the report's per-student table."""
    part = html[html.index('id="students"'):]
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r"<tr><td>([^<]+)</td><td>[^<]*</td><td>" + A + r"</td><td class=n>([0-9.]+) / ", part)}


def test_every_output_agrees_with_the_policy(klass):
    root = klass
    want = _expected(root)
    raw_full = json.loads((root / "results" / "s1ontime" / A / "results.json").read_text())["max_score"]
    buggy_raw = json.loads((root / "results" / "s7buggy" / A / "results.json").read_text())["score"]
    assert 0 < buggy_raw < raw_full, "the buggy notebook must lose some points, not all"
    assert want["s5verylate"] == 0 and want["s4late39h"] == pytest.approx(0.8 * raw_full)
    table = {s: {} for s in CLASS}

    # grades.csv and results.json
    rows = list(csv.DictReader(open(root / "results" / "grades.csv")))
    assert list(rows[0])[:4] == ["student_id", "assignment", "score", "max_score"]
    for r in rows:
        table[r["student_id"]]["grades.csv"] = float(r["final_score"])
        assert float(r["score"]) - float(r["late_penalty"]) == pytest.approx(float(r["final_score"]))
        assert (r["late"] == "yes") == (CLASS[r["student_id"]][1] > 0), r
    for s in CLASS:
        doc = json.loads((root / "results" / s / A / "results.json").read_text())
        assert doc["score"] == sum(t["points"] for t in doc["tests"])  # the CONTRACT's score stays the raw sum
        table[s]["results.json"] = doc["final_score"]
        assert doc["late"]["submitted"].startswith(CLASS[s][0].strftime("%Y-%m-%dT%H:%M"))

    # the exports, each with the Canvas roster
    roster = str(root / "roster.csv")
    policy = ["--late-policy", str(root / "late_policy.yml"), "--roster", roster]
    r = _cli("export", str(root / "results"), "--format", "canvas", *policy, "--canvas-column", f"{A}=RNN lab")
    assert r.returncode == 0, r.stderr
    canvas = _rows(r.stdout)
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "RNN lab (73412)"]
    for row in canvas[2:]:
        if row[3] in CLASS:
            table[row[3]]["canvas"] = float(row[5])
    assert [row for row in canvas if row[3] == ABSENT][0][5] == "0"  # an explicit 0, never blank
    r = _cli("export", str(root / "results"), "--format", "moodle", *policy)
    moodle = list(csv.DictReader(io.StringIO(r.stdout)))
    for row in moodle:  # Canvas's "Last, First" names: here "s1ontime, Student"
        if row["Last name"] in CLASS:
            table[row["Last name"]]["moodle"] = float(row[A])
    assert [row[A] for row in moodle if row["Last name"] == ABSENT] == ["0"]
    r = _cli("export", str(root / "results"), "--format", "long", *policy)
    for row in csv.DictReader(io.StringIO(r.stdout)):
        if row["sis_login_id"] in CLASS:
            table[row["sis_login_id"]]["long"] = float(row["score"])
        else:
            assert row["sis_login_id"] == ABSENT and row["status"] == "missing" and row["score"] == "0"
    r = _cli("export", str(root / "results"), "--format", "per-question", "--late-policy",
             str(root / "late_policy.yml"))
    pq = _rows(r.stdout)
    for row in pq[2:]:
        table[row[0]]["per-question"] = float(dict(zip(pq[0], row))[f"{A}: total"])
    # the report
    out = root / "report.html"
    r = _cli("report", str(root / "results"), *policy, "--out", str(out))
    assert r.returncode == 0, r.stderr
    for s, v in _report_scores(out.read_text()).items():
        if s in table:
            table[s]["report"] = v
    # nbgrader: the gradebook, `nbgrader export` and the combined CSV
    r = _cli("gradebook", str(root / "results"), "--submitted", str(root / "submitted"), "--export",
             str(root / "combined.csv"), cwd=root)
    assert r.returncode == 0, r.stderr
    for row in csv.DictReader(open(root / "combined.csv")):
        table[row["student_id"]]["combined"] = float(row["score"])
    _nbgrader(root, "export", f"--to={root / 'nbgrader-export.csv'}")
    for row in csv.DictReader(open(root / "nbgrader-export.csv")):
        if row["student_id"] in table:
            table[row["student_id"]]["nbgrader export"] = float(row["score"])

    outputs = ["grades.csv", "results.json", "canvas", "moodle", "long", "per-question", "report", "combined",
               "nbgrader export"]
    lines = ["| student | late by | by hand | " + " | ".join(outputs) + " |"]
    for s in CLASS:
        lines.append(f"| {s} | {CLASS[s][0] - DUE} | {want[s]:g} | "
                     + " | ".join(f"{table[s].get(o, 'ABSENT')}" for o in outputs) + " |")
    (root / "agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for s in CLASS:
        for o in outputs:
            assert table[s].get(o) == pytest.approx(want[s], abs=1e-3), (s, o, table[s], "\n".join(lines))


def test_roster_names_unknown_submitters_and_fills_sis_columns(klass, tmp_path):
    root = klass
    short = tmp_path / "roster.csv"  # our own roster format, without two of the students
    short.write_text("id,name,email,sis_user_id,sis_login_id,section\n"
                     "s1ontime,\"Lovelace, Ada\",ada@example.edu,U1,ada,S1\n"
                     "s2grace,Grace Hopper,grace@example.edu,U2,grace,S1\n"
                     f"{ABSENT},Alan Turing,alan@example.edu,U8,alan,S2\n")
    r = _cli("export", str(root / "results"), "--format", "canvas", "--roster", str(short), "--late-policy",
             str(root / "late_policy.yml"), "--non-submitters", "missing")
    assert r.returncode == 0, r.stderr
    rows = _rows(r.stdout)
    assert [row[:5] for row in rows[2:]] == [["Lovelace, Ada", "", "U1", "ada", "S1"],
                                             ["Grace Hopper", "", "U2", "grace", "S1"],
                                             ["Alan Turing", "", "U8", "alan", "S2"]]
    assert rows[4][5] == ""  # --non-submitters missing: left for Canvas's missing policy
    assert "not on the roster" in r.stderr and "s3late" in r.stderr and "s7buggy" in r.stderr
    r = _cli("export", str(root / "results"), "--format", "moodle", "--roster", str(short))
    assert _rows(r.stdout)[1][:4] == ["Ada", "Lovelace", "U1", "ada@example.edu"]
    r = _cli("export", str(root / "results"), "--format", "canvas", "--roster", str(tmp_path / "nope.csv"))
    assert r.returncode == 2 and "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_stale_results_are_marked_after_only(klass, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(klass / "results", root / "results")
    shutil.copytree(klass / "submitted", root / "submitted")
    # s2grace resubmits (its notebook changes) and s3late's result was made by other hidden tests (its
    # recorded hash differs from what the current tests give): both are stale after --only s1ontime
    nb = root / "submitted" / "s2grace" / A / "rnn_numpy.ipynb"
    d = json.loads(nb.read_text())
    d["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "resubmitted"})
    nb.write_text(json.dumps(d))
    rj = root / "results" / "s3late" / A / "results.json"
    doc = json.loads(rj.read_text())
    doc["submission_hash"] = "0" * 16
    rj.write_text(json.dumps(doc))
    r = run_grader(root / "submitted", root / "results", "--only", "s1ontime", "--late-policy",
                   str(klass / "late_policy.yml"))
    assert r.returncode == 0, r.stderr
    rows = {row["student_id"]: row for row in csv.DictReader(open(root / "results" / "grades.csv"))}
    assert {s for s, row in rows.items() if row["stale"] == "yes"} == {"s2grace", "s3late"}
    assert "stale" in r.stderr and "s2grace" in r.stderr and "s3late" in r.stderr
    r = run_grader(root / "submitted", root / "results", "--late-policy", str(klass / "late_policy.yml"))
    assert r.returncode == 0, r.stderr  # a plain rerun regrades what changed: nothing stale any more
    assert "stale" not in open(root / "results" / "grades.csv").readline()


@pytest.mark.parametrize("width", [1280, 400])
def test_report_reads_at_1280_and_400_px(klass, width, tmp_path):
    out = tmp_path / "report.html"
    r = _cli("report", str(klass / "results"), "--roster", str(klass / "roster.csv"), "--late-policy",
             str(klass / "late_policy.yml"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    # the absent student is listed apart and not counted: 7 submitted, rates among those who attempted
    assert re.search(r"Missing \(1\)", html) and ABSENT in html[html.index('id="missing"'):html.index('id="scores"')]
    assert re.search(rf"<td>{A}</td><td class=n>7</td>", html)
    assert re.search(r"<code>rnn_step_forward</code></td><td class=n>6</td><td class=n>7</td><td class=n>0</td>", html)
    with headless_chromium(f"{width},1000") as drv:
        drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": width < 500})
        drv.get(out.as_uri())
        info = drv.execute_script("""
            const tables = Array.from(document.querySelectorAll('table'));
            return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
                    imgs: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width]),
                    tables: tables.length,
                    unboxed: tables.filter(t => !t.parentElement.classList.contains('scroll')).length,
                    font: parseFloat(getComputedStyle(document.body).fontSize)};""")
        shot = tmp_path / f"report-{width}.png"
        drv.save_screenshot(str(shot))
    assert info["inner"] == width, info
    assert info["scroll"] <= width, f"the page scrolls sideways at {width} px: {info}"
    assert info["tables"] and info["unboxed"] == 0, info
    assert all(c and nw > 100 and w <= width for c, nw, w in info["imgs"]), info
    assert info["font"] >= 12
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size[0] == width
    lo, hi = img.getextrema()
    assert hi - lo > 100, "the screenshot is blank"
