"""The Gradescope autograder zip: built by `python -m autograder gradescope`, unpacked into a /autograder
layout laid out in a temporary root, and run there (run_autograder) on the reference, a stub and a
buggy notebook. Its results.json is checked against Gradescope's specification's fields."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

from autograder import gradescope as gs

A = "ch01_gradients"  # the quickest chapter to grade
# Gradescope's autograder specification (results.json): every key it defines, and the visibilities.
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
VISIBILITIES = {"visible", "hidden", "after_due_date", "after_published"}
DUE = "2026-11-20T23:59:00.000000-08:00"


def validate(doc: dict) -> None:
    assert set(doc) <= TOP_KEYS, f"keys outside Gradescope's spec: {set(doc) - TOP_KEYS}"
    assert isinstance(doc["score"], (int, float)) and isinstance(doc["output"], str)
    assert isinstance(doc["execution_time"], (int, float)) and doc["execution_time"] >= 0
    assert doc.get("visibility", "visible") in VISIBILITIES
    assert doc.get("stdout_visibility", "hidden") in VISIBILITIES
    assert isinstance(doc["tests"], list) and doc["tests"]
    numbers = set()
    for t in doc["tests"]:
        assert set(t) <= TEST_KEYS, f"test keys outside the spec: {set(t) - TEST_KEYS}"
        for k in ("name", "score", "max_score", "output", "visibility"):
            assert k in t, f"test without {k}: {t}"
        assert isinstance(t["name"], str) and t["name"] and isinstance(t["output"], str)
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"]
        assert t["visibility"] in VISIBILITIES and t.get("status", "passed") in ("passed", "failed")
        numbers.add(t["number"])
    assert len(numbers) == len(doc["tests"])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gs") / f"{A}.zip"
    r = subprocess.run([sys.executable, "-m", "autograder", "gradescope", A, "--out", str(out),
                        "--late-penalty", "10", "--late-days", "3", "--grace-minutes", "15"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_zip_follows_the_spec_and_holds_the_engine_as_built(bundle):
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        cfg = json.loads(z.read("gradescope.json"))
    for f in ("setup.sh", "run_autograder"):
        assert f in names and modes[f] & stat.S_IXUSR, f"{f} must be at the zip's root and executable"
    pkg = REPO / "autograder"
    engine = {f"autograder/{p.relative_to(pkg)}" for p in pkg.rglob("*.py")
              if "__pycache__" not in p.parts and not (p.relative_to(pkg).parts[0] == "tests"
                                                      and len(p.relative_to(pkg).parts) > 2)}
    assert engine <= names, f"engine files missing from the zip: {sorted(engine - names)[:5]}"
    hidden = {f"autograder/tests/{A}/{p.name}" for p in (pkg / "tests" / A).glob("*.py")}
    assert hidden <= names
    others = [n for n in names if n.startswith("autograder/tests/") and n.count("/") > 2
              and n.split("/")[2] != A and n.split("/")[-1].startswith("test_")]
    assert not others, f"another assignment's hidden tests in the zip: {others[:3]}"
    assert {f"exercises/{A}/{p.name}" for p in (REPO / "exercises" / A).glob("*.ipynb")} <= names
    assert "rnnlib/__init__.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "tests/", "tools/"))]
    assert cfg["assignment"] == A and cfg["late_policy"]["percent_per_day"] == 10


def test_unknown_assignment_is_one_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "ch99_nothing", "--out",
                        str(tmp_path / "x.zip")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "ch99_nothing" in r.stderr and not (tmp_path / "x.zip").exists()


def _layout(bundle: Path, root: Path, notebooks: dict[str, dict], metadata: dict) -> Path:
    """What Gradescope's harness lays out: /autograder/{source,run_autograder,submission,...}."""
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    for name, nb in notebooks.items():
        (root / "submission" / name).write_text(json.dumps(nb))
    (root / "submission_metadata.json").write_text(json.dumps(metadata))
    return root


def _metadata(created_at: str, user_due: str | None = None) -> dict:
    user = {"email": "ada@example.com", "id": 4242, "name": "Ada"}
    if user_due:
        user["assignment"] = {"due_date": user_due}
    return {"id": 1, "created_at": created_at, "assignment": {"due_date": DUE, "late_due_date": None,
                                                             "title": "Chapter 1", "total_points": "43.0"},
            "submission_method": "upload", "users": [user], "previous_submissions": []}


def _run(bundle, root: Path, notebooks, metadata) -> dict:
    _layout(bundle, root, notebooks, metadata)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    r = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads((root / "results" / "results.json").read_text())
    validate(doc)
    return doc


def _notebooks(folder: str, mutate=None) -> dict[str, dict]:
    out = {}
    for p in sorted((REPO / folder / A).glob("*.ipynb")):
        nb = json.loads(p.read_text())
        if mutate:
            mutate(p.name, nb)
        out[p.name] = nb
    return out


ON_TIME = "2026-11-20T20:00:00.000000-08:00"


def test_reference_gets_full_marks(bundle, tmp_path):
    doc = _run(bundle, tmp_path / "autograder", _notebooks("solutions"), _metadata(ON_TIME))
    total = sum(t["max_score"] for t in doc["tests"])
    assert total > 0 and doc["score"] == total, doc["output"]
    assert all(t["score"] == t["max_score"] for t in doc["tests"])
    assert "late" not in doc["output"]


def test_stub_gets_zero(bundle, tmp_path):
    doc = _run(bundle, tmp_path / "autograder", _notebooks("exercises"), _metadata(ON_TIME))
    assert doc["score"] == 0 and all(t["score"] == 0 for t in doc["tests"])
    assert all(t["output"] for t in doc["tests"]), "every failed test says why"


def _bug(name, nb):
    for c in nb["cells"]:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "tanh_backward":
            src = "".join(c["source"])
            assert "dout * (1 - out ** 2)" in src
            c["source"] = src.replace("dout * (1 - out ** 2)", "dout * (1 - out)")


def test_buggy_notebook_loses_points_on_its_own_function_and_late_penalty_applies(bundle, tmp_path):
    late = "2026-11-22T08:00:00.000000-08:00"  # 32 h after the due date: 2 started days, 20 %
    doc = _run(bundle, tmp_path / "autograder", _notebooks("solutions", _bug), _metadata(late))
    lost = {t["tags"][0] for t in doc["tests"] if t["score"] < t["max_score"]}
    assert "tanh_backward" in lost and lost <= {"tanh_backward", "two_layer_net"}, lost  # the net calls it
    raw = sum(t["score"] for t in doc["tests"])
    assert 0 < raw < sum(t["max_score"] for t in doc["tests"])
    assert doc["score"] == pytest.approx(raw * 0.8), doc["output"]
    assert "20 % late penalty" in doc["output"]
    assert doc["extra_data"]["late_factor"] == pytest.approx(0.8)


def test_missing_notebook_is_reported(bundle, tmp_path):
    nbs = _notebooks("solutions")
    dropped = sorted(nbs)[0]
    del nbs[dropped]
    doc = _run(bundle, tmp_path / "autograder", nbs, _metadata(ON_TIME))
    assert dropped in doc["output"] and 0 < doc["score"] < sum(t["max_score"] for t in doc["tests"])


# ------------------------------------------------------------------ the late policy, unit by unit
POLICY = {"percent_per_day": 10, "max_late_days": 3, "grace_minutes": 15}


@pytest.mark.parametrize("created, user_due, factor", [
    ("2026-11-20T23:00:00-08:00", None, 1.0),              # on time
    ("2026-11-21T00:10:00-08:00", None, 1.0),              # inside the 15 minutes' grace
    ("2026-11-21T00:30:00-08:00", None, 0.9),              # 31 min late: one started day
    ("2026-11-23T23:00:00-08:00", None, 0.7),              # 71 h: three days
    ("2026-11-24T01:00:00-08:00", None, 0.0),              # past the 3 late days
    ("2026-11-23T23:00:00-08:00", "2026-11-25T00:00:00-08:00", 1.0),  # the student's extension
    ("2026-11-21T09:00:00Z", None, 0.9),                   # another time zone: 02:00 -08:00
])
def test_late_factor(created, user_due, factor):
    f, why = gs.late_factor(_metadata(created, user_due), POLICY)
    assert f == pytest.approx(factor)
    assert bool(why) == (factor < 1.0)


def test_no_policy_no_penalty():
    assert gs.late_factor(_metadata("2027-01-01T00:00:00Z"), None) == (1.0, "")


def test_results_conversion_reads_only_contract_keys_and_optional_extras():
    res = {"student_id": "s", "assignment": A, "score": 1.0, "max_score": 3.0, "subtotals": {"f": {"score": 1, "max_score": 3}},
           "tests": [{"name": "test_f_a", "function": "f", "points": 1.0, "max_points": 1.0, "status": "passed",
                      "message": ""},
                     {"name": "test_f_b", "function": "f", "points": 0.0, "max_points": 2.0, "status": "error",
                      "message": "crash", "grader_fault": True, "some_future_key": [1]}]}
    doc = gs.to_gradescope(res, "after_due_date", 0.5, ["note"], 1.0)
    doc["execution_time"] = 1.0
    validate(doc)
    assert doc["score"] == 0.5 and doc["tests"][1]["output"].startswith("error: crash")
    assert "grader" in doc["tests"][1]["output"] and "f: 1 / 3" in doc["output"]


ASSIGNMENTS = sorted(p.name for p in (REPO / "autograder" / "tests").iterdir() if p.is_dir() and p.name[0] != "_")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignments_zip_loads_its_hidden_tests_on_its_own(assignment, tmp_path):
    """Unpacked alone, each zip imports its hidden tests (helpers shared across chapters included) and no
    other assignment's tests."""
    gs.build_zip(assignment, tmp_path / "a.zip")
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        z.extractall(tmp_path / "source")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import sys; sys.path.insert(0, '.'); from autograder import runner; "
            f"t = runner.load_assignment({assignment!r}); "
            "print(sum(len(n.tests) for n in t), sorted(a for a in runner.assignments() "
            "if any(n.tests for n in runner.load_assignment(a))))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "source", env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    n, graded = r.stdout.split(" ", 1)
    assert int(n) > 0 and graded.strip() == repr([assignment]), r.stdout
