"""One harness for everything that grades the course from outside: make student copies of notebooks,
lay out a class in nbgrader's submitted/ tree, run the grader, read its results.

Used by tests/conftest.py, tools/selfcheck.py, tools/mutation.py, benchmarks/bench_grading.py and the
nbgrader bridge test. Solution-marker handling lives here and nowhere else.

    from tools.course import student_copy, make_class, grade, results
    nb = student_copy("ch04_lstm", "lstm_numpy", edit={"lstm_step_forward": my_source})
    sub = make_class(tmp / "submitted", {"alice": {"ch04_lstm": {"lstm_numpy": nb}}})
    grade(sub, tmp / "out", "--workers", "2")
    results(tmp / "out", "alice", "ch04_lstm")["score"]
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK_B, MARK_E = "### BEGIN SOLUTION", "### END SOLUTION"
_REGION = re.compile(re.escape(MARK_B) + r"(.*?)" + re.escape(MARK_E), flags=re.S)


# ------------------------------------------------------------------------ solution markers
def strip_markers(src: str) -> str:
    """The source without its solution-marker lines (what a student who solved it would hand in)."""
    return "\n".join(l for l in src.splitlines() if MARK_B not in l and MARK_E not in l)


def solution_regions(src: str) -> list[str]:
    """The text inside each ### BEGIN SOLUTION ... ### END SOLUTION region of a cell."""
    return _REGION.findall(src)


def solution_line_numbers(src: str) -> set[int]:
    """1-based line numbers, in ``strip_markers(src)``, of the lines that were inside a solution region."""
    out, inside, n = set(), False, 0
    for line in src.splitlines():
        if MARK_B in line:
            inside = True
            continue
        if MARK_E in line:
            inside = False
            continue
        n += 1
        if inside:
            out.add(n)
    return out


# ------------------------------------------------------------------------------ notebooks
def load(path: Path) -> dict:
    """A notebook as a dict with each cell's source as one string."""
    nb = json.loads(Path(path).read_text())
    for c in nb["cells"]:
        c["source"] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return nb


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def answer_cells(nb: dict) -> dict[str, int]:
    """{graded name: cell index} for every answer cell."""
    return {grade_id(c): i for i, c in enumerate(nb["cells"])
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def student_copy(chapter: str, notebook: str, edit: dict | None = None, source: Path | None = None) -> dict:
    """The reference notebook ``solutions/<chapter>/<notebook>.ipynb`` as a student who solved it would
    hand it in (markers removed), with ``edit`` = {graded name or cell index: new source} applied."""
    nb = load(source or REPO / "solutions" / chapter / f"{notebook}.ipynb")
    nb = copy.deepcopy(nb)
    for c in nb["cells"]:
        c["source"] = strip_markers(c["source"])
    where = answer_cells(nb)
    for key, src in (edit or {}).items():
        i = key if isinstance(key, int) else where[key]
        nb["cells"][i]["source"] = src
    return nb


# ---------------------------------------------------------------------------------- class
def make_class(root: Path, students: dict) -> Path:
    """Lay out nbgrader's submitted/ tree: ``students`` = {student id: {assignment: what}}, where what is
    a folder of notebooks (copied), or {notebook stem: notebook dict, or raw text for a broken file}."""
    root = Path(root)
    for sid, assignments in students.items():
        for a, what in assignments.items():
            dst = root / sid / a
            dst.mkdir(parents=True, exist_ok=True)
            if isinstance(what, (str, Path)):
                for nb in Path(what).glob("*.ipynb"):
                    shutil.copy(nb, dst / nb.name)
            else:
                for stem, nb in what.items():
                    (dst / f"{stem}.ipynb").write_text(nb if isinstance(nb, str) else json.dumps(nb))
    return root


def grade(submitted: Path, out: Path, *args: str, timeout: float | None = 1800, cwd: Path = REPO,
          check: bool = False, wrap=None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m autograder grade SUBMITTED --out OUT --no-progress [args]``; output captured.
    ``wrap``: a function of the command line that runs it elsewhere (tests/container.py's ``wrap``)."""
    argv = [sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(out), "--no-progress", *args]
    r = subprocess.run(wrap(argv) if wrap else argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=env)
    if check and r.returncode:
        raise RuntimeError(f"the grader failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def results(out: Path, student: str, assignment: str) -> dict:
    return json.loads((Path(out) / student / assignment / "results.json").read_text())


def load_results_by_name(out: Path, student: str, assignment: str) -> dict:
    """{test name: its entry in results.json}."""
    return {t["name"]: t for t in results(out, student, assignment)["tests"]}
