"""The trusted side of a grading job: one zygote per worker, one fresh child per notebook.

``Zygote`` owns the sandboxed zygote process (``student_side.py``) and its control channel.
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
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox
from .wire import MAX_FRAME, FrameReader, ProtocolError, encode_frame


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
                         "module_types", "release", "leaves", "put_leaves"})
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
        argv, env, self.sandboxed, _ = sandbox.zygote_command(self.tmp, theirs.fileno())
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env, cwd=self.tmp,
                                     pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        msg = self._control(time.monotonic() + 120, "starting the sandbox")
        if msg.get("ev") != "ready":
            raise RuntimeError(f"sandbox did not start: {msg}")
        self.ns_mode = msg.get("ns_mode", "none")
        self.description = sandbox.isolation_description(self.ns_mode)
        self.isolation = sandbox.isolation_level(self.sandboxed, self.ns_mode)

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
            from . import reaper

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


class Child:
    """One notebook's process, reached only through its own socket."""

    def __init__(self, zygote: Zygote, rid: int, sock: socket.socket, max_reply: int):
        self.zygote = zygote
        self.rid = rid
        self.sock = sock
        self.reader = FrameReader(max_reply)
        self.alive = True
        self.callbacks: dict = {}  # stand-ins answered by the trusted side during a call

    def _end(self, status: str, message: str):
        self.kill()
        raise ChildGone(status, message)

    def kill(self) -> None:
        if not self.alive:
            return
        self.alive = False
        try:
            self.sock.close()
        except OSError:
            pass
        self.zygote.kill(self.rid)

    def _next_frame(self, deadline: float, what: str):
        while True:
            try:
                fr = self.reader.pop()
            except ProtocolError as e:
                self._end("error", f"your notebook's process sent {e} while {what}; it was stopped")
            if fr is not None:
                return fr
            left = deadline - time.monotonic()
            if left <= 0:
                self._end("timeout", f"time limit exceeded while {what}")
            r, _, _ = select.select([self.sock, self.zygote.ctl], [], [], left)
            if self.zygote.ctl in r:
                self.zygote.poll()
            if self.sock in r:
                try:
                    data = self.sock.recv(1 << 20)
                except OSError:
                    data = b""
                if data:
                    try:
                        self.reader.feed(data)
                    except ProtocolError as e:
                        self._end("error", f"your notebook's process sent {e} while {what}; it was stopped")
                    continue
                self._gone(what)
            if self.rid in self.zygote.exited:
                self._gone(what)

    def _gone(self, what: str):
        deadline = time.monotonic() + 10
        while self.rid not in self.zygote.exited and time.monotonic() < deadline:
            self.zygote.poll(0.2)
        how = self.zygote.exited.pop(self.rid, "ended")
        self.alive = False
        try:
            self.sock.close()
        except OSError:
            pass
        raise ChildGone("error", f"the notebook's process ended ({how}) while {what}: "
                                 "sys.exit, os._exit, a crash or the memory limit")

    def _send(self, header: dict, blobs, deadline: float, what: str, source: str = "test") -> None:
        """Write one frame without ever blocking past ``deadline``: a child that stops reading its
        socket (its buffer full) is ended at the deadline, like one that stops answering."""
        if "cb_reply" not in header and header.get("op") not in ALLOWED_OPS:
            raise RuntimeError(f"the grader may not send {header.get('op')!r} to a student's process")
        if header.get("op") == "run_cell" and source != "plan":
            raise RuntimeError("cells are sent from the notebook's plan only")
        if _AUDIT:
            _audit(header, source)
        data = memoryview(encode_frame(header, list(blobs)))
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                self._end("timeout", f"time limit exceeded while {what} (your process stopped reading "
                                     "what the grader sent it)")
            _, w, _ = select.select([], [self.sock], [], min(left, 1.0))
            if not w:
                if self.rid in self.zygote.exited:
                    self._gone(what)
                continue
            try:
                n = self.sock.send(data, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._gone(what)
            data = data[n:]

    def request(self, msg: dict, blobs=(), deadline: float | None = None, what: str = "running your code",
                source: str = "test"):
        """Send one request; return (value tree, blobs) of the reply with its id."""
        if not self.alive:
            raise ChildGone("error", "the notebook's process is no longer running")
        rid = secrets.randbits(62)
        deadline = deadline or time.monotonic() + 20
        self._send(dict(msg, id=rid), blobs, deadline, what, source)
        answered = 0
        while True:
            reply, rblobs = self._next_frame(deadline, what)
            if "setup_error" in reply:
                self.kill()
                raise RuntimeError(f"the sandbox could not start a notebook: {str(reply['setup_error'])[:300]}")
            if reply.get("re") != rid:
                self._end("error", f"your notebook's process sent a reply that answers no request while {what} "
                                   "(something wrote to the grader's channel); it was stopped")
            if "cb" in reply:  # a forwarder (callback or stand-in) called from the function under test
                answered += 1
                if answered > MAX_CALLBACKS:
                    self._end("error", f"your code called the grader's functions more than {MAX_CALLBACKS} times "
                                       f"while {what}; it was stopped")
                self._answer_callback(reply, rblobs, deadline, what)
                continue
            if reply.get("ok") is True:
                return reply.get("value"), rblobs
            if reply.get("kind") == "missing":
                raise Missing(str(reply.get("error", "not defined"))[:2000])
            raise StudentError(str(reply.get("error", "an exception"))[:2000])

    def _answer_callback(self, req: dict, blobs, deadline: float, what: str) -> None:
        """Run the trusted function a forwarder asked for, here, on the student's plain-data arguments;
        send back plain data (under the request's deadline, like everything sent to the child)."""
        from .api import decode_reply, encode_args  # the trusted codec

        name = req.get("cb")
        fn = self.callbacks.get(name) if isinstance(name, str) else None
        out: list[bytes] = []
        if fn is None:
            self._send({"cb_reply": str(name)[:100], "ok": False, "error": f"{str(name)[:100]} is not available here"},
                       (), deadline, what)
            return
        try:
            args = decode_reply(req.get("args"), blobs)
            kwargs = decode_reply(req.get("kwargs"), blobs)
            if not isinstance(args, tuple) or not isinstance(kwargs, dict):
                raise TypeError("malformed arguments")
            value = fn(*args, **kwargs)
            tree = encode_args(value, out)
        except Exception as e:  # the student's arguments do not fit the trusted function
            self._send({"cb_reply": name, "ok": False,
                        "error": f"your code called {name.split('#')[0]} with arguments it cannot take "
                                 f"({type(e).__name__}: {str(e)[:300]})"}, (), deadline, what)
            return
        self._send({"cb_reply": name, "ok": True, "value": tree}, out, deadline, what)


# --------------------------------------------------------------------------- one notebook
class Notebook:
    """A notebook's cells run in a fresh child, restarted (without the cells that killed it) within
    the submission's budget; then the hidden tests' requests."""

    def __init__(self, zygote: Zygote, cells: list[tuple[int, str]], limits: Limits, budget: Budget,
                 block=(), seed: int = 0):
        self.zygote, self.cells, self.limits, self.budget = zygote, cells, limits, budget
        self.block, self.seed = list(block), seed
        self.child: Child | None = None
        self.skip: dict[int, CellReport] = {}
        self.report: NotebookRun | None = None

    def ensure(self) -> NotebookRun:
        """A live child that has run the notebook; the report of its cells."""
        if self.child is not None and self.child.alive:
            return self.report
        t0 = time.monotonic()
        for _attempt in range(4):
            if self.budget.spent():
                raise ChildGone("timeout", "the submission's time budget is spent "
                                           f"({self.budget.seconds:g} s for every notebook, restart and test)")
            reports = self._run_once()
            bad = [r for r in reports if r.status in ("timeout", "crash")]
            if not bad:
                break
            for r in bad:
                self.skip[r.index] = r
        by_index = {r.index: r for r in reports}
        by_index.update(self.skip)
        self.report = NotebookRun([by_index.get(i, CellReport(i, False, "skipped", "not run")) for i, _ in self.cells],
                                  time.monotonic() - t0)
        if self.child is None or not self.child.alive:
            raise ChildGone("error", "the notebook could not be run to the end: "
                            + "; ".join(f"cell {r.index + 1}: {r.error}" for r in self.skip.values())[:1000])
        return self.report

    def _run_once(self) -> list[CellReport]:
        self.close()
        self.child = self.zygote.spawn({"seed": self.seed, "block": self.block})
        reports: list[CellReport] = []
        nb_deadline = self.budget.cap(time.monotonic() + self.limits.notebook_seconds)
        for i, src in self.cells:
            if i in self.skip:
                continue
            deadline = min(nb_deadline, time.monotonic() + self.limits.cell_seconds)
            try:
                self.child.request({"op": "run_cell", "i": i, "src": src}, (), deadline,
                                   "running the notebook's cells", source="plan")
                reports.append(CellReport(i))
            except StudentError as e:
                reports.append(CellReport(i, False, "error", str(e)))
            except Missing as e:
                reports.append(CellReport(i, False, "error", str(e)))
            except ChildGone as e:
                reports.append(CellReport(i, False, "timeout" if e.status == "timeout" else "crash", e.message))
                return reports
        return reports

    def request(self, msg, blobs=(), seconds=None, what="running your code", callbacks=None):
        if self.child is None or not self.child.alive:
            raise ChildGone("error", "the notebook's process is no longer running")
        deadline = self.budget.cap(time.monotonic() + (seconds or self.limits.call_seconds))
        self.child.callbacks = callbacks or {}
        try:
            return self.child.request(msg, blobs, deadline, what)
        finally:
            if self.child is not None:
                self.child.callbacks = {}

    def close(self) -> None:
        if self.child is not None:
            try:
                self.child.kill()
            finally:
                self.child = None
