"""`python -m autograder export` (Canvas and per-question CSV with a points-possible row) and
`python -m autograder report` (a self-contained HTML page, opened in headless Chromium)."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import headless_chromium, REPO, make_class, run_grader

EVIL = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned=2\"> & \"quotes\""


def _t(name, function, points, max_points, status, message="", **extra):
    return {"name": name, "function": function, "points": points, "max_points": max_points, "status": status,
            "message": message, **extra}


def _write(root: Path, sid: str, a: str, tests: list, **extra):
    d = root / sid / a
    d.mkdir(parents=True)
    doc = {"student_id": sid, "assignment": a, "score": sum(t["points"] for t in tests),
           "max_score": sum(t["max_points"] for t in tests), "tests": tests, **extra}
    (d / "results.json").write_text(json.dumps(doc))


@pytest.fixture
def synthetic(tmp_path) -> Path:
    """3 students x 2 assignments, with a timeout, a grader fault, a hostile message, unknown keys."""
    r = tmp_path / "results"
    for sid, ok_f, ok_g in (("alice", True, True), ("bob", False, True), ("carol", False, False)):
        _write(r, sid, "ch01_gradients", [
            _t("test_f_values", "f", 2.0 if ok_f else 0.0, 2.0, "passed" if ok_f else "failed",
               "" if ok_f else f"f: max abs error {0.5 if sid == 'bob' else 0.25} at entry (0, 1)"),
            _t("test_f_dtype", "f", 1.0, 1.0, "passed"),
            _t("test_g_values", "g", 3.0 if ok_g else 0.0, 3.0, "passed" if ok_g else "error",
               "" if ok_g else EVIL, future_key={"x": 1})], subtotals={"f": {"score": 1, "max_score": 3}})
    _write(r, "alice", "ch02_rnn", [_t("test_h", "h", 0.0, 4.0, "timeout", "h: call took longer than 10 s")])
    _write(r, "bob", "ch02_rnn", [_t("test_h", "h", 0.0, 4.0, "error", "the grader crashed", grader_fault=True)])
    (r / "grades.csv").write_text("student_id,assignment,score,max_score\n")
    (r / "dave" / "ch01_gradients").mkdir(parents=True)
    (r / "dave" / "ch01_gradients" / "results.json").write_text("{not json")
    return r


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_per_question_export(synthetic, tmp_path):
    out = tmp_path / "grades.csv"
    r = _cli("export", str(synthetic), "--format", "per-question", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "dave" in r.stderr and "unreadable" in r.stderr  # reported, not fatal
    rows = _rows(out.read_text())
    assert rows[0] == ["student_id", "ch01_gradients: f", "ch01_gradients: g", "ch02_rnn: h",
                       "ch01_gradients: total", "ch02_rnn: total"]
    assert rows[1] == ["Points Possible", "3", "3", "4", "6", "4"]
    assert rows[2:] == [["alice", "3", "3", "0", "6", "0"], ["bob", "1", "3", "0", "4", "0"],
                        ["carol", "1", "0", "0", "1", "0"]]  # no result: an explicit 0, never blank
    r = _cli("export", str(synthetic), "--format", "per-question", "--non-submitters", "missing")
    assert _rows(r.stdout)[4] == ["carol", "1", "0", "", "1", ""]


def test_canvas_export(synthetic):
    r = _cli("export", str(synthetic), "--format", "canvas", "--per-question")
    assert r.returncode == 0, r.stderr
    rows = _rows(r.stdout)
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1][0] == "Points Possible" and rows[1][5:] == ["3", "3", "4"]
    assert rows[2] == ["alice", "", "alice", "", "", "3", "3", "0"]
    for flags in ((), ("--per-assignment",)):  # one column per assignment is the default
        r = _cli("export", str(synthetic), "--format", "canvas", *flags)
        rows = _rows(r.stdout)
        assert rows[0][5:] == ["ch01_gradients", "ch02_rnn"] and rows[1][5:] == ["6", "4"]
        assert rows[4] == ["carol", "", "carol", "", "", "1", "0"]


def test_export_errors_are_one_clear_line(tmp_path):
    r = _cli("export", str(tmp_path / "nowhere"), "--format", "canvas")
    assert r.returncode == 2 and "not a directory" in r.stderr
    r = _cli("export", str(tmp_path), "--format", "canvas")
    assert r.returncode == 2 and "no results.json" in r.stderr


def test_report_is_self_contained_and_escaped(synthetic):
    r = _cli("report", str(synthetic))
    assert r.returncode == 0, r.stderr
    page = (synthetic / "report.html").read_text()
    assert "<script" not in page and "onerror=\"window" not in page
    assert html_escaped(EVIL) in page
    srcs = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs), srcs[:3]
    for needle in ("ch01_gradients: <code>g</code>", "Grader faults (1)", "Timeouts (1)", "the grader crashed",
                   "call took longer than 10 s", "dave"):
        assert needle in page, needle
    # the two messages of f that differ only in a number are grouped: one row, count 2
    assert re.search(r"<td class=n>2</td><td>ch01_gradients: <code>f</code></td><td>f: max abs error", page)


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("1200,1600") as drv:
        yield drv


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory) -> Path:
    """A real grading run of chapter 1: the reference, the released stub, and a buggy notebook."""
    root = tmp_path_factory.mktemp("cls")
    buggy = root / "buggy_src"
    buggy.mkdir()
    for p in (REPO / "solutions" / "ch01_gradients").glob("*.ipynb"):
        shutil.copy(p, buggy / p.name)
    nb = buggy / "gradients_numpy.ipynb"
    nb.write_text(nb.read_text().replace("dout * (1 - out ** 2)", "dout * (1 - out)"))
    sub = make_class(root / "submitted", {"ref": {"ch01_gradients": REPO / "solutions" / "ch01_gradients"},
                                          "stub": {"ch01_gradients": REPO / "exercises" / "ch01_gradients"},
                                          "buggy": {"ch01_gradients": buggy}})
    r = run_grader(sub, root / "results", "--assignment", "ch01_gradients", "--workers", "2")
    assert r.returncode == 0, r.stderr
    return root / "results"


def test_export_of_a_real_grading_run(graded_class):
    r = _cli("export", str(graded_class), "--format", "per-question")
    assert r.returncode == 0, r.stderr
    rows = _rows(r.stdout)
    head, possible = rows[0], rows[1]
    by = {row[0]: dict(zip(head, row)) for row in rows[2:]}
    grades = {row["student_id"]: row for row in csv.DictReader(open(graded_class / "grades.csv"))}
    total = "ch01_gradients: total"
    assert float(dict(zip(head, possible))[total]) == float(grades["ref"]["max_score"])
    for s in ("ref", "stub", "buggy"):
        assert float(by[s][total]) == float(grades[s]["score"]), s
        assert sum(float(by[s][c]) for c in head[1:] if c != total) == float(by[s][total])
    assert by["buggy"]["ch01_gradients: tanh_backward"] != dict(zip(head, possible))["ch01_gradients: tanh_backward"]
    assert by["buggy"]["ch01_gradients: relative_error"] == dict(zip(head, possible))["ch01_gradients: relative_error"]


def test_report_opens_in_chromium_with_its_figures(graded_class, browser, synthetic):
    for results in (graded_class, synthetic):
        out = results / "report.html"
        r = _cli("report", str(results), "--out", str(out))
        assert r.returncode == 0, r.stderr
        browser.get(out.as_uri())
        info = browser.execute_script("""
            const imgs = Array.from(document.images);
            return {n: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 100).length,
                    alt: imgs.filter(i => (i.alt || '').trim()).length, pwned: window.__pwned || 0,
                    h2: Array.from(document.querySelectorAll('h2')).map(h => h.innerText),
                    text: document.body.innerText};""")
        assert info["n"] == 2 and info["loaded"] == 2 and info["alt"] == 2, info
        assert info["pwned"] == 0, "text from results ran as HTML"
        assert any(h.startswith("Pass rate per graded name") for h in info["h2"]), info["h2"]
        if results == graded_class:
            assert "tanh_backward" in info["text"] and "Grader faults (0)" in info["text"]
        else:
            assert EVIL in info["text"]  # shown literally, as text
