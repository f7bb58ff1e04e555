"""Shared fixtures: the book built once, and the whole course graded once (reference and stubs)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def run_grader(submitted: Path, out: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(out),
                           "--no-progress", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def make_class(root: Path, students: dict[str, dict[str, Path]]) -> Path:
    """students: {student_id: {assignment: folder of notebooks}} -> nbgrader's submitted/ layout."""
    for sid, assignments in students.items():
        for a, src in assignments.items():
            dst = root / sid / a
            dst.mkdir(parents=True, exist_ok=True)
            for nb in src.glob("*.ipynb"):
                shutil.copy(nb, dst / nb.name)
    return root


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """Every chapter's reference notebooks (student 'reference') and released stubs ('stub')."""
    root = tmp_path_factory.mktemp("course")
    sub = make_class(root / "submitted", {
        "reference": {c: REPO / "solutions" / c for c in CHAPTERS},
        "stub": {c: REPO / "exercises" / c for c in CHAPTERS},
    })
    out = root / "results"
    r = run_grader(sub, out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    return out


def load_results(out: Path, student: str, assignment: str) -> dict:
    return json.loads((out / student / assignment / "results.json").read_text())


@pytest.fixture(scope="session")
def built_book():
    """Build the executed book once (warnings are errors); returns _build/html."""
    if os.environ.get("SKIP_BOOK"):
        pytest.skip("SKIP_BOOK is set")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)
    log = r.stdout + r.stderr
    (REPO / "_build").mkdir(exist_ok=True)
    (REPO / "_build" / "build.log").write_text(log)
    assert r.returncode == 0, "book build failed (see _build/build.log):\n" + log[-4000:]
    return REPO / "_build" / "html"
