"""nbgrader keeps working beside the grader: same maxima, results loadable into its gradebook,
`nbgrader export` agreeing with grades.csv, and `nbgrader autograde` running from the source."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.nbgrader_bridge import expected_cell_points
from conftest import CHAPTERS, REPO, run_grader

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_visible_test_points_equal_hidden_points(chapter):
    for path in sorted((REPO / "solutions" / chapter).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        want = expected_cell_points(chapter, path.stem, nb)
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            if m.get("grade"):
                gid = m["grade_id"]
                assert want.get(gid, 0) > 0, f"{path.name}: test cell {gid} checks no graded name above it"
                assert m["points"] == want[gid], (
                    f"{path.name}: test cell {gid} has {m['points']} points, its functions have {want[gid]} "
                    "hidden points: run `python -m autograder sync-points` and `make release`")


def _course(tmp_path, chapter="ch01_gradients"):
    shutil.copytree(REPO / "solutions" / chapter, tmp_path / "solutions" / chapter)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    r = subprocess.run([str(BIN / "nbgrader"), "generate_assignment", chapter, "--force"], cwd=tmp_path,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    for who, src in (("good", REPO / "solutions" / chapter), ("stub", REPO / "exercises" / chapter)):
        (tmp_path / "submitted" / who / chapter).mkdir(parents=True)
        for nb in src.glob("*.ipynb"):
            shutil.copy(nb, tmp_path / "submitted" / who / chapter / nb.name)
    return env


def test_results_load_into_nbgrader_gradebook(tmp_path):
    env = _course(tmp_path)
    r = run_grader(tmp_path / "submitted", tmp_path / "results")
    assert r.returncode == 0, r.stderr
    from autograder.nbgrader_bridge import import_results

    assert import_results(tmp_path / "results", tmp_path / "submitted", course_root=tmp_path) == 2
    r = subprocess.run([str(BIN / "nbgrader"), "export"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    ours = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
            for row in csv.DictReader(open(tmp_path / "results" / "grades.csv"))}
    theirs = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
              for row in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert theirs == ours
    assert ours["good"][0] == ours["good"][1] > 0 and ours["stub"][0] == 0
    assert (tmp_path / "autograded" / "good" / "ch01_gradients").is_dir()


def test_nbgrader_autograde_runs_from_the_source(tmp_path):
    env = _course(tmp_path)
    shutil.rmtree(tmp_path / "submitted" / "stub")
    r = subprocess.run([str(BIN / "nbgrader"), "autograde", "ch01_gradients", "--create", "--force"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(BIN / "nbgrader"), "export"], cwd=tmp_path, capture_output=True, text=True, env=env)
    row = next(csv.DictReader(open(tmp_path / "grades.csv")))
    assert float(row["score"]) == float(row["max_score"]) > 0
