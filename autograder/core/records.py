"""The records of the engine: the limits a notebook runs under, a submission's budget, the ways a
request can end (``ChildGone``, ``StudentError``, ``Missing``), what a notebook's run reports, and the
rule of what the trusted side may ask (``ALLOWED_OPS``, with its audit for the tests)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from ..sandbox.wire import MAX_FRAME


@dataclass
class Limits:
    """Resource limits for student code (all overridable from the command line)."""

    cell_seconds: float = 60.0  # one notebook cell
    notebook_seconds: float = 300.0  # all cells of one notebook together, one run
    call_seconds: float = 20.0  # one remote call made by a hidden test
    submission_seconds: float = 900.0  # everything of one submission: every notebook, run, restart, test
    memory_bytes: int = 2 * 1024**3  # address space beyond what numpy and torch already map
    processes: int = 64  # processes and threads the child may create
    max_reply_bytes: int = MAX_FRAME  # one reply from the student's process
    allow_weak_isolation: bool = False  # grade even where the student's code could read the grader's files

    def enforced(self, zygote: "Zygote | None" = None) -> dict:
        """The limits as they were actually applied, for results.json."""
        return {"cell_seconds": self.cell_seconds, "notebook_seconds": self.notebook_seconds,
                "call_seconds": self.call_seconds, "submission_seconds": self.submission_seconds,
                "memory_mb_per_notebook": self.memory_bytes >> 20,
                "memory_scope": "the notebook's processes together (sampled every 0.1 s), and each process",
                "processes": self.processes}


MAX_CALLBACKS = 200_000  # forwarder calls answered during one request
# Everything the trusted side may ask of a student's process. No operation carries code: a cell's
# source comes only from the notebook's plan (the student's notebook and the release's read-only
# cells), and arguments are plain data or handles to the student's own objects (api.encode_args).
ALLOWED_OPS = frozenset({"setup", "run_cell", "seed", "exists", "call", "forwarder", "getattr", "backward", "param_grads",
                         "module_types", "release", "leaves", "put_leaves", "variant", "bind"})
_AUDIT = os.environ.get("AUTOGRADER_AUDIT")  # a file to append every request's shape to (tests/test_requests.py)


def _audit(header: dict, source: str) -> None:
    types: set = set()

    def walk(v):
        if isinstance(v, dict):
            if "t" in v:
                types.add(v["t"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for k in ("args", "kwargs", "value"):
        walk(header.get(k))
    line = json.dumps({"op": header.get("op", "cb_reply" if "cb_reply" in header else "?"),
                       "keys": sorted(header), "types": sorted(types), "from": source})
    fd = os.open(_AUDIT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class ChildGone(Exception):
    """The student's process ended or was ended. ``status`` is 'timeout' or 'error'."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ZygoteDied(Exception):
    """The zygote itself ended (never expected; the worker starts a new one)."""


class StudentError(Exception):
    """The student's code raised an exception (message is their traceback summary)."""


class Missing(Exception):
    """A graded name is not defined in the notebook."""


@dataclass
class CellReport:
    index: int
    ok: bool = True
    status: str = "ok"  # ok, error, timeout, crash, skipped
    error: str = ""


@dataclass
class NotebookRun:
    cells: list[CellReport] = field(default_factory=list)
    seconds: float = 0.0


class Budget:
    """One submission's wall-clock budget, every notebook, restart and test included."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def cap(self, deadline: float) -> float:
        return min(deadline, self.deadline)

    def spent(self) -> bool:
        return self.left() <= 0


