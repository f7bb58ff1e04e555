"""Grading a class: discovering hidden tests, grading each submission, writing results atomically."""
from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import api, feedback, notebook, sandbox
from .engine import ChildGone, Host, Limits, Missing, StudentError

REPO = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent / "tests"
RELEASE_DIR = REPO / "exercises"
VERSION = "1"


# ------------------------------------------------------------------------------ discovery
@dataclass
class NotebookTests:
    notebook: str  # file stem, e.g. "gradients_numpy"
    tests: list  # [api.GradedTest]
    forbidden: dict  # {graded name: [substrings its cell must not contain]}


def assignments() -> list[str]:
    return sorted(p.name for p in TESTS_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def load_assignment(name: str) -> list[NotebookTests]:
    d = TESTS_DIR / name
    if not d.is_dir():
        raise KeyError(name)
    out = []
    for f in sorted(d.glob("test_*.py")):
        modname = f"autograder.tests.{name}.{f.stem}"
        mod = importlib.import_module(modname)
        tests = [t for t in api._REGISTRY if t.module == modname]
        out.append(NotebookTests(f.stem[len("test_"):], tests, getattr(mod, "FORBIDDEN", {})))
    return out


def tests_fingerprint(name: str) -> str:
    h = hashlib.sha256(VERSION.encode())
    for f in sorted((TESTS_DIR / name).glob("*.py")):
        h.update(f.read_bytes())
    for f in sorted((RELEASE_DIR / name).glob("*.ipynb")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------ one submission
def _result(t, status, message="", points=0.0):
    return {"name": t.name, "function": t.function, "points": float(points), "max_points": t.points,
            "status": status, "message": message}


def _find_notebook(folder: Path, nb: str, release: dict | None) -> tuple[Path | None, str]:
    exact = folder / f"{nb}.ipynb"
    if exact.is_file():
        return exact, ""
    if not folder.is_dir():
        return None, ""
    others = [p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")]
    if release is None or not others:
        return None, ""
    want = set(notebook.solution_ids(release))
    best, score = None, 0
    for p in others:
        try:
            ids = {notebook.nbgrader_meta(c).get("grade_id") for c in notebook.load_notebook(p)["cells"]}
        except notebook.BadNotebook:
            continue
        if len(want & ids) > score:
            best, score = p, len(want & ids)
    if best is not None and score:
        return best, f"{nb}.ipynb not found; graded {best.name}, which holds its answer cells (renamed?)"
    return None, ""


def grade_notebook(host_factory, nbt: NotebookTests, path: Path | None, release: dict | None,
                   note: str, limits: Limits):
    """Returns (test results, notebook report). Never raises for anything a student can cause."""
    report = {"file": path.name if path else None, "notes": [note] if note else [], "cell_errors": []}
    if path is None:
        return [_result(t, "missing", f"notebook {nbt.notebook}.ipynb was not submitted") for t in nbt.tests], report
    try:
        student = notebook.load_notebook(path)
    except notebook.BadNotebook as e:
        return [_result(t, "error", str(e)) for t in nbt.tests], report
    if release is None:  # no release to compare with: run every code cell (instructor's own copy)
        release = {"cells": []}
    plan = notebook.plan(release, student)
    report["notes"] += plan.notes
    # Static check: answers that call the library they are asked to re-implement earn nothing.
    forbidden_hits = {}
    for fname, needles in nbt.forbidden.items():
        src = plan.source_by_index.get(plan.solution_cells.get(fname, -10**9), "")
        hits = [n for n in needles if n in src]
        if hits:
            forbidden_hits[fname] = hits

    host = host_factory()
    results = []
    started = False
    cell_error_by_id = {}

    def start():
        run = host.start_notebook(plan.cells, seed=0)
        for (idx, _src), rep in zip(plan.cells, run.cells):
            if not rep.ok:
                label = next((g for g, i in plan.solution_cells.items() if i == idx), None)
                where = f"cell `{label}`" if label else (f"cell {idx + 1}" if idx >= 0 else "a read-only cell")
                report["cell_errors"].append(f"{where}: [{rep.status}] {rep.error}")
                if label:
                    cell_error_by_id[label] = f"{rep.status}: {rep.error}"

    for t in nbt.tests:
        if t.function in forbidden_hits:
            results.append(_result(t, "failed", f"{t.function} must be written from scratch; it uses "
                                   f"{', '.join(forbidden_hits[t.function])}"))
            continue
        try:
            if not started or not host.alive_child:
                start()
                started = True
            sub = api.Submission(host, limits.call_seconds)
            sub.seed(t.seed)
            rng = np.random.default_rng(t.seed)
            t.fn(sub, rng)
            results.append(_result(t, "passed", "", t.points))
        except api.Fail as e:
            results.append(_result(t, "failed", str(e)))
        except Missing as e:
            extra = f" ({cell_error_by_id[t.function]})" if t.function in cell_error_by_id else ""
            results.append(_result(t, "missing", f"{e}{extra}"))
        except StudentError as e:
            results.append(_result(t, "error", f"your code raised {e}"))
        except ChildGone as e:
            results.append(_result(t, e.status, e.message))
        except (ValueError, KeyError, TypeError, IndexError) as e:
            # A reply the trusted side could not read as the expected structure.
            results.append(_result(t, "error", f"unexpected value from your code ({type(e).__name__}: {e})"[:500]))
    return results, report


def grade_submission(host_factory, submitted: Path, student: str, assignment: str, limits: Limits):
    folder = submitted / student / assignment
    nbts = load_assignment(assignment)
    all_results, reports = [], {}
    for nbt in nbts:
        rel_path = RELEASE_DIR / assignment / f"{nbt.notebook}.ipynb"
        release = notebook.load_notebook(rel_path) if rel_path.is_file() else None
        path, note = _find_notebook(folder, nbt.notebook, release)
        res, rep = grade_notebook(host_factory, nbt, path, release, note, limits)
        all_results += res
        reports[nbt.notebook] = rep
    return all_results, reports


# ----------------------------------------------------------------------------- results I/O
def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def submission_hash(submitted: Path, student: str, assignment: str) -> str:
    h = hashlib.sha256(tests_fingerprint(assignment).encode())
    folder = submitted / student / assignment
    if folder.is_dir():
        for p in sorted(folder.glob("*.ipynb")):
            h.update(p.name.encode() + notebook.file_hash(p).encode())
    return h.hexdigest()[:16]


def write_grades_csv(out: Path, rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student_id", "assignment", "score", "max_score"])
    for r in sorted(rows):
        w.writerow([r[0], r[1], _num(r[2]), _num(r[3])])
    atomic_write(out / "grades.csv", buf.getvalue())


def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 4)


# ------------------------------------------------------------------------------ the class
def discover(submitted: Path, only: str | None):
    students = sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.name.startswith("."))
    known = set(assignments())
    if only:
        names = [only]
    else:
        names = sorted({a.name for s in students for a in (submitted / s).iterdir()
                        if a.is_dir() and a.name in known})
        unknown = sorted({a.name for s in students for a in (submitted / s).iterdir()
                          if a.is_dir() and a.name not in known and not a.name.startswith(".")})
        for u in unknown:
            print(f"autograder: no hidden tests for assignment {u!r}; skipped", file=sys.stderr)
    return [(s, a) for s in students for a in names]


def grade_class(submitted: Path, out: Path, assignment: str | None = None, workers: int = 1,
                force: bool = False, limits: Limits | None = None, progress: bool = True,
                scheduler: str | None = None) -> dict:
    limits = limits or Limits()
    jobs = discover(submitted, assignment)
    todo = []
    for s, a in jobs:
        rpath = out / s / a / "results.json"
        h = submission_hash(submitted, s, a)
        if not force and rpath.is_file():
            try:
                if json.loads(rpath.read_text()).get("submission_hash") == h:
                    continue
            except (json.JSONDecodeError, OSError):
                pass
        todo.append((s, a, h))
    isolation = sandbox.isolation_description()
    if not sandbox.bwrap_usable():
        print(f"autograder: {isolation}", file=sys.stderr)
    t0 = time.monotonic()
    if scheduler:
        from .distributed import run_on_dask
        run_on_dask(scheduler, submitted, out, todo, limits, progress)
    else:
        _run_local(submitted, out, todo, workers, limits, isolation, progress)
    elapsed = time.monotonic() - t0
    rows = []
    for s, a in jobs:
        try:
            r = json.loads((out / s / a / "results.json").read_text())
            rows.append((s, a, r["score"], r["max_score"]))
        except (OSError, json.JSONDecodeError, KeyError):
            pass
    write_grades_csv(out, rows)
    return {"submissions": len(jobs), "graded": len(todo), "skipped": len(jobs) - len(todo),
            "seconds": elapsed, "isolation": isolation}


def grade_one_to_disk(host_factory, submitted, out, s, a, h, limits, isolation):
    t0 = time.monotonic()
    try:
        results, reports = grade_submission(host_factory, submitted, s, a, limits)
    except Exception:  # a grader bug must not lose the rest of the class
        results = [_result(t, "error", "internal grader error; tell your instructor")
                   for nbt in load_assignment(a) for t in nbt.tests]
        reports = {"_grader": {"notes": [traceback.format_exc()[-2000:]], "cell_errors": [], "file": None}}
    score = sum(r["points"] for r in results)
    max_score = sum(r["max_points"] for r in results)
    doc = {"student_id": s, "assignment": a, "score": score, "max_score": max_score, "tests": results,
           "notebooks": reports, "sandbox": isolation, "submission_hash": h,
           "seconds": round(time.monotonic() - t0, 3)}
    atomic_write(out / s / a / "feedback.md", feedback.render_markdown(doc))
    atomic_write(out / s / a / "results.json", json.dumps(doc, indent=1))
    return doc


_PROC_HOST = None


def _proc_grade(job):
    """One submission in a worker process (its own trusted side: no GIL shared with other workers)."""
    global _PROC_HOST
    submitted, out, s, a, h, limits, isolation = job

    def factory():
        global _PROC_HOST
        if _PROC_HOST is None:
            _PROC_HOST = Host(limits)
        return _PROC_HOST

    for attempt in range(2):
        try:
            grade_one_to_disk(factory, submitted, out, s, a, h, limits, isolation)
            return s, a, None
        except Exception as e:  # the host itself failed: start a new one and try once more
            if _PROC_HOST is not None:
                _PROC_HOST.close()
            _PROC_HOST = None
            err = f"{s}/{a}: {e}"
    return s, a, err


def _run_processes(submitted, out, todo, workers, limits, isolation, bar):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futs = [pool.submit(_proc_grade, (submitted, out, s, a, h, limits, isolation)) for s, a, h in todo]
        for f in as_completed(futs):
            _, _, err = f.result()
            if err:
                print(f"autograder: {err}", file=sys.stderr)
            if bar is not None:
                bar.update(1)


def _run_local(submitted, out, todo, workers, limits, isolation, progress):
    q: queue.Queue = queue.Queue()
    for job in todo:
        q.put(job)
    bar = None
    if progress and todo:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), unit="submission", file=sys.stderr, leave=False)
        except ImportError:
            bar = None
    if workers > 1 and len(todo) > 1:
        try:
            _run_processes(submitted, out, todo, min(workers, len(todo)), limits, isolation, bar)
        finally:
            if bar is not None:
                bar.close()
        return
    lock = threading.Lock()
    errors = []

    def worker():
        host = None

        def host_factory():
            nonlocal host
            if host is None:
                host = Host(limits)
            return host

        try:
            while True:
                try:
                    s, a, h = q.get_nowait()
                except queue.Empty:
                    return
                try:
                    grade_one_to_disk(host_factory, submitted, out, s, a, h, limits, isolation)
                except Exception as e:  # the host itself died: start a new one and go on
                    errors.append(f"{s}/{a}: {e}")
                    if host is not None:
                        host.close()
                    host = None
                    q.put((s, a, h)) if len(errors) < 3 * max(1, len(todo)) else None
                with lock:
                    if bar is not None:
                        bar.update(1)
        finally:
            if host is not None:
                host.close()

    n = max(1, min(workers, len(todo) or 1))
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bar is not None:
        bar.close()
