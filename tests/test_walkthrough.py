"""CONTRIBUTING.md's walk-through, done: in a scratch copy of the repository, `make new-chapter`
scaffolds a chapter that builds, releases and grades (reference 100 %, stub 0), with every generated
list current; then the scratch copy is removed and the repository is unchanged."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

ID, TITLE = "ch09_scratch", "9. Scratch"


def _tracked_files():
    r = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    return [f for f in r.stdout.split("\0") if f]


def test_contributing_describes_the_walkthrough():
    text = (REPO / "CONTRIBUTING.md").read_text()
    assert "make new-chapter ID=ch09_topic" in text and "chapters.yml" in text


@pytest.fixture
def scratch():
    """The scratch copy lives under _build/ (ignored by git), not under /tmp: the grader's sandbox gives
    student code a private /tmp, so a course whose code sits in /tmp cannot be graded."""
    root = REPO / "_build" / f"walkthrough-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_new_chapter_walkthrough(tmp_path, scratch):
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    root = scratch
    for f in _tracked_files():
        if (REPO / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, root / f)
    venv = Path(sys.executable).parent.parent
    (root / ".venv").symlink_to(venv)
    # -o: the shared virtual environment counts as installed (the copied requirements.txt is newer)
    make = ["make", "-o", ".venv/.installed", "VENV=.venv"]

    def run(*cmd, timeout=600):
        r = subprocess.run(list(cmd), cwd=root, capture_output=True, text=True, timeout=timeout,
                           env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                                "PYTHONPATH": str(root)})
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r.stdout + r.stderr

    # 1. scaffold
    out = run(*make, "new-chapter", f"ID={ID}", f"TITLE={TITLE}")
    for part in (f"book/{ID}.md", f"solutions/{ID}/scratch_numpy.ipynb",
                 f"autograder/tests/{ID}/test_scratch_numpy.py"):
        assert (root / part).is_file(), f"make new-chapter did not write {part}:\n{out}"
    assert f"file: book/{ID}\n" in (root / "_toc.yml").read_text()
    assert f"| {TITLE} | `scratch_numpy` |" in (root / "book" / "exercises.md").read_text()
    assert ID in (root / "chapters.mk").read_text()
    run(sys.executable, "tools/chapters.py", "check")
    # a second scaffold of the same id is refused
    r = subprocess.run([sys.executable, "tools/chapters.py", "new", ID, "--title", TITLE], cwd=root,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "already" in (r.stdout + r.stderr)
    # 2. the book page builds alone (CONTRIBUTING's quick command) and executes
    run(str(venv / "bin" / "jupyter-book"), "build", f"book/{ID}.md", timeout=900)
    pages = list((root / "_build" / "_page").rglob(f"{ID}.html"))
    assert pages and "output shape: (4, 2)" in pages[0].read_text(), "the scaffolded page was not executed"
    # 3-5. release with nbgrader, sync points, grade: reference 100 %, stub 0
    run(*make, "release", f"CHAPTERS={ID}")
    assert (root / "exercises" / ID / "scratch_numpy.ipynb").is_file()
    out = run(sys.executable, "-m", "autograder", "sync-points", ID)
    out = run(sys.executable, "tools/selfcheck.py", ID)
    assert "selfcheck: OK" in out and f"{ID}" in out and "reference 2/2" in out and "stub      0/2" in out, out
    # the project's own checks on the scratch copy: manifest, parts, points, contract
    out = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_manifest.py")
    # 6. remove
    shutil.rmtree(root)
    assert not root.exists()
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    assert after == before, "the walk-through changed the repository itself"
    assert not (REPO / "book" / f"{ID}.md").exists()
