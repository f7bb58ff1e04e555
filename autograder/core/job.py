"""One job on any worker (a local worker process or a Dask worker): the zygote each worker thread keeps,
the preflight that grades a probe notebook before any student's, and the watchdog that ends a
submission running past its budget, whatever the trusted side is blocked on."""
from __future__ import annotations

import os
import sys
import threading
import traceback

from ..sandbox.wire import ProtocolError
from . import api
from .engine import Budget, ChildGone, Limits, Missing, Notebook, StudentError, Zygote
from .runner import PKG, REPO, _result, fault_document, grade_submission, load_assignment, summarise
from .submission import Submitted


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
             "    unreadable = []\n"  # the packages' own folders, which later (lazy) imports read
             "    for m in (np, torch, rnnlib):\n"
             "        try:\n"
             "            os.listdir(os.path.dirname(m.__file__))\n"
             "            with open(m.__file__, 'rb') as f:\n"
             "                f.read(1)\n"
             "        except OSError:\n"
             "            unreadable.append(os.path.dirname(m.__file__))\n"
             "    return float(np.tanh(torch.tensor(0.5)).item()), readable, unreadable\n")


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
            value, readable, unreadable = api.decode_reply(*nb.request(
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
        if unreadable:  # the zygote imported them before it dropped privileges: a student's lazy import would fail
            from . import launch

            closed = launch.unreadable_parent(os.path.join(unreadable[0], "x")) or unreadable[0]
            raise Unfit(f"the sandbox's user cannot read {unreadable[0]} (isolation '{zygote.isolation}'): "
                        f"imports inside a notebook would fail; {closed} is closed to other users: `chmod o+x "
                        f"{closed}`, or make the virtual environment where every user can read it")
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


