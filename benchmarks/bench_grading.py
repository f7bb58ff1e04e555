"""Grading throughput: this grader with 1 and 2 workers against `nbgrader autograde`, on one class.

    python benchmarks/bench_grading.py [--students 40] [--chapters ch01_gradients ...]
                                       [--nbgrader-students 4] [--json OUT.json]

The class is generated from the course itself: each student hands in every chapter, 60 % correct
(reference code without markers), 25 % buggy (one operator flipped in one answer), 15 % broken
(the released stub, an invalid notebook, or a cell that calls os._exit). nbgrader is far slower, so
it grades the first --nbgrader-students students of the same class and the comparison is per
notebook. Overhead per notebook is measured on a class of released stubs (no student code runs
beyond raising NotImplementedError): what remains is the grader's own cost (sandbox fork, cell
plan, remote calls, trusted references). Prints a table of seconds and ratios measured in this run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent


from tools.course import grade as run_grader  # noqa: E402  (the course's one grading harness)
from tools.course import strip_markers  # noqa: E402


def variant(kind: str, nb: dict, i: int) -> str:
    nb = json.loads(json.dumps(nb))
    answers = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    for c in nb["cells"]:
        c["source"] = strip_markers("".join(c["source"]))
    if kind == "buggy" and answers:
        c = answers[i % len(answers)]
        c["source"] = re.sub(r" \+ ", " - ", c["source"], count=1) if " + " in c["source"] else \
            c["source"].replace("return ", "return 0 * ", 1)
    return json.dumps(nb)


def make_class(root: Path, students: int, chapters: list[str]) -> int:
    n = 0
    for i in range(students):
        sid = f"student{i:03d}"
        for ch in chapters:
            folder = root / sid / ch
            folder.mkdir(parents=True, exist_ok=True)
            for j, src in enumerate(sorted((REPO / "solutions" / ch).glob("*.ipynb"))):
                r = (i * 7 + j * 3) % 20
                kind = "correct" if r < 12 else "buggy" if r < 17 else "broken"
                if kind == "broken":
                    which = (i + j) % 3
                    if which == 0:
                        shutil.copy(REPO / "exercises" / ch / src.name, folder / src.name)
                    elif which == 1:
                        (folder / src.name).write_text('{"cells": [')
                    else:
                        nb = json.loads(variant("correct", json.load(open(src)), i))
                        nb["cells"].insert(1, {"cell_type": "code", "metadata": {}, "outputs": [],
                                               "execution_count": None, "source": "import os\nos._exit(1)"})
                        (folder / src.name).write_text(json.dumps(nb))
                else:
                    (folder / src.name).write_text(variant(kind, json.load(open(src)), i))
                n += 1
    return n


def grade(sub: Path, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    r = run_grader(sub, out, "--workers", str(workers), "--force", timeout=None)
    if r.returncode:
        raise SystemExit(r.stderr)
    return time.perf_counter() - t0


def nbgrader_autograde(sub: Path, students: list[str], chapters: list[str], tmp: Path) -> tuple[float, int]:
    course = tmp / "nbgrader_course"
    shutil.copytree(REPO / "solutions", course / "solutions")
    shutil.copy(REPO / "nbgrader_config.py", course)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    n = 0
    for ch in chapters:
        subprocess.run([str(BIN / "nbgrader"), "generate_assignment", ch, "--force", "--log-level=ERROR"],
                       cwd=course, env=env, check=True, capture_output=True)
        for s in students:
            shutil.copytree(sub / s / ch, course / "submitted" / s / ch)
            n += len(list((sub / s / ch).glob("*.ipynb")))
    t0 = time.perf_counter()
    for ch in chapters:
        subprocess.run([str(BIN / "nbgrader"), "autograde", ch, "--create", "--force", "--log-level=ERROR"],
                       cwd=course, env=env, capture_output=True)
    return time.perf_counter() - t0, n


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--chapters", nargs="*", default=None)
    p.add_argument("--nbgrader-students", type=int, default=4)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    from autograder.core import runner

    chapters = a.chapters or [c for c in runner.assignments() if (REPO / "solutions" / c).is_dir()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        sub = tmp / "submitted"
        n_nb = make_class(sub, a.students, chapters)
        stubs = tmp / "stubs"
        n_stub = make_class_stubs(stubs, max(4, a.students // 4), chapters)
        grade(stubs, tmp / "r0", 1)
        t_overhead = per_notebook_median(tmp / "r0")
        t1 = grade(sub, tmp / "r1", 1)
        t2 = grade(sub, tmp / "r2", 2)
        res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "chapters": chapters, "students": a.students, "notebooks": n_nb,
               "ours_1_worker_s_per_nb": t1 / n_nb, "ours_2_workers_s_per_nb": t2 / n_nb,
               "speedup_2_workers": t1 / t2, "overhead_s_per_nb": t_overhead,
               "ours_in_process_s_per_nb": per_notebook_median(tmp / "r1")}
        if a.nbgrader_students > 0:
            names = sorted(p.name for p in sub.iterdir())[: a.nbgrader_students]
            tn, n_nbg = nbgrader_autograde(sub, names, chapters, tmp)
            res.update(nbgrader_s_per_nb=tn / n_nbg, nbgrader_notebooks=n_nbg,
                       throughput_vs_nbgrader_1_worker=(tn / n_nbg) / (t1 / n_nb),
                       throughput_vs_nbgrader_2_workers=(tn / n_nbg) / (t2 / n_nb))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Grading benchmark on {res['machine']}: {res['students']} students x {len(chapters)} chapters "
          f"= {n_nb} notebooks")
    rows = [("this grader, 1 worker", f"{res['ours_1_worker_s_per_nb']:.3f} s/notebook", ""),
            ("this grader, 2 workers", f"{res['ours_2_workers_s_per_nb']:.3f} s/notebook",
             f"speed-up {res['speedup_2_workers']:.2f}x (target >= 1.8x)"),
            ("in-process time per notebook (median)", f"{res['ours_in_process_s_per_nb']:.3f} s/notebook",
             "the class above, start-up excluded"),
            ("overhead (released stubs, median)", f"{res['overhead_s_per_nb']:.3f} s/notebook", "target < 0.1 s")]
    if "nbgrader_s_per_nb" in res:
        rows += [(f"nbgrader autograde ({res['nbgrader_notebooks']} notebooks)", f"{res['nbgrader_s_per_nb']:.3f} s/notebook",
                  f"ours is {res['throughput_vs_nbgrader_1_worker']:.1f}x (1 worker), "
                  f"{res['throughput_vs_nbgrader_2_workers']:.1f}x (2 workers) its throughput (target >= 5x)")]
    for r in rows:
        print(f"  {r[0]:42s} {r[1]:>20s}   {r[2]}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return res


def per_notebook_median(out: Path) -> float:
    """Median over submissions of in-process grading seconds per notebook (start-up excluded)."""
    import statistics

    vals = []
    for line in (out / "timings.jsonl").read_text().splitlines():
        t = json.loads(line)
        vals.append(t["seconds"] / max(1, t["notebooks"]))
    return statistics.median(vals)


def make_class_stubs(root: Path, students: int, chapters: list[str]) -> int:
    n = 0
    for i in range(students):
        for ch in chapters:
            folder = root / f"stub{i:03d}" / ch
            folder.mkdir(parents=True)
            for nb in (REPO / "exercises" / ch).glob("*.ipynb"):
                shutil.copy(nb, folder / nb.name)
                n += 1
    return n


if __name__ == "__main__":
    main()
