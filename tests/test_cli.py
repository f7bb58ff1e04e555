"""The command line: the CONTRACT's arguments and exit codes, resumability after kill -9, --force,
identical regrading, workers and a Dask cluster giving the same grades."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, make_class, run_grader

A = "ch01_gradients"


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_bad_arguments_fail_with_one_clear_line(tmp_path):
    for args in (["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                 ["grade", str(tmp_path), "--out", str(tmp_path / "o"), "--assignment", "no_such_chapter"],
                 ["grade", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "0"]):
        r = _cli(*args)
        assert r.returncode != 0
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("autograder: error:"), r.stderr
    r = _cli("grade", str(tmp_path))  # --out missing: argparse's usage error
    assert r.returncode == 2


def test_list_shows_every_test():
    r = _cli("list")
    assert r.returncode == 0 and "test_affine_forward_parity" in r.stdout


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    students = {f"s{i:02d}": {A: REPO / ("solutions" if i % 2 == 0 else "exercises") / A} for i in range(6)}
    return make_class(root / "submitted", students)


def _grades(out):
    return sorted(open(out / "grades.csv").read().splitlines())


def test_kill_9_then_resume_loses_and_duplicates_nothing(small_class, tmp_path):
    out = tmp_path / "results"
    p = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(small_class), "--out", str(out),
                          "--no-progress"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*/*/results.json"))) < 2:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done_before = {f.parent.parent.name: f.stat().st_mtime for f in out.glob("*/*/results.json")}
    assert 1 <= len(done_before) < 6, "the kill should land mid-run"
    for f in out.glob("*/*/results.json"):  # results are written atomically: none is torn
        json.loads(f.read_text())
    r = run_grader(small_class, out)
    assert r.returncode == 0, r.stderr
    assert "already done" in r.stderr
    rows = _grades(out)
    assert len(rows) == 7  # header + one row per student, no duplicates
    for s, mtime in done_before.items():  # finished work was skipped, not redone
        assert (out / s / A / "results.json").stat().st_mtime == mtime
    for s in (f"s{i:02d}" for i in range(6)):
        doc = json.loads((out / s / A / "results.json").read_text())
        assert (doc["score"] == doc["max_score"]) == (int(s[1:]) % 2 == 0)


@pytest.fixture(scope="module")
def graded_small(small_class, tmp_path_factory):
    """small_class graded once with two local workers: the first run of the --force test and the local
    grades the Dask run must equal (a grader start costs about 4 CPU-s)."""
    out = tmp_path_factory.mktemp("graded") / "results"
    r = run_grader(small_class, out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    return out


def test_force_regrades_identically(small_class, graded_small, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(graded_small, out)
    first = {p.parent.parent.name: json.loads(p.read_text())["tests"] for p in out.glob("*/*/results.json")}
    r = run_grader(small_class, out, "--force")
    assert r.returncode == 0 and "0 already done" in r.stderr
    second = {p.parent.parent.name: json.loads(p.read_text())["tests"] for p in out.glob("*/*/results.json")}
    assert len(first) == 6 and first == second


def test_dask_cluster_gives_the_same_grades(small_class, graded_small, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        r = run_grader(small_class, tmp_path / "dask", "--scheduler", cl.scheduler_address)
    assert r.returncode == 0, r.stderr
    assert _grades(tmp_path / "dask") == _grades(graded_small)


def test_without_bubblewrap_grading_still_works_and_says_so(tmp_path):
    """As root without bubblewrap, each notebook still gets namespaces and a fresh uid (or, where the
    kernel refuses namespaces, a fresh uid alone): grading works, and every result says which."""
    sub = make_class(tmp_path / "submitted", {"ref": {A: REPO / "solutions" / A}})
    env = dict(os.environ, AUTOGRADER_NO_BWRAP="1")
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sub), "--out", str(tmp_path / "out"),
                        "--no-progress"], cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "out" / "ref" / A / "results.json").read_text())
    assert doc["score"] == doc["max_score"]
    if os.geteuid() == 0:
        assert "no bubblewrap" in r.stderr and doc["isolation"] in ("namespaces", "container"), doc["isolation"]
        assert f"isolation: {doc['isolation']}" in r.stderr
    else:
        assert doc["isolation"] in ("weak", "namespaces")


def test_weak_isolation_is_refused_unless_the_instructor_allows_it():
    """Where the student's code could read the grader's files (not root, no bubblewrap, no user
    namespaces), the preflight stops the run in one line; --allow-weak-isolation grades anyway."""
    import pytest

    from autograder.core import job
    from autograder.core.engine import Limits

    class Weak:
        isolation = "weak"

    with pytest.raises(job.Unfit, match="--allow-weak-isolation"):
        job.preflight(Weak(), Limits())
