"""The zygote: the sandbox's first process, which forks one child per notebook. Nothing else runs there.

The grader copies this package, ``autograder/sandbox/`` (and nothing else of ``autograder/``), into a
scratch directory and starts this module inside bubblewrap as the **zygote**: a process that imports numpy, torch and
the course library once, holds no secret (no hidden test, no expected value, no other student's
file ever enters it) and runs no student code. For each notebook the trusted side asks it to spawn
a **child** and hands it, with the request, one end of a fresh socket pair: the child's only channel.
The zygote forks; the fork enters fresh namespaces (its own PID namespace: every process it starts
dies with it, however it detached; its own mount namespace with a private ``/tmp`` and ``/dev/shm``;
its own network and IPC namespaces: no loopback, no abstract sockets shared with anyone), drops to a
user id of its own (as root: a fresh uid per child; otherwise a nested user namespace) with no
capabilities, applies its limits, and only then reads the student's cells from its channel.

Two channels, two kinds of trust:
- the **control** channel (zygote <-> trusted side, a SOCK_SEQPACKET pair) carries "spawn", "kill",
  "spawned" and "exited". Children close it before anything else, so no student byte can reach it.
- the **data** channel (child <-> trusted side) carries requests with ids and the child's replies.
  Everything on it is student bytes: the trusted side reads it with bounds (``wire.FrameReader``),
  checks every reply's id, and learns that a child ended only from the zygote.

The child's own code: ``isolation`` (entering its namespaces and uid), ``child`` (serving requests),
``codec`` (values on its channel), ``guards`` (forbidden names unusable at run time).
"""
from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import sys

from . import reaper
from .child import _Child, _Discard
from .guards import _block_prepare
from .isolation import _become_student, _enter_namespaces, _private_home, _probe_mode
from .kernel import PR_SET_PDEATHSIG, _libc
from .wire import send_frame

def _child_main(data_fd: int, job: dict) -> None:
    """The forked child (still the zygote's trusted code until ``serve``)."""
    mode = _enter_namespaces(job)
    if mode != "none":
        pid = os.fork()  # the first process of the new PID namespace
        if pid != 0:  # this one only waits: when PID 1 ends, every process of the namespace ends
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            os.write(job["_pid_pipe"], str(pid).encode())
            os.close(job["_pid_pipe"])
            os.close(data_fd)
            _, st = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(st) & 0xFF if os.WIFEXITED(st) else 128 + os.WTERMSIG(st))
    else:
        os.write(job["_pid_pipe"], str(os.getpid()).encode())
        os.close(job["_pid_pipe"])
        os.setpgid(0, 0)
    home = "/tmp"
    if mode == "uid":  # no mount namespace: a private folder of the child's own uid instead of a fresh /tmp
        home = _private_home(int(job["uid"]))
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(devnull, std)
    os.closerange(3, data_fd)
    os.closerange(data_fd + 1, 4096)
    sys.stdout = sys.stderr = _Discard()
    os.chdir(home)
    os.environ.update(HOME=home, TMPDIR=home, MPLCONFIGDIR=home + "/mpl", AUTOGRADER="1")
    if mode == "uid":
        import tempfile

        tempfile.tempdir = home
    _become_student(job, mode)
    # What depends on the notebook (its forbidden names, its seed) comes as the first request, "setup":
    # a child can so be started ahead of its notebook, while the previous one is still being graded.
    sock = socket.socket(fileno=data_fd)
    _Child(sock).serve()


# ---------------------------------------------------------------------------- the zygote
def _preimport() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import numpy  # noqa: F401  (imported once here, shared by every forked child)

    for mod in ("torch", "matplotlib", "matplotlib.pyplot", "tqdm", "tqdm.auto", "rnnlib"):
        try:
            __import__(mod)
        except Exception:
            pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:  # every module of the course library, so that no notebook pays for importing it
        import pkgutil

        import rnnlib

        for m in pkgutil.iter_modules(rnnlib.__path__):
            try:
                __import__(f"rnnlib.{m.name}")
            except Exception:
                pass
    except Exception:
        pass


def _serve_public_part(held_out) -> None:
    """A container has no mount namespace: the original held-out files are root-only, so the children
    (fresh uids) read the public part from the zygote's memory through scikit-learn's own loader."""
    import gzip

    public = {}
    for original, path in held_out:
        with open(path, "rb") as f:
            public[os.path.basename(original)] = f.read()
    try:
        import sklearn.datasets._base as base
    except Exception:
        return
    loader = base.load_gzip_compressed_csv_data

    def load_public(data_file_name, *args, **kwargs):
        if data_file_name in public:
            import numpy as np

            kw = {k: v for k, v in kwargs.items() if k in ("delimiter",)}
            data = np.loadtxt(io.BytesIO(gzip.decompress(public[data_file_name])), **kw)
            descr = kwargs.get("descr_file_name")
            if descr is None:
                return data
            return data, base.load_descr(descr)
        return loader(data_file_name, *args, **kwargs)

    base.load_gzip_compressed_csv_data = load_public



MEMORY_TICK = 0.1  # seconds between two looks at the children's memory


def _over_memory(ns_init: dict, uids: dict, limits: dict):
    """[(rid, pid, bytes held, limit)] for each child whose processes together hold more than its
    limit: the child's process, every descendant (a fork, a detached grandchild reparented to the
    child's PID 1) and, with a uid of its own, every process of that uid (however it detached).
    Each process counts its private memory beyond what it shares with the zygote it was forked from
    (anonymous resident memory less the zygote's own), as the per-process limit counts growth."""
    base = 0
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssAnon:"):
                    base = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    procs = {}
    wanted = set(uids.values()) | {os.getuid()}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.stat(f"/proc/{p}").st_uid not in wanted:  # another user's process: not a notebook's
                continue
            with open(f"/proc/{p}/status", "rb") as f:
                ppid = uid = rss = 0
                for line in f:
                    if line.startswith(b"PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith(b"Uid:"):
                        uid = int(line.split()[1])
                    elif line.startswith(b"RssAnon:"):
                        rss = max(0, int(line.split()[1]) * 1024 - base)
            procs[int(p)] = (ppid, uid, rss)
        except (OSError, ValueError, IndexError):
            continue
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    out = []
    for rid, top in list(ns_init.items()):
        limit = limits.get(rid)
        if not limit:
            continue
        mine, todo = set(), [top]
        while todo:
            q = todo.pop()
            if q in mine:
                continue
            mine.add(q)
            todo += kids.get(q, [])
        uid = uids.get(rid)
        if uid is not None and uid >= reaper.FIRST_SANDBOX_UID:
            mine |= {q for q, (_, u, _) in procs.items() if u == uid}
        used = sum(procs[q][2] for q in mine if q in procs)
        if used > limit:
            out.append((rid, top, used, limit))
    return out


def zygote_main(control_fd: int, wanted_mode: str, keep=(), held_out=()) -> None:
    """Serve spawn and kill requests on the control socket until it closes. ``keep``: paths under
    /tmp (the Python installation's) that each child's fresh /tmp must still show."""
    ctl = socket.socket(fileno=control_fd)
    ns_mode = _probe_mode(wanted_mode)
    _preimport()
    try:  # where each forbidden callable is exposed, indexed once here, not scanned in every child
        _block_prepare()
    except Exception:
        pass
    held_out = [tuple(h) for h in held_out]
    if held_out and ns_mode == "uid":
        _serve_public_part(held_out)
    _Zygote(ctl, ns_mode, list(keep), held_out).serve()


class _Zygote:
    """The zygote's bookkeeping of its children, by request id, and its main loop."""

    def __init__(self, ctl, ns_mode: str, keep: list, held_out: list):
        self.ctl, self.ns_mode, self.keep, self.held_out = ctl, ns_mode, keep, held_out
        self.children: dict[int, int] = {}  # intermediate pid -> request id
        self.ns_init: dict[int, int] = {}  # request id -> pid to kill (PID 1 of the child's namespace)
        self.uids: dict[int, int] = {}  # request id -> the child's uid (swept at its end in "uid" mode)
        self.mem_limits: dict[int, int] = {}  # request id -> bytes its processes may hold together
        self.over: dict[int, str] = {}  # request id -> why the zygote ended it
        self.reaped: list[int] = []  # pids reaped during a sweep: their "exited" events are sent by the loop

    def event(self, **ev) -> None:
        self.ctl.send(json.dumps(ev).encode())

    def flush_reaped(self) -> None:  # children a sweep reaped: their "exited" events
        for p in list(self.reaped):
            self.reaped.remove(p)
            self.exited(p, 9)

    def exited(self, pid, st) -> None:
        rid = self.children.pop(pid, None)
        if rid is not None:
            self.ns_init.pop(rid, None)
            self.mem_limits.pop(rid, None)
            how = self.over.pop(rid, None) or (f"exit code {os.WEXITSTATUS(st)}" if os.WIFEXITED(st)
                                               else f"signal {signal.Signals(os.WTERMSIG(st)).name}")
            self.event(ev="exited", id=rid, status=how)

    def serve(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        self.event(ev="ready", ns_mode=self.ns_mode)
        while True:
            ready, _, _ = select.select([self.ctl, self.wake_r], [], [], MEMORY_TICK if self.ns_init else None)
            if self.ns_init:  # one notebook's processes together may not hold more than its memory limit
                self.enforce_memory()
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
            self.reap()
            if self.ctl not in ready:
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(self.ctl, 65536, 1)
            except OSError:
                msg, fds = b"", []
            if not msg:
                self.shut_down()
            req = json.loads(msg)
            if req["op"] == "spawn":
                self.spawn(req, fds)
            elif req["op"] == "kill":
                self.kill(req["id"])

    def enforce_memory(self) -> None:
        for rid, pid, used, limit in _over_memory(self.ns_init, self.uids, self.mem_limits):
            _kill(pid)
            if self.ns_mode == "uid":
                reaper.sweep_uid(self.uids.get(rid, 0), reaped=self.reaped)
            self.over[rid] = (f"the memory limit: the notebook's processes held {used >> 20} MiB together "
                              f"(limit {limit >> 20} MiB)")
            self.flush_reaped()

    def reap(self) -> None:
        while True:  # reap every child that ended
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            self.exited(pid, st)

    def shut_down(self) -> None:
        for pid in list(self.ns_init.values()):
            _kill(pid)
        if self.ns_mode == "uid":
            for uid in self.uids.values():
                reaper.sweep_uid(uid)
        os._exit(0)

    def spawn(self, req, fds) -> None:
        rid = req["id"]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                self.ctl.close()
                os.close(r)
                os.close(self.wake_r)
                os.close(self.wake_w)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                job = dict(req["job"], ns_mode=self.ns_mode, _pid_pipe=w, keep=self.keep, held_out=self.held_out)
                _child_main(fds[0], job)
            except BaseException as e:
                try:
                    send_frame(fds[0], {"setup_error": repr(e)[:500]})
                except Exception:
                    pass
            finally:
                os._exit(70)
        os.close(w)
        for fd in fds:
            os.close(fd)
        got = b""
        while True:
            chunk = os.read(r, 32)
            if not chunk:
                break
            got += chunk
        os.close(r)
        self.children[pid] = rid
        self.uids[rid] = int(req["job"]["uid"])
        if req["job"].get("limits", {}).get("memory_bytes"):
            self.mem_limits[rid] = int(req["job"]["limits"]["memory_bytes"])
        self.ns_init[rid] = int(got) if got.strip().isdigit() else pid
        self.event(ev="spawned", id=rid)

    def kill(self, rid) -> None:
        pid = self.ns_init.get(rid)
        if pid is not None:
            _kill(pid)
            for ipid, r in self.children.items():  # the waiting parent too, in case it lingers
                if r == rid:
                    _kill(ipid)
        if self.ns_mode == "uid":
            # No PID namespace holds the child's processes: every process of its uid is killed and
            # reaped, and its files deleted, before the trusted side accepts the notebook's results.
            uid = self.uids.pop(rid, None)
            ok = reaper.sweep_uid(uid, reaped=self.reaped) if uid is not None else True
            self.flush_reaped()
            self.event(ev="swept", id=rid, ok=ok)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def main(argv: list[str]) -> None:
    """Without bubblewrap: ``CONTROL_FD WANTED_MODE [KEEP_JSON [HELD_OUT_JSON]]``."""
    zygote_main(int(argv[0]), argv[1], json.loads(argv[2]) if len(argv) > 2 else (),
                json.loads(argv[3]) if len(argv) > 3 else ())
