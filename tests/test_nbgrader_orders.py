"""nbgrader without traps (issue 21): the due date set before or after the first load gives the same,
right grades in `nbgrader export` and the combined CSV; a gradebook already broken by the old order is
repaired; `nbgrader zip_collect` works as docs/grading-nbgrader.md says (the course's filename pattern,
timestamps to the minute, read by the late policy).

The class is graded once by `python -m autograder grade`; each order runs real nbgrader commands
(`nbgrader db assignment add --duedate`, `nbgrader export`, `nbgrader zip_collect`) on its own copy of a
course root whose nbgrader_config.py says "zero" (no late_policy.yml: nbgrader's settings are the policy).
"""
import csv
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, make_class, run_grader

A = "ch02_rnn"
BIN = Path(sys.executable).parent
DUE = "2026-10-08 17:00:00 UTC"
STAMPS = {"ontime": "2026-10-08 16:59:00.000000 UTC", "late": "2026-10-08 17:01:00.000000 UTC",
          "stub": "2026-10-01 09:00:00.000000 UTC"}


def _env():
    return dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(REPO))


def _nbgrader(root, *args, check=True):
    r = subprocess.run([str(BIN / "nbgrader"), *args], cwd=root, capture_output=True, text=True, env=_env(),
                       timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def _autograder(root, *args):
    r = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=root, capture_output=True, text=True,
                       env=_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("orders")
    make_class(root / "submitted", {"ontime": {A: REPO / "solutions" / A}, "late": {A: REPO / "solutions" / A},
                                    "stub": {A: REPO / "exercises" / A}})
    for s, t in STAMPS.items():
        (root / "submitted" / s / A / "timestamp.txt").write_text(t + "\n")
    r = run_grader(root / "submitted", root / "results")
    assert r.returncode == 0, r.stderr
    return root


def _course(graded, dest: Path) -> Path:
    dest.mkdir()
    shutil.copytree(REPO / "solutions" / A, dest / "solutions" / A)
    shutil.copytree(graded / "submitted", dest / "submitted")
    shutil.copytree(graded / "results", dest / "results")
    shutil.copy(REPO / "nbgrader_config.py", dest)
    with open(dest / "nbgrader_config.py", "a") as f:
        f.write("\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    return dest


def _load_and_export(root) -> tuple[dict, dict, str]:
    r = _autograder(root, "gradebook", "results", "--submitted", "submitted", "--export", "combined.csv")
    _nbgrader(root, "export", "--to=nbgrader.csv")
    ours = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
            for row in csv.DictReader(open(root / "combined.csv"))}
    theirs = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
              for row in csv.DictReader(open(root / "nbgrader.csv"))}
    return ours, theirs, r.stderr


def _want(graded) -> dict:
    full = {row["student_id"]: float(row["max_score"]) for row in csv.DictReader(open(graded / "results/grades.csv"))}
    return {"ontime": (full["ontime"], full["ontime"]), "late": (0.0, full["late"]), "stub": (0.0, full["stub"])}


def test_due_date_before_the_first_load(graded, tmp_path):
    root = _course(graded, tmp_path / "before")
    _nbgrader(root, "db", "assignment", "add", A, f"--duedate={DUE}")  # creates the assignment, no notebooks
    ours, theirs, err = _load_and_export(root)
    want = _want(graded)
    assert want["ontime"][1] > 0
    assert ours == theirs == want, (ours, theirs, err)


def test_due_date_after_the_first_load(graded, tmp_path):
    root = _course(graded, tmp_path / "after")
    ours, theirs, _ = _load_and_export(root)
    assert ours["late"][0] == ours["late"][1] > 0  # no due date yet: nobody is late
    r = _nbgrader(root, "db", "assignment", "add", A, f"--duedate={DUE}", check=False)
    if r.returncode != 0:  # an nbgrader that refuses to add an existing assignment: set it as formgrader does
        from nbgrader.api import Gradebook
        from nbgrader.utils import parse_utc

        with Gradebook(f"sqlite:///{root}/.nbgrader/gradebook.db") as gb:
            gb.update_or_create_assignment(A, duedate=parse_utc(DUE))
    ours, theirs, err = _load_and_export(root)
    assert ours == theirs == _want(graded), (ours, theirs, err)


def test_a_gradebook_broken_by_the_old_order_is_repaired(graded, tmp_path):
    """What the old bridge left: the assignment without notebooks and a submission on it (0/0 for all)."""
    from nbgrader.api import Gradebook

    root = _course(graded, tmp_path / "broken")
    _nbgrader(root, "db", "assignment", "add", A, f"--duedate={DUE}")
    with Gradebook(f"sqlite:///{root}/.nbgrader/gradebook.db") as gb:
        gb.update_or_create_student("late")
        gb.add_submission(A, "late")
    ours, theirs, err = _load_and_export(root)
    assert ours == theirs == _want(graded), (ours, theirs, err)


def test_zip_collect_with_the_course_pattern(tmp_path):
    """docs/grading-nbgrader.md: files named <student>_<YYYY-MM-DDTHHMM>_<notebook>.ipynb in
    downloaded/<assignment>/archive/ (loose or zipped) land in submitted/ with a timestamp to the minute."""
    from autograder.platforms.latepolicy import LatePolicy, read_timestamp

    root = tmp_path / "zc"
    shutil.copytree(REPO / "solutions" / A, root / "solutions" / A)
    shutil.copy(REPO / "nbgrader_config.py", root)
    archive = root / "downloaded" / A / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "canvas-download.zip", "w") as z:
        for who, t in (("alice", "2026-10-08T1705"), ("bob_smith", "2026-10-07T0900")):
            for nb in ("rnn_numpy", "rnn_torch"):
                z.write(REPO / "solutions" / A / f"{nb}.ipynb", f"{who}_{t}_{nb}.ipynb")
        z.writestr("readme.txt", "not a submission")
    shutil.copy(REPO / "solutions" / A / "rnn_numpy.ipynb", archive / "carol_2026-10-09T0000_rnn_numpy.ipynb")
    r = _nbgrader(root, "zip_collect", A)
    sub = root / "submitted"
    assert sorted(p.relative_to(sub).as_posix() for p in sub.rglob("*") if p.is_file()) == [
        f"alice/{A}/rnn_numpy.ipynb", f"alice/{A}/rnn_torch.ipynb", f"alice/{A}/timestamp.txt",
        f"bob_smith/{A}/rnn_numpy.ipynb", f"bob_smith/{A}/rnn_torch.ipynb", f"bob_smith/{A}/timestamp.txt",
        f"carol/{A}/rnn_numpy.ipynb", f"carol/{A}/timestamp.txt"], r.stderr
    assert "readme.txt" in r.stderr  # skipped, with a warning
    pol = LatePolicy.from_dict({"due": {A: "2026-10-08 17:00"}, "percent": 10})
    lat = {s: pol.assess(A, s, read_timestamp(sub / s / A)) for s in ("alice", "bob_smith", "carol")}
    assert lat["alice"].minutes_late == 5 and lat["alice"].percent == 10
    assert not lat["bob_smith"].late and lat["carol"].minutes_late == 7 * 60
