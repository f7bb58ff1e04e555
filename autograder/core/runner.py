"""Grading a class: discovery, one submission as a pipeline of small steps, and the class run.

One submission, step by step (``grade_submission``):
  1. ``read_submission``   the student's folder, read safely (no symlink followed, no FIFO opened)
  2. ``choose_notebook``   which file is the notebook (the exact name, else the most complete copy)
  3. ``notebook.plan``     which cells run: the student's answers and added cells, the release's rest
  4. ``policy.check``      "from scratch", on the syntax tree of every student cell that runs
  5. ``run_tests``         a fresh sandboxed child runs the cells; each hidden test is its own unit
  6. ``summarise``         a results document (the CONTRACT's keys, plus subtotals)
Writing results, grades.csv and the run's lock is the class run's job (``classrun.py``).
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import api, notebook, policy
from .engine import Budget, ChildGone, Limits, Missing, Notebook, StudentError, Zygote
from ..sandbox.wire import ProtocolError
from .submission import Submitted, choose_notebook, read_submission  # noqa: F401  (steps 1 and 2)

PKG = Path(__file__).resolve().parents[1]  # autograder/
REPO = PKG.parent
TESTS_DIR = PKG / "tests"
RELEASE_DIR = Path(os.environ.get("AUTOGRADER_RELEASE_DIR") or REPO / "exercises")  # the released notebooks
VERSION = "2"


# ------------------------------------------------------------------------------ discovery
@dataclass
class NotebookTests:
    notebook: str  # file stem, e.g. "gradients_numpy"
    tests: list  # [api.GradedTest]
    forbidden: dict  # {graded name: [forbidden qualified names]}


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
        tests = api.registered(modname)
        out.append(NotebookTests(f.stem[len("test_"):], tests, getattr(mod, "FORBIDDEN", {})))
    return out


def tests_fingerprint(name: str) -> str:
    """Everything a result depends on besides the student's files: the grader's own code (every
    module of ``autograder/``, the hidden tests and their kit included), the course library the
    sandbox imports, and the release notebooks. Changing any of them regrades."""
    h = hashlib.sha256(VERSION.encode())
    pkg = PKG
    for f in sorted(pkg.rglob("*.py")):
        rel = f.relative_to(pkg)
        if rel.parts[0] == "tests" and len(rel.parts) > 2 and rel.parts[1] != name:
            continue  # another assignment's tests
        h.update(str(rel).encode() + b"\0" + f.read_bytes())
    for f in sorted((REPO / "rnnlib").glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    for f in sorted((RELEASE_DIR / name).glob("*.ipynb")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    if any("heldout" in f.read_text() for f in (pkg / "tests" / name).glob("*.py")):
        from ..testkit import heldout  # held-out data perturbed with the course's secret: a new secret regrades

        h.update(b"secret\0" + hashlib.sha256(str(heldout.seed_for("fingerprint")).encode()).digest())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- 5. the tests
def _result(t, status, message="", points=0.0, **extra):
    r = {"name": t.name, "function": t.function, "points": float(points), "max_points": t.points,
         "status": status, "message": clean_text(message)}
    r.update(extra)
    return r


def clean_text(s) -> str:
    """Any text that came near student code: a str, valid UTF-8, not too long."""
    s = s if isinstance(s, str) else str(s)
    s = s.encode("utf-8", "replace").decode("utf-8")
    return s if len(s) <= 2000 else s[:2000] + "..."


@dataclass
class GraderFault:
    """A fault of the grader itself (never the student's): shown to the instructor, not the student."""

    test: str
    trace: str


def blocked_names(nbt: NotebookTests) -> list[str]:
    names = set()
    for entries in nbt.forbidden.values():
        names |= {n for n in (policy.normalise(e) for e in entries) if n and not n.endswith("*")}
    return sorted(n for n in names if n.count(".") >= 1)


def run_tests(zygote: Zygote, nbt: NotebookTests, plan: notebook.Plan, hits: dict, limits: Limits,
              budget: Budget, report: dict, faults: list) -> list[dict]:
    """Each hidden test as its own unit of failure, on the notebook's child (started again after a crash)."""
    run = _TestRun(Notebook(zygote, plan.cells, limits, budget, block=blocked_names(nbt)), plan, limits, report)
    results = []
    try:
        for t in nbt.tests:
            if t.function in hits:
                results.append(_result(t, "failed", hits[t.function]))
            elif budget.spent():
                results.append(_result(t, "timeout", f"the submission's time budget ({budget.seconds:g} s for "
                                                     "every notebook, restart and test) was spent before this test"))
            else:
                results.append(run.outcome(t, faults))
    finally:
        run.nb.close()
    return results


class _TestRun:
    """The notebook's child as the hidden tests use it, one test after another."""

    def __init__(self, nb: Notebook, plan: notebook.Plan, limits: Limits, report: dict):
        self.nb, self.plan, self.limits, self.report = nb, plan, limits, report
        self.cell_error_by_id: dict[str, str] = {}
        self.current = None  # the Submission the running test uses (its replies decide whose fault a crash is)

    def ensure(self) -> None:
        """The notebook's cells run in a live child (once, or again after the child ended)."""
        nb = self.nb
        if nb.report is None or nb.child is None or not nb.child.alive:
            run = nb.ensure()
            self.report["cell_errors"] = []
            for (idx, _src), rep in zip(self.plan.cells, run.cells):
                if not rep.ok:
                    label = next((g for g, i in self.plan.solution_cells.items() if i == idx), None)
                    where = f"cell `{label}`" if label else (f"cell {idx + 1}" if idx >= 0 else "a read-only cell")
                    self.report["cell_errors"].append(f"{where}: [{rep.status}] {clean_text(rep.error)}")
                    if label:
                        self.cell_error_by_id[label] = f"{rep.status}: {rep.error}"

    def submission(self, t, fallback=None) -> api.Submission:
        sub = self.current = api.Submission(self.nb, self.limits.call_seconds, fallback)
        sub.seed(t.seed)
        return sub

    def run_one(self, t) -> None:
        """Compose, don't substitute: the test runs on the student's own functions; only when it
        raises StepFallback (a student step raised, is missing or returned something unusable) is it
        rerun with the trusted steps it declares standing in, so that a correct sequence function
        over an unfinished step still earns its marks."""
        original = None
        try:
            t.fn(self.submission(t), np.random.default_rng(t.seed))
            return
        except api.StepFallback as e:
            if not t.fallback:
                raise api.Fail(str(e)) from None
        except (StudentError, Missing) as e:
            # The sequence function raised: if only because a step it calls raises or is missing,
            # it passes with the trusted steps; otherwise the student's own error is the message.
            if not t.fallback:
                raise
            original = e
        try:
            t.fn(self.submission(t, t.fallback), np.random.default_rng(t.seed))
        except api.StepFallback as e:
            raise (original or api.Fail(str(e))) from None
        except (api.Fail, StudentError, Missing, ProtocolError):
            if original is not None:
                raise original from None
            raise

    def outcome(self, t, faults: list) -> dict:
        """One test's result: every way it can end, named for the student."""
        self.current = None
        try:
            self.ensure()
            self.run_one(t)
            return _result(t, "passed", "", t.points)
        except api.Fail as e:
            return _result(t, "failed", str(e))
        except Missing as e:
            extra = f" ({self.cell_error_by_id[t.function]})" if t.function in self.cell_error_by_id else ""
            return _result(t, "missing", f"{e}{extra}")
        except StudentError as e:
            return _result(t, "error", f"your code raised {e}")
        except ChildGone as e:
            return _result(t, e.status, e.message)
        except ProtocolError as e:
            self.nb.close()  # its next test starts from a fresh process
            return _result(t, "error", f"your code returned {e}, which the grader cannot read")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - every test is its own unit of failure
            if self.current is not None and self.current.replies:
                # Raised while the hidden test was reading the student's reply: that reply's doing.
                return _result(t, "error", f"your code returned a value this test could not use "
                                           f"({type(e).__name__}: {clean_text(str(e))[:200]})")
            faults.append(GraderFault(t.name, traceback.format_exc()[-4000:]))
            return _result(t, "error", "the grader could not run this test (a fault of the grader, "
                                       "reported to your instructor; not your doing)", grader_fault=True)


# ---------------------------------------------------------------------- the submission
def grade_notebook(zygote, nbt: NotebookTests, sub: Submitted, assignment: str, limits: Limits,
                   budget: Budget, faults: list):
    rel_path = RELEASE_DIR / assignment / f"{nbt.notebook}.ipynb"
    release = notebook.load_notebook(rel_path) if rel_path.is_file() else None
    name, parsed, notes = choose_notebook(sub, nbt.notebook, release)
    report = {"file": name, "notes": list(notes), "cell_errors": []}
    if release is None:
        report["notes"].append(f"the release notebook exercises/{assignment}/{nbt.notebook}.ipynb is missing: every "
                               "cell of the submission was run as written (read-only cells were not protected)")
    if name is None:
        return [_result(t, "missing", f"notebook {nbt.notebook}.ipynb was not submitted") for t in nbt.tests], report
    if isinstance(parsed, notebook.BadNotebook):
        return [_result(t, "error", str(parsed)) for t in nbt.tests], report
    plan = notebook.plan(release or {"cells": []}, parsed)
    report["notes"] += plan.notes
    hits = forbidden_hits(nbt, plan)
    return run_tests(zygote, nbt, plan, hits, limits, budget, report, faults), report


def forbidden_hits(nbt: NotebookTests, plan: notebook.Plan) -> dict[str, str]:
    """{graded name: message} for every graded name whose FORBIDDEN entries the notebook uses.

    A use inside a graded name's own answer cell counts against that name; a use in a cell the
    student added counts against every graded name that forbids it."""
    label = {i: g for g, i in plan.solution_cells.items()}
    out = {}
    for fname, entries in nbt.forbidden.items():
        found = []
        for h in policy.check(plan.cells, entries):
            owner = label.get(h.cell)
            if owner is not None and owner != fname:
                continue
            where = f"cell `{owner}`" if owner else f"cell {h.cell + 1} (a cell you added)"
            what = (f"uses {h.name}" if h.entry else f"uses {h.name}, which cannot be checked")
            found.append(f"{what} ({where}, line {h.line})")
        if found:
            uniq = list(dict.fromkeys(found))
            out[fname] = (f"{fname} must be written from scratch; the notebook " + "; ".join(uniq[:3])
                          + (f" and {len(uniq) - 3} more" if len(uniq) > 3 else ""))
    return out


def summarise(student, assignment, results, reports, isolation, h, faults, level: str = "unknown",
              limits: dict | None = None) -> dict:
    score = sum(r["points"] for r in results)
    max_score = sum(r["max_points"] for r in results)
    for rep in reports.values():
        rep["notes"] = [clean_text(n) for n in rep.get("notes", [])]
        rep["cell_errors"] = [clean_text(n) for n in rep.get("cell_errors", [])]
        if rep.get("file") is not None:
            rep["file"] = clean_text(rep["file"])
    per_nb: dict = {}
    per_fn: dict = {}
    nb_of = {t.name: nbt.notebook for nbt in load_assignment(assignment) for t in nbt.tests}
    for r in results:
        nbn = nb_of.get(r["name"], "?")
        for d, key in ((per_nb, nbn), (per_fn, r["function"])):
            e = d.setdefault(key, {"score": 0.0, "max_score": 0.0})
            e["score"] += r["points"]
            e["max_score"] += r["max_points"]
        per_fn[r["function"]]["notebook"] = nbn
    doc = {"student_id": clean_text(student), "assignment": assignment, "score": score, "max_score": max_score,
           "tests": results, "subtotals": {"notebooks": per_nb, "functions": per_fn},
           "notebooks": reports, "sandbox": isolation, "isolation": level, "submission_hash": h}
    if limits:
        doc["limits"] = limits
    if faults:  # the traces go to the instructor's log (grader.log), never into a student's files
        doc["grader_faults"] = [f.test for f in faults]
        doc["_traces"] = [f"{student}/{assignment} {f.test}:\n{f.trace}" for f in faults]
    return doc


def grade_submission(zygote: Zygote, sub: Submitted, student: str, assignment: str, limits: Limits,
                     h: str) -> dict:
    budget = Budget(limits.submission_seconds)
    results, reports, faults = [], {}, []
    for nbt in load_assignment(assignment):
        res, rep = grade_notebook(zygote, nbt, sub, assignment, limits, budget, faults)
        results += res
        reports[nbt.notebook] = rep
    for name, why in sub.refused.items():
        for rep in reports.values():
            if rep.get("file") != name:
                rep["notes"].append(f"not read: {why}")
                break
    return summarise(student, assignment, results, reports, zygote.description, h, faults, zygote.isolation,
                     limits.enforced())


def fault_document(student: str, assignment: str, h: str, isolation: str, trace: str) -> dict:
    """When the grader itself failed on a submission: every test listed, the fault recorded."""
    results = [_result(t, "error", "the grader could not grade this submission (a fault of the grader, reported "
                                   "to your instructor; not your doing)", grader_fault=True)
               for nbt in load_assignment(assignment) for t in nbt.tests]
    return summarise(student, assignment, results, {}, isolation, h,
                     [GraderFault("(whole submission)", trace[-4000:])])


def submission_hash(sub: Submitted, assignment: str) -> str:
    h = hashlib.sha256(tests_fingerprint(assignment).encode())
    for name in sorted(sub.files):
        h.update(name.encode() + b"\0" + hashlib.sha256(sub.files[name]).digest())
    for name in sorted(sub.refused):
        h.update(b"refused\0" + name.encode())
    return h.hexdigest()[:16]


def log(msg: str) -> None:
    print(f"autograder: {msg}", file=sys.stderr, flush=True)
