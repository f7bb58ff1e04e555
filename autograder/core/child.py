"""A notebook's process as the trusted side sees it: ``Child`` sends one request at a time with a fresh
id and waits, under a deadline, for the reply with that id (answering the forwarders student code
calls meanwhile); ``Notebook`` runs a notebook's planned cells in a child, once, and restarts nothing.
Every way a child can end becomes ``ChildGone`` and ends that child alone."""
from __future__ import annotations

import secrets
import select
import socket
import time

from ..sandbox.wire import FrameReader, ProtocolError, encode_frame
from . import records
from .records import (ALLOWED_OPS, MAX_CALLBACKS, Budget, CellReport, ChildGone, Limits, Missing, NotebookRun,  # noqa: F401
                      StudentError, ZygoteDied)


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
        if records._AUDIT:
            records._audit(header, source)
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
        from .values import decode_reply, encode_args  # the trusted codec

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
