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
import stat
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import api, notebook, policy
from .engine import Budget, ChildGone, Limits, Missing, Notebook, StudentError, Zygote
from ..sandbox.wire import ProtocolError

PKG = Path(__file__).resolve().parents[1]  # autograder/
REPO = PKG.parent
TESTS_DIR = PKG / "tests"
RELEASE_DIR = Path(os.environ.get("AUTOGRADER_RELEASE_DIR") or REPO / "exercises")  # the released notebooks
VERSION = "2"
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


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


# --------------------------------------------------------------------- 1. reading safely
@dataclass
class Submitted:
    """A student's folder for one assignment, as bytes: {file name: bytes}, and what was refused."""

    files: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)  # file name -> why it was not read


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def safe_read(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a regular file, never following a symlink and never blocking on a FIFO."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path.name} is {_kind(st.st_mode)}, not a notebook file")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path.name} is {_kind(st.st_mode)}, not a notebook file")
        if st.st_size > limit:
            raise OSError(f"{path.name} is {st.st_size >> 20} MiB; the limit is {limit >> 20} MiB")
        chunks, total = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            total += len(b)
            if total > limit:
                raise OSError(f"{path.name} is larger than {limit >> 20} MiB")
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_submission(submitted: Path, student: str, assignment: str) -> Submitted:
    out = Submitted()
    folder = submitted / student / assignment
    for p in (submitted / student, folder):
        try:
            st = os.lstat(p)
        except OSError:
            return out
        if not stat.S_ISDIR(st.st_mode):
            out.refused[p.name] = f"{p.name} is {_kind(st.st_mode)}, not a folder: nothing in it was read"
            return out
    with os.scandir(folder) as it:
        for e in sorted(it, key=lambda e: e.name):
            if not e.name.endswith(".ipynb") or e.name.startswith("."):
                continue
            try:
                out.files[e.name] = safe_read(Path(e.path))
            except OSError as err:
                out.refused[e.name] = str(err) if not err.errno else f"{e.name} could not be read ({err.strerror})"
    return out


# ----------------------------------------------------------------- 2. choosing the notebook
def _completeness(nb: dict, release: dict | None) -> int:
    """How many answer cells hold something other than the released stub."""
    if release is None:
        return 0
    stubs = {notebook.nbgrader_meta(c).get("grade_id"): notebook._norm(c["source"]) for c in release["cells"]
             if notebook.nbgrader_meta(c).get("solution")}
    n = 0
    for c in nb["cells"]:
        gid = notebook.nbgrader_meta(c).get("grade_id")
        if gid in stubs and notebook._norm(c["source"]) != stubs[gid]:
            n += 1
    return n


def choose_notebook(sub: Submitted, nb: str, release: dict | None):
    """(file name, parsed notebook or BadNotebook, notes). The exact name wins; otherwise the copy
    that answers most cells of this notebook (ties: the one that holds most of its answer cells,
    then the name); the copies not graded are named."""
    exact = f"{nb}.ipynb"
    notes = []
    if exact in sub.refused:
        return exact, notebook.BadNotebook(sub.refused[exact]), notes
    if exact in sub.files:
        try:
            parsed = notebook.parse_notebook(sub.files[exact], exact)
        except notebook.BadNotebook as e:
            parsed = e
        others = sorted(n for n in sub.files if n != exact and _same_notebook(sub, n, release))
        if others:
            notes.append(f"graded {exact}; also submitted and not graded: {', '.join(others)}")
        return exact, parsed, notes
    if release is None:
        return None, None, notes
    want = set(notebook.solution_ids(release))
    cands = []
    for name, raw in sub.files.items():
        try:
            parsed = notebook.parse_notebook(raw, name)
        except notebook.BadNotebook:
            continue
        ids = {notebook.nbgrader_meta(c).get("grade_id") for c in parsed["cells"]}
        if want & ids:
            cands.append((-_completeness(parsed, release), -len(want & ids), name, parsed))
    if not cands:
        return None, None, notes
    cands.sort(key=lambda c: c[:3])
    _, _, name, parsed = cands[0]
    notes.append(f"{exact} not found; graded {name}, which holds its answer cells (renamed?)"
                 + (f"; not graded: {', '.join(c[2] for c in cands[1:])}" if len(cands) > 1 else ""))
    return name, parsed, notes


def _same_notebook(sub: Submitted, name: str, release: dict | None) -> bool:
    if release is None:
        return False
    try:
        parsed = notebook.parse_notebook(sub.files[name], name)
    except notebook.BadNotebook:
        return False
    ids = {notebook.nbgrader_meta(c).get("grade_id") for c in parsed["cells"]}
    return bool(set(notebook.solution_ids(release)) & ids)


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
    nb = Notebook(zygote, plan.cells, limits, budget, block=blocked_names(nbt))
    results = []
    cell_error_by_id: dict[str, str] = {}

    def ensure():
        if nb.report is None or nb.child is None or not nb.child.alive:
            run = nb.ensure()
            report["cell_errors"] = []
            for (idx, _src), rep in zip(plan.cells, run.cells):
                if not rep.ok:
                    label = next((g for g, i in plan.solution_cells.items() if i == idx), None)
                    where = f"cell `{label}`" if label else (f"cell {idx + 1}" if idx >= 0 else "a read-only cell")
                    report["cell_errors"].append(f"{where}: [{rep.status}] {clean_text(rep.error)}")
                    if label:
                        cell_error_by_id[label] = f"{rep.status}: {rep.error}"

    current: list = [None]  # the Submission the running test uses (its replies decide whose fault a crash is)

    def run_one(t):
        """Compose, don't substitute: the test runs on the student's own functions; only when it
        raises StepFallback (a student step raised, is missing or returned something unusable) is it
        rerun with the trusted steps it declares standing in, so that a correct sequence function
        over an unfinished step still earns its marks. Returns the Submission last used."""
        sub = current[0] = api.Submission(nb, limits.call_seconds)
        sub.seed(t.seed)
        original = None
        try:
            t.fn(sub, np.random.default_rng(t.seed))
            return sub
        except api.StepFallback as e:
            if not t.fallback:
                raise api.Fail(str(e)) from None
        except (StudentError, Missing) as e:
            # The sequence function raised: if only because a step it calls raises or is missing,
            # it passes with the trusted steps; otherwise the student's own error is the message.
            if not t.fallback:
                raise
            original = e
        sub = current[0] = api.Submission(nb, limits.call_seconds, t.fallback)
        sub.seed(t.seed)
        try:
            t.fn(sub, np.random.default_rng(t.seed))
        except api.StepFallback as e:
            raise (original or api.Fail(str(e))) from None
        except (api.Fail, StudentError, Missing, ProtocolError):
            if original is not None:
                raise original from None
            raise
        return sub

    try:
        for t in nbt.tests:
            if t.function in hits:
                results.append(_result(t, "failed", hits[t.function]))
                continue
            if budget.spent():
                results.append(_result(t, "timeout", f"the submission's time budget ({budget.seconds:g} s for "
                                                     "every notebook, restart and test) was spent before this test"))
                continue
            current[0] = None
            try:
                ensure()
                run_one(t)
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
            except ProtocolError as e:
                nb.close()  # its next test starts from a fresh process
                results.append(_result(t, "error", f"your code returned {e}, which the grader cannot read"))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - every test is its own unit of failure
                if current[0] is not None and current[0].replies:
                    # Raised while the hidden test was reading the student's reply: that reply's doing.
                    results.append(_result(t, "error", f"your code returned a value this test could not use "
                                                       f"({type(e).__name__}: {clean_text(str(e))[:200]})"))
                else:
                    faults.append(GraderFault(t.name, traceback.format_exc()[-4000:]))
                    results.append(_result(t, "error", "the grader could not run this test (a fault of the grader, "
                                                       "reported to your instructor; not your doing)",
                                           grader_fault=True))
    finally:
        nb.close()
    return results


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


# ---------------------------------------------------------------- one job, any worker
_LOCAL = threading.local()  # one zygote per worker thread (a Dask worker may run several)


class Unfit(Exception):
    """This machine cannot grade as configured (the preflight's finding, one line)."""


PREFLIGHT = ("import secrets, json, decimal, fractions, statistics, tempfile, os\n"
             "import numpy as np\n"
             "def preflight_probe(secret_paths):\n"
             "    import torch, rnnlib\n"
             "    readable = []\n"
             "    for p in secret_paths:\n"
             "        try:\n"
             "            with open(p, 'rb') as f:\n"
             "                f.read(1)\n"
             "            readable.append(p)\n"
             "        except OSError:\n"
             "            pass\n"
             "    with tempfile.TemporaryFile() as f:\n"
             "        f.write(b'x')\n"
             "    return float(np.tanh(torch.tensor(0.5)).item()), readable\n")


def preflight(zygote: Zygote, limits: Limits) -> None:
    """Grade a probe notebook through the real path before any student's: the interpreter and the
    course library load in a child, and a child cannot read the grader's own files. Raises Unfit."""
    import math

    if zygote.isolation == "weak" and not limits.allow_weak_isolation:
        raise Unfit("no isolation is possible here (bubblewrap refused or missing, not root, no user "
                    "namespaces): student code could read the hidden tests and rewrite results. Install "
                    "bubblewrap or run as root (a container), or pass --allow-weak-isolation to grade "
                    "anyway (recorded in every result)")
    secrets_to_try = [str(PKG / "core" / "api.py"), str(REPO / "chapters.yml")]
    nb = Notebook(zygote, [(0, PREFLIGHT)], limits, Budget(120), block=[])
    try:
        try:
            nb.ensure()
            value, readable = api.decode_reply(*nb.request(
                {"op": "call", "target": {"name": "preflight_probe"},
                 "args": {"t": "tuple", "v": [{"t": "list", "v": [{"t": "str", "v": p} for p in secrets_to_try]}]},
                 "kwargs": {"t": "dict", "k": [], "v": []}}, (), 60, "checking that this machine can grade"))
        except (ChildGone, StudentError, Missing, ProtocolError, RuntimeError, ValueError) as e:
            msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            hint = ""
            from . import launch

            closed = next(filter(None, (launch.unreadable_parent(r) for r in (sys.executable, sys.base_prefix))), None)
            if closed:
                hint = (f" (the interpreter {os.path.realpath(sys.executable)} lies under {closed}, which an "
                        f"unprivileged user cannot enter: `chmod o+x {closed}`, or make the virtual environment "
                        "from a Python every user can read)")
            raise Unfit(f"a probe notebook could not run in the sandbox ({zygote.isolation}): {msg}{hint}") from None
        if not (isinstance(value, float) and math.isclose(value, math.tanh(0.5), rel_tol=1e-6)):
            raise Unfit("a probe notebook computed a wrong value in the sandbox")
        if readable and zygote.isolation != "weak":
            raise Unfit(f"student code could read the grader's files ({readable[0]}) with isolation "
                        f"'{zygote.isolation}': grading refused")
    finally:
        nb.close()


def worker_zygote(limits: Limits) -> Zygote:
    z = getattr(_LOCAL, "zygote", None)
    if z is not None and (not z.alive() or z.limits != limits):
        z.close()
        z = None
    if z is None:
        z = Zygote(limits)
        try:
            preflight(z, limits)
        except BaseException:
            z.close()
            raise
        _LOCAL.zygote = z
    return z


WATCHDOG_GRACE = 30.0  # seconds past a submission's budget before its zygote is killed outright


def grade_job(student: str, assignment: str, sub: Submitted, h: str, limits: Limits) -> dict:
    """One submission in this process (a local worker or a Dask worker): never raises.

    A watchdog independent of any I/O kills the zygote (every child with it) if the submission runs
    past its budget plus a grace period, whatever the trusted side is blocked on."""
    import time

    trace = ""
    t0 = time.monotonic()
    fired = threading.Event()
    for _attempt in range(2):
        try:
            z = worker_zygote(limits)
        except Unfit as e:
            return {"_unfit": str(e)}
        except Exception:
            trace = traceback.format_exc()
            close_worker()
            continue

        def bite(z=z):
            fired.set()
            z.kill_now()

        dog = threading.Timer(max(1.0, limits.submission_seconds - (time.monotonic() - t0)) + WATCHDOG_GRACE, bite)
        dog.daemon = True
        dog.start()
        try:
            doc = grade_submission(z, sub, student, assignment, limits, h)
            if fired.is_set():
                raise ChildGone("timeout", "watchdog")
            doc["_seconds"] = round(time.monotonic() - t0, 4)  # to timings.jsonl, not results.json
            return doc
        except Exception:  # the zygote died or the grader broke: a fresh zygote, once more
            trace = traceback.format_exc()
            close_worker()
            if fired.is_set():
                return timeout_document(student, assignment, h, limits)
        finally:
            dog.cancel()
    return fault_document(student, assignment, h, "unknown (the sandbox could not be started)", trace)


def timeout_document(student: str, assignment: str, h: str, limits: Limits) -> dict:
    msg = (f"the submission ran past its time budget ({limits.submission_seconds:g} s for every notebook, "
           "restart and test) and every process of it was stopped")
    results = [_result(t, "timeout", msg) for nbt in load_assignment(assignment) for t in nbt.tests]
    return summarise(student, assignment, results, {}, "stopped by the watchdog", h, [], "unknown",
                     limits.enforced())


def close_worker() -> None:
    z = getattr(_LOCAL, "zygote", None)
    if z is not None:
        z.close()
    _LOCAL.zygote = None


def log(msg: str) -> None:
    print(f"autograder: {msg}", file=sys.stderr, flush=True)
