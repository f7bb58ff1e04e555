"""The trusted side of a grading job: one sandboxed host, one notebook at a time, with deadlines.

``Host`` owns one sandboxed host process. ``Host.start_notebook(cells)`` forks a fresh child that
executes the cells; ``Host.request(...)`` sends one remote call and waits for its answer under a
deadline. Every way a child can end (exit, crash, signal, timeout, a malformed message) becomes a
``ChildGone`` exception with a message; the host itself survives and forks the next child.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox
from ._sandboxed import FrameReader, write_frame


@dataclass
class Limits:
    """Resource limits for student code (all overridable from the command line)."""

    cell_seconds: float = 60.0  # one notebook cell
    notebook_seconds: float = 300.0  # all cells of one notebook together
    call_seconds: float = 20.0  # one remote call made by a hidden test
    memory_bytes: int = 2 * 1024**3  # address space beyond what numpy and torch already map
    processes: int = 64  # processes and threads the child may create


class ChildGone(Exception):
    """The student's process ended or was ended. ``status`` is 'timeout' or 'error'."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class HostDied(Exception):
    """The sandboxed relay process itself ended (never expected; recovered by a restart)."""


class StudentError(Exception):
    """The student's code raised an exception (message is their traceback summary)."""


class Missing(Exception):
    """A graded name is not defined in the notebook."""


@dataclass
class CellReport:
    index: int
    ok: bool = True
    status: str = "ok"  # ok, error, timeout, crash
    error: str = ""


@dataclass
class NotebookRun:
    cells: list[CellReport] = field(default_factory=list)
    seconds: float = 0.0


class Host:
    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self._spawn()

    def _spawn(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="autograder-host-"))
        argv, env, self.sandboxed = sandbox.host_command(self.tmp)
        self.alive_child = False
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd=self.tmp,
                                     start_new_session=True)
        self.reader = FrameReader()
        msg, _ = self._read(deadline=time.monotonic() + 120, what="starting the sandbox")
        if msg.get("ev") != "host_ready":
            raise RuntimeError(f"sandbox host did not start: {msg}")

    # -- low level
    def _send(self, msg: dict, blobs=()) -> None:
        write_frame(self.proc.stdin.fileno(), msg, list(blobs))

    def _read(self, deadline: float, what: str):
        fd = self.proc.stdout.fileno()
        while True:
            fr = self.reader.pop()
            if fr is not None:
                return fr
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(what)
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            data = os.read(fd, 1 << 20)
            if not data:
                raise HostDied("the grader's sandbox ended unexpectedly")
            self.reader.feed(data)

    def _read_child(self, deadline: float, what: str):
        """Next frame from the child; a child's end or a timeout raises ChildGone."""
        try:
            msg, blobs = self._read(deadline, what)
        except TimeoutError:
            self.kill_child()
            raise ChildGone("timeout", f"time limit exceeded while {what}") from None
        except (HostDied, ValueError) as e:  # the relay itself is gone or garbled: start a new one
            self.restart()
            raise ChildGone("error", f"{e} while {what}") from None
        if msg.get("ev") == "exited":
            self.alive_child = False
            how = msg.get("status") or "ended"
            if msg.get("bad_message"):
                raise ChildGone("error", f"the notebook's process sent a malformed or oversized value while {what}")
            raise ChildGone("error", f"the notebook's process ended ({how}) while {what}: "
                                     "sys.exit, os._exit, a crash or the memory limit")
        return msg, blobs

    def kill_child(self) -> None:
        if not self.alive_child:
            return
        try:
            self._send({"op": "kill"})
        except OSError:
            self.restart()
            return
        deadline = time.monotonic() + 30
        try:
            while True:  # drain until the host confirms the child's end
                msg, _ = self._read(deadline, "stopping the student's process")
                if msg.get("ev") == "exited":
                    break
        except (HostDied, ValueError, TimeoutError):
            self.restart()
        self.alive_child = False

    # -- notebook and calls
    def start_notebook(self, cells: list[tuple[int, str]], seed: int = 0) -> NotebookRun:
        """Fork a child that runs ``cells`` [(index, source)]; return what happened to each cell.

        A cell that times out or kills the process is reported and the notebook is started again
        without it (at most three times), so that the rest of the notebook can still be graded.
        """
        skip: dict[int, CellReport] = {}
        t0 = time.monotonic()
        for _attempt in range(4):
            todo = [(i, s) for i, s in cells if i not in skip]
            reports = self._run_once(todo, seed)
            bad = [r for r in reports if r.status in ("timeout", "crash")]
            if not bad:
                break
            for r in bad:
                skip[r.index] = r
        run = NotebookRun(seconds=time.monotonic() - t0)
        by_index = {r.index: r for r in reports}
        by_index.update(skip)
        run.cells = [by_index.get(i, CellReport(i, False, "skipped", "not run")) for i, _ in cells]
        return run

    def _run_once(self, cells, seed) -> list[CellReport]:
        self.kill_child()
        lim = self.limits
        self._send({"op": "job", "cells": cells, "seed": seed, "workdir": None,
                    "limits": {"memory_bytes": lim.memory_bytes, "processes": lim.processes,
                               "drop_to_uid": 65534 if self.sandboxed else None}})
        self.alive_child = True
        reports: list[CellReport] = []
        nb_deadline = time.monotonic() + lim.notebook_seconds
        current = None
        while True:
            deadline = min(nb_deadline, time.monotonic() + lim.cell_seconds)
            try:
                msg, _ = self._read_child(deadline, "running the notebook's cells")
            except ChildGone as e:
                if current is None:
                    raise
                status = "timeout" if e.status == "timeout" else "crash"
                reports.append(CellReport(current, False, status, e.message))
                return reports
            ev = msg.get("ev")
            if ev == "setup_error":
                raise RuntimeError(f"the sandbox could not start a notebook: {msg.get('error')}")
            if ev == "cell_start":
                current = msg["i"]
            elif ev == "cell_done":
                reports.append(CellReport(msg["i"], msg["ok"], "ok" if msg["ok"] else "error",
                                          msg.get("error", "")))
                current = None
            elif ev == "ready":
                return reports

    def request(self, msg: dict, blobs=(), seconds: float | None = None, what: str = "running your code"):
        """One remote call. Returns (value_tree, blobs); raises StudentError, Missing or ChildGone."""
        if not self.alive_child:
            raise ChildGone("error", "the notebook's process is no longer running")
        self._send(msg, blobs)
        deadline = time.monotonic() + (seconds or self.limits.call_seconds)
        reply, rblobs = self._read_child(deadline, what)
        if reply.get("ok"):
            return reply["value"], rblobs
        if reply.get("kind") == "missing":
            raise Missing(reply.get("error", "not defined"))
        raise StudentError(reply.get("error", "an exception"))

    def restart(self) -> None:
        self.close()
        self.alive_child = False
        self._spawn()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)
