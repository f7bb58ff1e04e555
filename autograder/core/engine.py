"""The trusted side of a grading job: one zygote per worker, one fresh child per notebook.

``Zygote`` owns the sandboxed zygote process (``autograder/sandbox/zygote.py``) and its control channel.
``Zygote.spawn(job)`` hands the zygote one end of a new socket pair and returns a ``Child``: a
notebook's process, reached only through that socket. ``Child.request(...)`` sends one request with
a fresh id and waits, under a deadline, for the reply with that id. Every way a child can end (exit,
crash, signal, timeout, a reply that breaks the protocol) becomes ``ChildGone`` and ends that child
alone; the zygote forks the next one. That a child *ended* is learnt only from the zygote's control
channel, never from the child's own bytes.
"""
from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from . import launch
from ..sandbox.wire import ProtocolError  # noqa: F401  (re-exported: callers catch it here)
from .child import Child, Notebook  # noqa: F401  (re-exported)
from .records import (ALLOWED_OPS, MAX_CALLBACKS, Budget, CellReport, ChildGone, Limits,  # noqa: F401
                      Missing, NotebookRun, StudentError, ZygoteDied)


class Zygote:
    """The sandboxed zygote of one worker. Holds no secret; forks one child per notebook."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.next_id = 1
        self.exited: dict[int, str] = {}
        self.killed: set[int] = set()  # children killed on purpose: their exit needs no waiting
        self._uids: list[int] = []
        self.spawned: set[int] = set()  # children the zygote has forked, not yet handed out
        self._spare: "Child | None" = None  # the next notebook's child, started ahead
        self.prespawn = True
        self._spawn()

    def _spawn(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="autograder-zygote-"))
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv, env, self.sandboxed, _ = launch.zygote_command(self.tmp, theirs.fileno())
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env, cwd=self.tmp,
                                     pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        msg = self._control(time.monotonic() + 120, "starting the sandbox")
        if msg.get("ev") != "ready":
            raise RuntimeError(f"sandbox did not start: {msg}")
        self.ns_mode = msg.get("ns_mode", "none")
        self.description = launch.isolation_description(self.ns_mode)
        self.isolation = launch.isolation_level(self.sandboxed, self.ns_mode)

    def _control(self, deadline: float, what: str) -> dict:
        """The next control event (blocking until ``deadline``)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ZygoteDied(f"no answer from the sandbox while {what}")
            r, _, _ = select.select([self.ctl], [], [], left)
            if not r:
                continue
            data = self.ctl.recv(65536)
            if not data:
                raise ZygoteDied(f"the sandbox ended while {what}")
            return json.loads(data)

    def poll(self, timeout: float = 0.0) -> None:
        """Record every pending control event (children that exited)."""
        while True:
            r, _, _ = select.select([self.ctl], [], [], timeout)
            if not r:
                return
            data = self.ctl.recv(65536)
            if not data:
                raise ZygoteDied("the sandbox ended")
            self._record(json.loads(data))
            timeout = 0.0

    def _record(self, ev: dict) -> None:
        if ev.get("ev") == "spawned":
            self.spawned.add(ev.get("id"))
        elif ev.get("ev") == "exited":
            if ev["id"] in self.killed:
                self.killed.discard(ev["id"])
            else:
                self.exited[ev["id"]] = ev.get("status", "ended")

    def spawn(self, job: dict) -> "Child":
        """A fresh child for one notebook, set up with ``job`` (its forbidden names, its seed). The child
        was usually started ahead (while the previous notebook was graded), and the next one is
        started now: the fork and namespaces cost no waiting."""
        child, self._spare = (self._spare or self._start()), None
        deadline = time.monotonic() + 60
        while child.rid not in self.spawned:
            self._record(self._control(deadline, "starting a notebook"))
        self.spawned.discard(child.rid)
        child.request({"op": "setup", "block": list(job.get("block", [])), "seed": int(job.get("seed", 0))},
                      (), time.monotonic() + 60, "starting a notebook", source="setup")
        if self.prespawn:
            self._spare = self._start()
        return child

    def _start(self) -> "Child":
        rid = self.next_id
        self.next_id += 1
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        lim = self.limits
        uid = _child_uid(rid)
        self._uids = (self._uids + [uid])[-50:]
        job = {"uid": uid, "limits": {"memory_bytes": lim.memory_bytes, "processes": lim.processes,
                                      "file_bytes": 256 * 1024**2}}
        try:
            socket.send_fds(self.ctl, [json.dumps({"op": "spawn", "id": rid, "job": job}).encode()],
                            [theirs.fileno()])
        except OSError:
            raise ZygoteDied("the sandbox ended") from None
        finally:
            theirs.close()
        return Child(self, rid, mine, lim.max_reply_bytes)

    def kill(self, rid: int) -> None:
        """Kill a child and its whole PID namespace. Does not wait: the zygote reaps it, and nothing of
        it can reach the next child (its own namespaces, socket and uid). Without namespaces ("uid"
        mode, a container) it waits until the zygote has killed every process of the child's uid and
        deleted its files: nothing of it may outlive the notebook, however it detached."""
        if self.exited.pop(rid, None) is not None and self.ns_mode != "uid":
            return
        self.killed.add(rid)
        try:
            self.ctl.send(json.dumps({"op": "kill", "id": rid}).encode())
        except OSError:
            raise ZygoteDied("the sandbox ended") from None
        if self.ns_mode == "uid":
            deadline = time.monotonic() + 30
            while True:
                ev = self._control(deadline, "ending a notebook's processes")
                if ev.get("ev") == "swept" and ev.get("id") == rid:
                    if not ev.get("ok"):
                        raise ZygoteDied("a notebook's processes could not all be ended")
                    return
                self._record(ev)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def used_uids(self) -> list[int]:
        return list(self._uids)

    def kill_now(self) -> None:
        """The watchdog's way (another thread): the zygote and with it every child, at once; as root
        without namespaces, every process of every uid its children had, too (``reaper``)."""
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        if getattr(self, "ns_mode", None) == "uid":
            from ..sandbox import reaper

            for uid in self.used_uids():
                reaper.sweep_uid(uid)

    def close(self) -> None:
        try:
            self.ctl.close()
        except Exception:
            pass
        if getattr(self, "ns_mode", None) == "uid":  # it sweeps its children's uids, then exits
            try:
                self.proc.wait(timeout=15)
            except Exception:
                pass
        try:
            os.killpg(self.proc.pid, 9)
        except Exception:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


_UIDS = itertools.count(1)  # one counter per process: zygotes of several threads never share a uid


def _child_uid(rid: int) -> int:
    """A uid that no other live child on this machine has (as root): from this worker's pid and a
    per-process counter (a uid comes back only after 1,000 notebooks, long after its sweep)."""
    return 1_000_000 + (os.getpid() % 4_000_000) * 1000 + next(_UIDS) % 1000


