"""Everything that runs on the student's side of the sandbox, in one self-contained file.

The grader copies this file into a fresh directory, starts it inside bubblewrap (when present) as
the *host*: a small relay that imports numpy and torch once, then forks one *child* per notebook.
The child executes the student's cells and answers remote calls from the trusted grader
(``call``, ``getattr``, ``backward``...). Values cross the boundary only as plain data: a JSON tree
plus ``.npy`` blobs that the trusted side reads with ``allow_pickle=False``. Objects of the student's
making (caches, modules) never leave the child: the trusted side gets an opaque handle.

The trusted side (``autograder.engine``) imports the framing and decoding helpers from this same
file; nothing here ever reads an expected value, because none ever enters this process.
"""
from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import struct
import sys
import traceback

MAX_FRAME = 256 * 1024 * 1024  # refuse anything larger: a flood is a failure, not a hang
MAX_OUTPUT = 64 * 1024  # bytes of student stdout/stderr kept per notebook (for feedback)


# ----------------------------------------------------------------------------------- framing
def write_frame(fd: int, header: dict, blobs: list[bytes] = ()) -> None:
    """[u32 json length][json][u32 blob count]([u64 length][bytes])*, written in one go."""
    h = json.dumps(header).encode()
    parts = [struct.pack("<I", len(h)), h, struct.pack("<I", len(blobs))]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    data = b"".join(parts)
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class FrameReader:
    """Incremental reader: feed bytes, pop complete frames. Malformed input raises ValueError."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_FRAME + 1024:
            raise ValueError("message larger than the grader accepts")

    def pop(self):
        b = self.buf
        if len(b) < 4:
            return None
        (hl,) = struct.unpack_from("<I", b, 0)
        if hl > MAX_FRAME:
            raise ValueError("malformed message")
        if len(b) < 8 + hl:
            return None
        (nb,) = struct.unpack_from("<I", b, 4 + hl)
        pos, blobs = 8 + hl, []
        for _ in range(nb):
            if len(b) < pos + 8:
                return None
            (bl,) = struct.unpack_from("<Q", b, pos)
            if bl > MAX_FRAME:
                raise ValueError("malformed message")
            if len(b) < pos + 8 + bl:
                return None
            blobs.append(bytes(b[pos + 8 : pos + 8 + bl]))
            pos += 8 + bl
        header = json.loads(bytes(b[4 : 4 + hl]).decode())
        if not isinstance(header, dict):
            raise ValueError("malformed message")
        del b[:pos]
        return header, blobs


def read_frame_blocking(fd: int, reader: FrameReader):
    while True:
        fr = reader.pop()
        if fr is not None:
            return fr
        data = os.read(fd, 1 << 20)
        if not data:
            return None
        reader.feed(data)


# ---------------------------------------------------------------------- arrays as .npy bytes
def array_to_bytes(a) -> bytes:
    import numpy as np

    out = io.BytesIO()
    np.lib.format.write_array(out, np.ascontiguousarray(a), allow_pickle=False)
    return out.getvalue()


def bytes_to_array(b: bytes):
    import numpy as np

    a = np.lib.format.read_array(io.BytesIO(b), allow_pickle=False)
    if a.dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    return a


# ------------------------------------------------------------------ the child: student side
class _Child:
    """Runs inside the forked child: executes cells, then serves remote calls."""

    def __init__(self, fd: int):
        self.fd = fd
        self.reader = FrameReader()
        self.ns = {"__name__": "__main__", "__builtins__": __builtins__}
        self.handles: dict[int, object] = {}
        self.next_handle = 1

    # -- encoding of what the student's code returned
    def keep(self, obj) -> int:
        h = self.next_handle
        self.next_handle += 1
        self.handles[h] = obj
        return h

    def encode(self, obj, blobs, depth=0):
        import numpy as np

        if depth > 20:
            return {"t": "obj", "h": self.keep(obj), "type": "deeply nested value"}
        torch = sys.modules.get("torch")
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, bool):
            return {"t": "bool", "v": bool(obj)}
        if type(obj) is int:
            return {"t": "int", "v": obj}
        if type(obj) is float:
            return {"t": "float", "v": obj}
        if type(obj) is str:
            return {"t": "str", "v": obj[:10000]}
        if isinstance(obj, np.ndarray):
            blobs.append(array_to_bytes(np.asarray(obj)))
            d = {"t": "arr", "i": len(blobs) - 1}
            if type(obj) is not np.ndarray:
                d["cls"] = type(obj).__name__
            return d
        if isinstance(obj, np.generic):
            blobs.append(array_to_bytes(np.asarray(obj)))
            return {"t": "npscalar", "i": len(blobs) - 1}
        if torch is not None and isinstance(obj, torch.Tensor):
            t = obj.detach()
            blobs.append(array_to_bytes(t.cpu().numpy()))
            return {"t": "tensor", "i": len(blobs) - 1, "dtype": str(t.dtype),
                    "device": str(obj.device), "rg": bool(obj.requires_grad),
                    "h": self.keep(obj), "cls": type(obj).__name__}
        if type(obj) in (tuple, list):
            return {"t": type(obj).__name__, "v": [self.encode(v, blobs, depth + 1) for v in obj]}
        if isinstance(obj, dict) and all(type(k) is str for k in obj):
            return {"t": "dict", "k": list(obj.keys()),
                    "v": [self.encode(v, blobs, depth + 1) for v in obj.values()],
                    "cls": type(obj).__name__}
        return {"t": "obj", "h": self.keep(obj), "type": type(obj).__name__}

    def decode(self, tree, blobs):
        """Arguments from the trusted side: plain data, tensors to make, and handles."""
        t = tree["t"]
        if t == "arr":
            return bytes_to_array(blobs[tree["i"]]).copy()
        if t == "tensor_in":
            import torch

            x = torch.from_numpy(bytes_to_array(blobs[tree["i"]]).copy()).to(tree.get("device", "cpu"))
            return x.requires_grad_(tree.get("rg", False))
        if t == "handle":
            obj = self.handles[tree["h"]]
            return obj.fn if isinstance(obj, _Probe) else obj
        if t in ("tuple", "list"):
            vals = [self.decode(v, blobs) for v in tree["v"]]
            return tuple(vals) if t == "tuple" else vals
        if t == "dict":
            return {k: self.decode(v, blobs) for k, v in zip(tree["k"], tree["v"])}
        if t == "none":
            return None
        return tree["v"]

    def send(self, header, blobs=()):
        write_frame(self.fd, header, list(blobs))

    # -- executing the notebook
    def run_cells(self, cells):
        for i, src in cells:
            self.send({"ev": "cell_start", "i": i})
            try:
                name = f"<cell {i + 1}>" if i >= 0 else "<read-only cell>"
                text = _strip_magics(src)
                import linecache  # so that tracebacks can quote the student's line

                linecache.cache[name] = (len(text), None, text.splitlines(True), name)
                code = compile(text, name, "exec")
                exec(code, self.ns)
                self.send({"ev": "cell_done", "i": i, "ok": True})
            except BaseException as e:  # SystemExit and KeyboardInterrupt too: a cell may not stop us
                self.send({"ev": "cell_done", "i": i, "ok": False, "error": _short_tb(e)})

    def serve(self):
        self.send({"ev": "ready"})
        while True:
            fr = read_frame_blocking(self.fd, self.reader)
            if fr is None:
                os._exit(0)
            req, blobs = fr
            try:
                value = self.handle_request(req, blobs)
                out = []
                self.send({"ok": True, "value": self.encode(value, out)}, out)
            except _Missing as e:
                self.send({"ok": False, "kind": "missing", "error": str(e)})
            except BaseException as e:
                self.send({"ok": False, "kind": "error", "error": _short_tb(e)})

    def handle_request(self, req, blobs):
        op = req["op"]
        if "seed" in req and op != "seed":  # a test's seed travels with its first call
            _seed(req["seed"])
        if op == "seed":
            _seed(req["seed"])
            return None
        if op == "exists":
            return [callable(self.ns.get(n)) for n in req["names"]]
        if op == "call":
            tgt = req["target"]
            if "name" in tgt:
                first, *rest = tgt["name"].split(".")
                if first not in self.ns:
                    raise _Missing(f"`{first}` is not defined in your notebook")
                fn = self.ns[first]
                for attr in rest:
                    fn = getattr(fn, attr)
            else:
                fn = self.handles[tgt["h"]]
            if "method" in req:
                fn = getattr(fn, req["method"])
            args = self.decode(req["args"], blobs)
            kwargs = self.decode(req["kwargs"], blobs)
            value = fn(*args, **kwargs)
            if req.get("return_args"):
                return (value, args, kwargs)
            return value
        if op == "define":
            # A probe function of the hidden test (e.g. the f given to numerical_gradient).
            import numpy as np

            scope = {"np": np}
            exec(compile(req["source"], "<probe>", "exec"), scope)
            return _Probe(scope[req["name"]])
        if op == "getattr":
            return getattr(self.handles[req["h"]], req["attr"])
        if op == "backward":
            import torch

            tensors = [self.handles[h] for h in req["handles"]]
            grads = [torch.from_numpy(bytes_to_array(blobs[i]).copy()).to(t.device)
                     for i, t in zip(req["grads"], tensors)]
            torch.autograd.backward(tensors, grads)
            return None
        if op == "param_grads":
            m = self.handles[req["h"]]
            return {n: p.grad for n, p in m.named_parameters()}
        if op == "module_types":
            return [f"{type(m).__module__}.{type(m).__qualname__}" for m in self.handles[req["h"]].modules()]
        if op == "release":
            for h in req["handles"]:
                self.handles.pop(h, None)
            return None
        raise ValueError(f"unknown request {op!r}")


class _Missing(Exception):
    pass


class _Probe:
    """Wraps a probe function so that it crosses back as a handle, never as data."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *a, **k):
        return self.fn(*a, **k)


def _strip_magics(src: str) -> str:
    """IPython line and cell magics (%matplotlib, !pip) have no meaning when grading."""
    lines = src.splitlines()
    keep = [("pass  # " + l) if l.lstrip().startswith(("%", "!")) else l for l in lines]
    return "\n".join(keep) + "\n"


def _short_tb(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    frames = [f for f in tb if f.filename.startswith("<cell")]
    where = ""
    if frames:
        f = frames[-1]
        where = f" (in {f.name}, {f.filename[1:-1]} line {f.lineno}: {(f.line or '').strip()[:120]})"
    msg = str(e) or ("not implemented yet" if isinstance(e, NotImplementedError) else "")
    if len(msg) > 500:
        msg = msg[:500] + "..."
    return f"{type(e).__name__}: {msg}{where}"


def _seed(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


class _CappedStream(io.TextIOBase):
    """sys.stdout/sys.stderr of the child: keeps the first MAX_OUTPUT characters, drops the rest."""

    def __init__(self):
        self.kept = 0

    def writable(self):
        return True

    def write(self, s):
        self.kept += len(s)
        return len(s)

    def flush(self):
        pass


def _child_main(fd: int, job: dict) -> None:
    os.setpgid(0, 0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(devnull, std)
    sys.stdout = sys.stderr = _CappedStream()
    workdir = job.get("workdir")
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    _apply_limits(job.get("limits", {}))
    os.environ["AUTOGRADER"] = "1"
    child = _Child(fd)
    _seed(job.get("seed", 0))
    child.run_cells(job["cells"])
    child.serve()


def _apply_limits(limits: dict) -> None:
    import resource

    mem = limits.get("memory_bytes")
    if mem:
        # Address-space limit relative to what is already mapped (torch maps a lot up front).
        vm = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    vm = int(line.split()[1]) * 1024
        lim = vm + mem
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    nproc = limits.get("processes")
    if nproc and os.getuid() == 0 and limits.get("drop_to_uid") is not None:
        # Root is exempt from RLIMIT_NPROC: drop to an unprivileged user first (as root in bwrap).
        try:
            os.setgroups([])
            os.setgid(limits["drop_to_uid"])
            os.setuid(limits["drop_to_uid"])
        except OSError:
            pass
    if nproc:
        try:
            cur = len(os.listdir("/proc")) if os.getuid() != 0 else 0
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc + cur, nproc + cur))
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# ---------------------------------------------------------------------- the host: a relay
def host_main() -> None:
    """Read jobs on fd 0, fork a child per job, relay frames between the grader and the child."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
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

    inp, out = 0, 1
    reader = FrameReader()
    child_pid = None
    csock = None
    creader = None
    write_frame(out, {"ev": "host_ready", "pid": os.getpid()})
    while True:
        rlist = [inp] + ([csock.fileno()] if csock is not None else [])
        ready, _, _ = select.select(rlist, [], [])
        if inp in ready:
            data = os.read(inp, 1 << 20)
            if not data:
                _kill(child_pid)
                os._exit(0)
            reader.feed(data)
            while (fr := reader.pop()) is not None:
                msg, blobs = fr
                if msg.get("op") == "job":
                    _kill(child_pid)
                    if csock is not None:
                        csock.close()
                    parent_s, child_s = socket.socketpair()
                    pid = os.fork()
                    if pid == 0:
                        parent_s.close()
                        os.close(inp)
                        cfd = child_s.detach()
                        try:
                            _child_main(cfd, msg)
                        except BaseException as e:  # report a set-up failure instead of vanishing
                            try:
                                write_frame(cfd, {"ev": "setup_error", "error": repr(e)})
                            except Exception:
                                pass
                        finally:
                            os._exit(0)
                    child_s.close()
                    child_pid, csock, creader = pid, parent_s, FrameReader()
                elif msg.get("op") == "kill":
                    _kill(child_pid)
                elif csock is not None:
                    try:
                        write_frame(csock.fileno(), msg, blobs)
                    except OSError:
                        pass
        if csock is not None and csock.fileno() in ready:
            try:
                data = os.read(csock.fileno(), 1 << 20)
            except OSError:
                data = b""
            bad = False
            if data:
                try:
                    creader.feed(data)
                    while (fr := creader.pop()) is not None:
                        write_frame(out, *fr)
                except ValueError:
                    bad = True
            if not data or bad:
                status = _kill(child_pid)
                csock.close()
                csock, child_pid = None, None
                write_frame(out, {"ev": "exited", "status": status,
                                  "bad_message": bad})


def _kill(pid):
    """Kill the child's whole process group and reap it; returns a description of its end."""
    if pid is None:
        return None
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        _, st = os.waitpid(pid, 0)
    except ChildProcessError:
        return "gone"
    # reap any orphans we inherited as pid 1 of the sandbox
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    if os.WIFEXITED(st):
        return f"exit code {os.WEXITSTATUS(st)}"
    if os.WIFSIGNALED(st):
        return f"signal {signal.Signals(os.WTERMSIG(st)).name}"
    return str(st)


if __name__ == "__main__":
    host_main()
