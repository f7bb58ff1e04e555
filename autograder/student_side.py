"""The student's side of the sandbox: the zygote and the per-notebook child. Nothing else runs there.

The grader copies this file and ``wire.py`` (and nothing else of ``autograder/``) into a scratch
directory and starts it inside bubblewrap as the **zygote**: a process that imports numpy, torch and
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
"""
from __future__ import annotations

import ctypes
import io
import json
import os
import select
import signal
import socket
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reaper  # noqa: E402
from wire import (MAX_STRING, FrameReader, array_to_bytes, bytes_to_array,  # noqa: E402
                  send_frame)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWIPC, CLONE_NEWNET = 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(src: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {target}")


def _drop_capabilities() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


# ------------------------------------------------------------------ the child: student side
class _Missing(Exception):
    pass


class _Kept:
    """A value the trusted side asked to keep here: it crosses back as a handle, never as data."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


class _Child:
    """Runs inside the child: executes cells and serves the trusted side's requests, one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = FrameReader()
        self.ns = {"__name__": "__main__", "__builtins__": __builtins__}
        self.handles: dict[int, object] = {}
        self.next_handle = 1
        self.current_id = None  # the id of the request being served (stand-in calls carry it)
        self.set_up = False

    # -- values of the student's making -> plain data (anything else stays here, as a handle)
    def keep(self, obj) -> int:
        h = self.next_handle
        self.next_handle += 1
        self.handles[h] = obj
        return h

    def encode(self, obj, blobs, depth=0):
        import numpy as np

        if type(obj) is _Kept:
            return {"t": "obj", "h": self.keep(obj.v), "type": type(obj.v).__name__[:100]}
        if depth > 16:
            return {"t": "obj", "h": self.keep(obj), "type": "deeply nested value"}
        torch = sys.modules.get("torch")
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, (bool, np.bool_)) and type(obj) in (bool, np.bool_):
            return {"t": "bool", "v": bool(obj)}
        if type(obj) is int:
            if -(2**63) <= obj < 2**63:
                return {"t": "int", "v": obj}
            return {"t": "obj", "h": self.keep(obj), "type": "int (too large)"}
        if type(obj) is float:
            return {"t": "float", "v": obj}
        if type(obj) is str:
            return {"t": "str", "v": obj[:MAX_STRING]}
        if isinstance(obj, np.ndarray):
            blobs.append(array_to_bytes(np.asarray(obj)))
            d = {"t": "arr", "i": len(blobs) - 1}
            if type(obj) is not np.ndarray:
                d["cls"] = type(obj).__name__[:100]
            return d
        if isinstance(obj, np.generic):
            blobs.append(array_to_bytes(np.asarray(obj)))
            return {"t": "npscalar", "i": len(blobs) - 1}
        if torch is not None and isinstance(obj, torch.Tensor):
            t = obj.detach()
            blobs.append(array_to_bytes(t.cpu().numpy()))
            return {"t": "tensor", "i": len(blobs) - 1, "dtype": str(t.dtype), "device": str(obj.device),
                    "rg": bool(obj.requires_grad), "h": self.keep(obj), "cls": type(obj).__name__[:100]}
        if type(obj) in (tuple, list):
            if len(obj) > 10_000:
                return {"t": "obj", "h": self.keep(obj), "type": f"{type(obj).__name__} of {len(obj)} items"}
            return {"t": type(obj).__name__, "v": [self.encode(v, blobs, depth + 1) for v in obj]}
        if isinstance(obj, dict) and all(type(k) is str for k in obj) and len(obj) <= 10_000:
            return {"t": "dict", "k": [k[:MAX_STRING] for k in obj.keys()],
                    "v": [self.encode(v, blobs, depth + 1) for v in obj.values()],
                    "cls": type(obj).__name__[:100]}
        return {"t": "obj", "h": self.keep(obj), "type": type(obj).__name__[:100]}

    def decode(self, tree, blobs):
        """Arguments from the trusted side: plain data, tensors to make, and handles."""
        t = tree["t"]
        if t == "arr":
            return bytes_to_array(blobs[tree["i"]]).copy()
        if t == "npscalar":
            return bytes_to_array(blobs[tree["i"]])[()]
        if t == "tensor_in":
            import torch

            x = torch.from_numpy(bytes_to_array(blobs[tree["i"]]).copy()).to(tree.get("device", "cpu"))
            return x.requires_grad_(tree.get("rg", False))
        if t == "handle":
            return self.handles[tree["h"]]
        if t in ("tuple", "list"):
            vals = [self.decode(v, blobs) for v in tree["v"]]
            return tuple(vals) if t == "tuple" else vals
        if t == "dict":
            return {k: self.decode(v, blobs) for k, v in zip(tree["k"], tree["v"])}
        if t == "none":
            return None
        return tree["v"]

    def send(self, header, blobs=()):
        send_frame(self.sock, header, list(blobs))

    def recv(self):
        while True:
            fr = self.reader.pop()
            if fr is not None:
                return fr
            data = self.sock.recv(1 << 20)
            if not data:
                os._exit(0)  # the trusted side hung up: nothing left to do
            self.reader.feed(data)

    # -- serving
    def serve(self):
        while True:
            req, blobs = self.recv()
            rid = req.get("id")
            self.current_id = rid
            try:
                value = self.handle_request(req, blobs)
                out = []
                tree = self.encode(value, out)
                self.send({"re": rid, "ok": True, "value": tree}, out)
            except _Missing as e:
                self.send({"re": rid, "ok": False, "kind": "missing", "error": str(e)})
            except BaseException as e:  # SystemExit and KeyboardInterrupt too: a cell may not stop us
                try:
                    msg = _short_tb(e)
                except BaseException:
                    msg = "an exception that could not be described"
                self.send({"re": rid, "ok": False, "kind": "error", "error": msg})
            finally:
                self.current_id = None

    def handle_request(self, req, blobs):
        op = req["op"]
        if "seed" in req:  # a test's seed travels with its first call
            _seed(req["seed"])
        if op == "setup":  # always the first request, before any student code (see _child_main)
            if self.set_up:
                raise ValueError("set up twice")
            _block(req.get("block", []))
            _seed(req.get("seed", 0))
            self.set_up = True
            return None
        if not self.set_up:
            raise ValueError("not set up")
        if op == "run_cell":
            i, src = req["i"], req["src"]
            name = f"<cell {i + 1}>" if i >= 0 else "<read-only cell>"
            text = _strip_magics(src)
            import linecache  # so that tracebacks can quote the student's line

            linecache.cache[name] = (len(text), None, text.splitlines(True), name)
            exec(compile(text, name, "exec"), self.ns)
            return None
        if op == "seed":
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
            saved = self.install_stand_ins(req.get("stand_ins") or [])
            try:
                value = fn(*args, **kwargs)
            finally:
                for name, old in saved.items():
                    if old is _ABSENT:
                        self.ns.pop(name, None)
                    else:
                        self.ns[name] = old
            value = _keep_parts(value, req.get("keep"))
            if req.get("return_args"):
                return (value, args, kwargs)
            return value
        if op == "forwarder":
            # A function of the trusted side that student code may call: a plain forwarder (below).
            return _Kept(self.make_stand_in(str(req["name"])[:100]))
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
        if op == "leaves":  # cache repair (testkit/repair.py): a kept value's float arrays and floats
            return _leaves(self.handles[req["h"]])
        if op == "put_leaves":  # ... and plain values from the trusted side put in at those paths
            paths, values = self.decode(req["args"], blobs)
            root = self.handles[req["h"]]
            for path, value in zip(paths, values):
                root = _put(root, list(path), value)
            self.handles[req["h"]] = root
            return None
        if op == "release":
            for h in req["handles"]:
                self.handles.pop(h, None)
            return None
        raise ValueError(f"unknown request {op!r}")

    # -- stand-ins: a graded name answered by the trusted side while one call runs
    def install_stand_ins(self, names):
        saved = {}
        for name in names:
            saved[name] = self.ns.get(name, _ABSENT)
            self.ns[name] = self.make_stand_in(name)
        return saved

    def make_stand_in(self, name):
        child = self

        def stand_in(*args, **kwargs):
            blobs: list[bytes] = []
            try:
                tree = {"args": child.encode(tuple(args), blobs), "kwargs": child.encode(dict(kwargs), blobs)}
            except Exception as e:
                raise TypeError(f"{name}: arguments that cannot be passed ({e})") from None
            child.send({"cb": name, "re": child.current_id, **tree}, blobs)
            reply, rblobs = child.recv()
            if reply.get("cb_reply") != name:
                raise RuntimeError(f"{name}: no answer from the grader")
            if not reply.get("ok"):
                raise _StandInError(reply.get("error", f"{name} could not take these arguments"))
            return child.decode(reply["value"], rblobs)

        stand_in.__name__ = stand_in.__qualname__ = name
        stand_in.__doc__ = f"The grader's {name}, standing in for yours while another function is tested."
        return stand_in


class _StandInError(Exception):
    pass


def _keep_parts(value, keep):
    """``keep``: None, "all", or the indices of a returned tuple/list to keep here as handles."""
    if keep is None:
        return value
    if keep == "all":
        return _Kept(value)
    if isinstance(value, (tuple, list)):
        idx = {int(i) for i in keep}
        parts = [_Kept(v) if i in idx else v for i, v in enumerate(value)]
        return parts if type(value) is list else tuple(parts)
    return value


_ABSENT = object()


def _leaves(root, limit=4096):
    """[[path, value]] for every float array and float inside a kept value (tuples, lists, str-keyed
    dicts, attributes of the notebook's own objects), a path being [["i", index] | ["k", key] |
    ["a", attribute], ...]. Generic data plumbing: no course logic."""
    import numpy as np

    out, seen = [], set()

    def walk(o, path, depth):
        if len(out) >= limit or depth > 12:
            return
        if type(o) is np.ndarray:
            if o.dtype.kind == "f":
                out.append([path, o])
            return
        if type(o) is float:
            out.append([path, o])
            return
        if id(o) in seen:
            return
        if type(o) in (tuple, list):
            seen.add(id(o))
            for i, v in enumerate(o):
                walk(v, path + [["i", i]], depth + 1)
        elif type(o) is dict:
            seen.add(id(o))
            for k, v in list(o.items()):
                if type(k) is str:
                    walk(v, path + [["k", k]], depth + 1)
        elif getattr(type(o), "__module__", None) == "__main__" and not isinstance(o, type) and not callable(o):
            seen.add(id(o))
            d = getattr(o, "__dict__", None)
            if type(d) is dict:
                for k, v in list(d.items()):
                    if type(k) is str:
                        walk(v, path + [["a", k]], depth + 1)

    walk(root, [], 0)
    return out


def _put(o, path, value):
    """``o`` with the value at ``path`` (as ``_leaves`` gives it) replaced; tuples are rebuilt."""
    if not path:
        return value
    (kind, key), rest = path[0], path[1:]
    if kind == "i" and type(o) in (tuple, list):
        new = _put(o[key], rest, value)
        if type(o) is list:
            o[key] = new
            return o
        return o[:key] + (new,) + o[key + 1:]
    if kind == "k" and type(o) is dict:
        o[key] = _put(o[key], rest, value)
        return o
    if kind == "a":
        setattr(o, key, _put(getattr(o, key), rest, value))
        return o
    raise ValueError("a path that does not lead to a value")


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
    try:
        msg = str(e)
    except BaseException:
        msg = "(its message could not be read)"
    msg = msg or ("not implemented yet" if isinstance(e, NotImplementedError) else "")
    if len(msg) > 500:
        msg = msg[:500] + "..."
    return f"{type(e).__name__[:100]}: {msg}{where}"


def _seed(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


class _Discard(io.TextIOBase):
    """sys.stdout/sys.stderr of the child: printing costs nothing and is never read."""

    def writable(self):
        return True

    def write(self, s):
        return len(s)

    def flush(self):
        pass


# -------------------------------------------------- forbidden names, unusable at run time
# What a forbidden module name stands for at run time: torch._VF, torch._C and torch.ops.aten expose
# the recurrent kernels (also as torch.lstm_cell, ...; torch._decomp holds their Python versions);
# torch.nn.utils the clipping functions.
_LAYERS = ("LSTM", "LSTMCell", "GRU", "GRUCell", "RNN", "RNNCell", "RNNBase", "RNNCellBase")
_KERNELS = ("lstm", "lstm_cell", "gru", "gru_cell", "rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell",
            "quantized_lstm", "quantized_gru", "quantized_lstm_cell", "quantized_gru_cell",
            "quantized_rnn_tanh_cell", "quantized_rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell",
            "mkldnn_rnn_layer", "_cudnn_rnn", "miopen_rnn", "_lstm_mps")
_DECOMP = ("lstm_impl", "gru_impl", "rnn_tanh_input", "rnn_relu_input", "rnn_tanh_data", "rnn_relu_data",
           "lstm_data_impl", "gru_impl_data", "one_layer_lstm", "one_layer_lstm_data", "one_layer_rnn_data",
           "lstm_cell", "gru_cell", "rnn_cell", "rnn_cell_data", "gru_cell_data", "mkldnn_one_layer_lstm")
# Other ways to a recurrent layer that runs no guarded kernel: the quantization toolkit's LSTM, written
# in Python from Linear layers; TorchScript compiled from a string or loaded from bytes (aten::lstm_cell
# called from C++).
_ELSEWHERE = ("torch.ao.nn.quantizable.LSTM", "torch.ao.nn.quantizable.LSTMCell",
              "torch.ao.nn.quantizable.modules.rnn._LSTMLayer", "torch.ao.nn.quantizable.modules.rnn._LSTMSingleLayer",
              "torch.ao.nn.quantized.dynamic.LSTM", "torch.ao.nn.quantized.dynamic.GRU",
              "torch.ao.nn.quantized.dynamic.LSTMCell", "torch.ao.nn.quantized.dynamic.GRUCell",
              "torch.ao.nn.quantized.dynamic.RNNCell", "torch.jit.script", "torch.jit.load", "torch.jit.trace",
              "torch.jit.CompilationUnit", "torch._C.CompilationUnit", "torch._C._jit_script_compile",
              "torch._C.import_ir_module", "torch._C.import_ir_module_from_buffer", "torch.compile")
_CLIPPING = ("clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
             "_clip_grads_with_norm_", "_get_total_norm")
# Attribute names that student code may not read through getattr() at run time (the syntax check
# refuses them written out): ways to the originals behind the guards.
_ESCAPES = frozenset({"__closure__", "cell_contents", "__globals__", "__code__", "__func__", "__self__",
                      "__wrapped__", "__subclasses__", "__getattribute__", "__dict__", "__builtins__",
                      "__reduce__", "__reduce_ex__", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
                      "tb_frame", "gi_frame", "cr_frame", "ag_frame", "gi_code", "_getframe", "get_objects",
                      "get_referents", "get_referrers", "attrgetter", "methodcaller", "getattr_static", "modules",
                      "import_module", "__import__", "_vault", "_VF", "_C", "_VariableFunctions",
                      "_VariableFunctionsClass", "_decomp", "_jit_get_operation", "vf", "setprofile", "settrace"})
_NEVER_EXPOSE = ("numpy", "scipy", "matplotlib", "sympy", "PIL", "sklearn", "pandas", "mpl_toolkits", "IPython")
# Audit events refused while student code is on the stack (gc's introspection: always).
_AUDIT_REFUSED = ("ctypes.", "pickle.find_class", "code.__new__", "function.__new__",
                  "sys.setprofile", "sys.settrace")
_AUDIT_FRAMES = ("__code__", "f_code", "tb_frame", "gi_frame", "gi_code", "cr_frame", "ag_frame", "f_back")


_EXPOSED = None  # {id(callable): [(module dict, key)]}, made once in the zygote by _block_prepare


def _exposures(ids):
    """[(module dict, key)] for every module attribute whose value's id is in ``ids``. The standard
    library and the big numeric packages never re-export torch's functions: skipped, for speed."""
    out = []
    skip = sys.stdlib_module_names
    for mname, m in list(sys.modules.items()):
        if mname.partition(".")[0] in skip or mname.startswith(_NEVER_EXPOSE):
            continue
        d = getattr(m, "__dict__", None)
        if type(d) is not dict:
            continue
        if any(id(v) in ids for v in list(d.values())):
            out += [(d, k) for k, v in list(d.items()) if id(v) in ids]
    return out


def _candidates() -> list:
    """Every callable that some FORBIDDEN list may guard (kernels, decompositions, clipping, elsewhere)."""
    import importlib

    torch = sys.modules.get("torch")
    if torch is None:
        return []
    out = [getattr(torch._C._VariableFunctions, n, None) for n in _KERNELS]
    for mod, ns in (("torch._decomp.decompositions", _DECOMP), ("torch.nn.utils.clip_grad", _CLIPPING)):
        try:
            m = importlib.import_module(mod)
            out += [getattr(m, n, None) for n in ns]
        except Exception:
            pass
    for dotted in ("torch._C._jit_get_operation",) + _ELSEWHERE:
        obj = torch
        for p in dotted.split(".")[1:]:
            obj = getattr(obj, p, None)
        out.append(obj)
    return [o for o in out if o is not None]


def _block_prepare() -> None:
    """In the zygote, after the imports: index where each candidate is exposed, so that each child's
    ``_block`` replaces them in a millisecond instead of scanning every module (~35 ms)."""
    global _EXPOSED
    cands = _candidates()
    index = {id(o): [] for o in cands}
    for d, k in _exposures(set(index)):
        index[id(d[k])].append((d, k))
    _EXPOSED = index


class _Blocked:
    """Stands where a forbidden name was: only a read-only cell of the release may call it or read from it.

    The original is not held here: it lives in the vault (``_block``), which hands it out only to the
    release's read-only cells, in the main thread, with no student code on the stack."""

    _vault = None  # set by _block: vault(op, key, arg) -> the original (context checked) / isinstance

    def __init__(self, name, original=None):
        object.__setattr__(self, "_name", name)
        if original is not None and _Blocked._vault is not None:
            _Blocked._vault("put", name, original)

    def _refuse(self):
        raise PermissionError(f"{self._name} is not allowed in this exercise: write it from scratch")

    def _get(self):
        fn = _Blocked._vault("get", self._name, None) if _Blocked._vault is not None else None
        if fn is None:
            self._refuse()
        return fn

    def __call__(self, *a, **k):
        return self._get()(*a, **k)

    def __getattr__(self, attr):
        return getattr(self._get(), attr)

    def __instancecheck__(self, obj):
        return bool(_Blocked._vault("isinstance", self._name, obj))

    def __subclasscheck__(self, cls):
        return bool(_Blocked._vault("issubclass", self._name, cls))

    def __mro_entries__(self, bases):
        self._refuse()  # subclassing the forbidden class is using it

    def __repr__(self):
        return f"<{self._name}: not allowed in this exercise>"


def _block(names) -> None:
    """Replace each forbidden dotted name (``torch.nn.LSTM``), and every callable that a forbidden module
    stands for (``torch._VF`` -> the recurrent kernels, wherever torch exposes them), by a guard, before
    student code runs; then refuse the ways around the guards (frames, closures, the heap, ctypes).

    Only the release's read-only cells may still use them. The static check of the notebook's source is
    the rule; this is the second line: a path that the check misses finds nothing to call."""
    import _thread
    import builtins
    import importlib

    names = list(names)
    if not names:
        return
    getframe, get_ident, main = sys._getframe, _thread.get_ident, _thread.get_ident()
    real_getattr, real_vars, real_isinstance, real_issubclass = getattr, vars, isinstance, issubclass
    busy = [False]
    base, f = set(), getframe(0)
    while f is not None:  # the child's own stack (the zygote may run as `python -c`: "<string>")
        base.add(id(f))
        f = f.f_back

    def foreign(f):  # code the student made: its cells, and anything compiled from a string
        fn = f.f_code.co_filename
        return fn.startswith("<") and fn != "<read-only cell>" and not fn.startswith("<frozen ") \
            and id(f) not in base

    def untrusted_on_stack(depth):
        was, busy[0] = busy[0], True
        try:
            f = getframe(depth)
            while f is not None:
                if foreign(f):
                    return True
                f = f.f_back
            return False
        finally:
            busy[0] = was

    def read_only_context():  # the release's cell, in the main thread, no student code on the stack
        if get_ident() != main:
            return False
        f, ro = getframe(3), False
        while f is not None:
            if f.f_code.co_filename == "<read-only cell>":
                ro = True
            elif foreign(f):
                return False
            f = f.f_back
        return ro

    def vault_gen():  # the originals live in this generator's frame only (gi_frame is refused below)
        table, reply = {}, None
        while True:
            op, key, arg = yield reply
            reply = None
            if op == "put":
                table.setdefault(key, arg)
            elif op == "get":
                busy[0] = True
                try:
                    ok = read_only_context()
                finally:
                    busy[0] = False
                reply = table.get(key) if ok else None
            elif op in ("isinstance", "issubclass") and real_isinstance(table.get(key), type):
                reply = (real_isinstance if op == "isinstance" else real_issubclass)(arg, table[key])

    gen = vault_gen()
    next(gen)
    send = gen.send
    _Blocked._vault = lambda op, key, arg: send((op, key, arg))

    def guard(dotted, original):
        return original if real_isinstance(original, _Blocked) else _Blocked(dotted, original)

    # 1. the dotted names themselves (classes and functions: torch.nn.LSTM, torch.lstm_cell, ...)
    wanted = {}  # id(original) -> guard, replaced wherever a module exposes it
    installed = []  # dotted names replaced by a guard
    for dotted in names:
        parts = dotted.split(".")
        for k in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:k]))
            except Exception:
                continue
            try:
                for p in parts[k:-1]:
                    obj = real_getattr(obj, p)
                original = real_getattr(obj, parts[-1])
            except Exception:
                break
            if isinstance(original, type(sys)) or original is None:
                break  # a module: what it stands for is guarded below
            try:
                g = guard(dotted, original)
                setattr(obj, parts[-1], g)
                installed.append(dotted)
                if not isinstance(original, type):
                    wanted[id(original)] = g
            except Exception:
                pass
            break
    # 2. what a forbidden module stands for
    torch = sys.modules.get("torch")
    recurrent = any(n.split(".")[-1] in _LAYERS or n.endswith(".modules.rnn") for n in names)
    kernels = any((recurrent and n.startswith(("torch._VF", "torch._C", "torch.ops"))) or n.split(".")[-1] in _KERNELS
                  for n in names)  # (a chapter that allows torch.nn.GRUCell keeps its kernel)
    clipping = any(n.startswith("torch.nn.utils") for n in names)
    if torch is not None and kernels:
        vfi = torch._C._VariableFunctions
        for n in _KERNELS:
            fn = real_getattr(vfi, n, None)
            if fn is not None:
                wanted.setdefault(id(fn), guard(f"torch.{n}", fn))
        try:
            dec = importlib.import_module("torch._decomp.decompositions")
            for n in _DECOMP:
                fn = real_getattr(dec, n, None)
                if callable(fn):
                    wanted.setdefault(id(fn), guard(f"torch._decomp.decompositions.{n}", fn))
        except Exception:
            pass
        try:
            aten = torch.ops.aten
            for n in _KERNELS:
                try:
                    packet = real_getattr(aten, n)
                except Exception:
                    continue
                setattr(aten, n, guard(f"torch.ops.aten.{n}", packet))
        except Exception:
            pass

        class _Functions:  # torch._C._VariableFunctions (and torch._VF.vf) without the kernels
            __slots__ = ()

            def __getattr__(self, attr):
                v = real_getattr(vfi, attr)
                return wanted.get(id(v), v) if attr in _KERNELS else v

        proxy = _Functions()
        vf_cls = type(vfi)
        for m in (torch._C, sys.modules.get("torch._VF")):
            for k, v in list(real_vars(m).items()) if m is not None else ():
                if v is vfi or v is vf_cls:
                    try:
                        setattr(m, k, proxy if v is vfi else _Blocked(f"torch._C.{k}", v))
                    except Exception:
                        pass
        vfm = sys.modules.get("torch._VF")
        if vfm is not None:
            for n in _KERNELS:
                fn = real_getattr(vfi, n, None)
                if fn is not None:
                    setattr(vfm, n, wanted[id(fn)])
        for dotted in ("torch._C._jit_get_operation",) + _ELSEWHERE:
            obj = torch
            for p in dotted.split(".")[1:]:
                obj = real_getattr(obj, p, None)
            if obj is not None and not real_isinstance(obj, _Blocked):
                wanted.setdefault(id(obj), guard(dotted, obj))
    if torch is not None and clipping:
        try:
            cg = importlib.import_module("torch.nn.utils.clip_grad")
            for n in _CLIPPING:
                fn = real_getattr(cg, n, None)
                if callable(fn) and not isinstance(fn, _Blocked):
                    wanted.setdefault(id(fn), guard(f"torch.nn.utils.{n}", fn))
        except Exception:
            pass
    # every module that exposes one of them (torch.lstm_cell, torch._decomp..., torch.nn.utils.clip_grad...):
    # from the zygote's index (``_block_prepare``) where it made one, else by a scan
    if _EXPOSED is not None and all(i in _EXPOSED for i in wanted):
        for i, g in wanted.items():
            for d, k in _EXPOSED[i]:
                if id(d.get(k)) == i:
                    d[k] = g
    else:
        for d, k in _exposures(set(wanted)):
            d[k] = wanted[id(d[k])]
    if not wanted and not installed:
        return  # nothing is guarded (a numpy notebook: its FORBIDDEN is the syntax check's alone)

    # 3. the ways around the guards: getattr/vars with computed names, frames, the heap, ctypes, pickles
    # Refused to student code itself (the caller), never to the libraries it calls: functools.wraps
    # reads __dict__, inspect reads __code__ (torch.no_grad() as a decorator).
    def checked_getattr(obj, name, *default):
        if real_isinstance(name, str) and name in _ESCAPES and _caller_untrusted():
            raise PermissionError(f"getattr(..., {name!r}) is not allowed in this exercise")
        return real_getattr(obj, name, *default)

    def checked_vars(*obj):
        if not obj:  # vars() is the caller's locals
            return getframe(1).f_locals
        d = real_vars(*obj)
        if obj and _caller_untrusted():
            return {k: v for k, v in d.items() if k not in _ESCAPES and not real_isinstance(v, _Blocked)}
        return d

    builtins.getattr, builtins.vars = checked_getattr, checked_vars

    def audit(event, args):
        if busy[0]:
            return
        refuse = event in ("gc.get_objects", "gc.get_referents", "gc.get_referrers")
        if not refuse and event.startswith(_AUDIT_REFUSED):
            refuse = untrusted_on_stack(2)
        elif not refuse and (event == "sys._getframe" or event == "object.__getattr__" and len(args) > 1
                             and args[1] in _AUDIT_FRAMES):
            refuse = _caller_untrusted()
        if refuse:
            what = f"reading .{args[1]}" if event == "object.__getattr__" else event
            raise PermissionError(f"{what} is not allowed in this exercise")

    def _caller_untrusted():
        was, busy[0] = busy[0], True
        try:
            return foreign(getframe(2))
        finally:
            busy[0] = was

    sys.addaudithook(audit)


# ------------------------------------------------------------------------ entering the child
def _enter_namespaces(job: dict) -> str:
    """In the freshly forked child: new namespaces, private /tmp. Returns the isolation it got."""
    mode = job.get("ns_mode", "none")
    if mode in ("none", "uid"):
        return mode
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
    if mode == "user":
        flags |= CLONE_NEWUSER
    _check(_libc.unshare(flags), "unshare")
    if mode == "user":
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    for original, public in job.get("held_out", []):  # without bubblewrap: the public part, in this namespace
        _mount(public, original, None, MS_BIND, None)  # (before /tmp, where the public part lies, is hidden)
        _mount("none", original, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    # Paths under /tmp that the interpreter needs (a course cloned under /tmp: its .venv) stay visible,
    # read-only, on top of the child's fresh /tmp: held by descriptor across the new mount.
    keep = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in job.get("keep", [])
            if (p + "/").startswith("/tmp/") and os.path.isdir(p)]
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={job.get('tmp_mb', 256)}m,mode=1777")
    for path, fd in keep:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        try:
            _mount("none", path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
        except OSError:
            pass  # already read-only and locked so (bubblewrap's bind)
        os.close(fd)
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    return mode


def _become_student(job: dict, mode: str) -> None:
    """PID 1 of the child's namespace: its own /proc, its own uid, no capabilities, limits."""
    import resource

    if mode == "root":
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV, None)
    if mode in ("root", "uid"):
        uid = int(job["uid"])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # a fresh uid: no capabilities left, nothing of root's readable
    if mode != "none":
        try:
            _drop_capabilities()
        except OSError:
            pass
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no sibling may read this process's memory
    lim = job.get("limits", {})
    mem = lim.get("memory_bytes")
    if mem:  # address space relative to what is already mapped (torch maps a lot up front)
        vm = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    vm = int(line.split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + mem, vm + mem))
    nproc = lim.get("processes")
    if nproc:
        # RLIMIT_NPROC counts the processes of a real uid: a fresh uid starts at zero; a shared one
        # (no root) already has some, so count them from here.
        base = 0 if mode in ("root", "uid") else sum(1 for p in os.listdir("/proc") if p.isdigit())
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc + base, nproc + base))
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = lim.get("file_bytes")
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


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


def _probe_mode(wanted: str) -> str:
    """The strongest per-child isolation this kernel grants here: root, user or none."""
    order = {"root": ["root", "user", "uid", "none"], "user": ["user", "none"]}.get(wanted, ["none"])
    for mode in order:
        if mode == "none":
            return mode
        if mode == "uid":  # root without namespaces (a container): a fresh uid per child, if setuid works
            if _can_setuid():
                return mode
            continue
        pid = os.fork()
        if pid == 0:
            try:
                os.closerange(3, 4096)
                _enter_namespaces({"ns_mode": mode})
                p2 = os.fork()
                if p2 == 0:
                    if mode == "root":
                        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV, None)
                        os.setgid(65534)
                        os.setuid(65534)
                    os._exit(0)
                _, st = os.waitpid(p2, 0)
                os._exit(0 if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0 else 1)
            except BaseException:
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
            return mode
    return "none"


def _can_setuid() -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os._exit(0 if os.getuid() == 65534 else 1)
        except BaseException:
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    return os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0


# ------------------------------------------------------- a fresh uid without namespaces ("uid")
def _private_home(uid: int) -> str:
    """/tmp/autograder-u<uid>: made by root (still), owned by the child's uid, mode 0700."""
    path = f"/tmp/autograder-u{uid}"
    reaper.remove_tree(path)
    os.mkdir(path, 0o700)
    os.chown(path, uid, uid)
    return path


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


_REAPED: list[int] = []  # pids reaped during a sweep: their "exited" events are sent by the main loop


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
    children: dict[int, int] = {}  # intermediate pid -> request id
    ns_init: dict[int, int] = {}  # request id -> pid to kill (PID 1 of the child's namespace)
    uids: dict[int, int] = {}  # request id -> the child's uid (swept at its end in "uid" mode)
    mem_limits: dict[int, int] = {}  # request id -> bytes its processes may hold together
    over: dict[int, str] = {}  # request id -> why the zygote ended it

    def flush_reaped():  # children a sweep reaped: their "exited" events
        for p in list(_REAPED):
            _REAPED.remove(p)
            exited(p, 9)

    def exited(pid, st):
        rid = children.pop(pid, None)
        if rid is not None:
            ns_init.pop(rid, None)
            mem_limits.pop(rid, None)
            how = over.pop(rid, None) or (f"exit code {os.WEXITSTATUS(st)}" if os.WIFEXITED(st)
                                          else f"signal {signal.Signals(os.WTERMSIG(st)).name}")
            ctl.send(json.dumps({"ev": "exited", "id": rid, "status": how}).encode())
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    ctl.send(json.dumps({"ev": "ready", "ns_mode": ns_mode}).encode())
    while True:
        ready, _, _ = select.select([ctl, wake_r], [], [], MEMORY_TICK if ns_init else None)
        if ns_init:  # one notebook's processes together may not hold more than its memory limit
            for rid, pid, used, limit in _over_memory(ns_init, uids, mem_limits):
                _kill(pid)
                if ns_mode == "uid":
                    reaper.sweep_uid(uids.get(rid, 0), reaped=_REAPED)
                over[rid] = (f"the memory limit: the notebook's processes held {used >> 20} MiB together "
                             f"(limit {limit >> 20} MiB)")
                flush_reaped()
        if wake_r in ready:
            os.read(wake_r, 4096)
        while True:  # reap every child that ended
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            exited(pid, st)
        if ctl not in ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 65536, 1)
        except OSError:
            msg, fds = b"", []
        if not msg:
            for pid in list(ns_init.values()):
                _kill(pid)
            if ns_mode == "uid":
                for uid in uids.values():
                    reaper.sweep_uid(uid)
            os._exit(0)
        req = json.loads(msg)
        if req["op"] == "spawn":
            rid = req["id"]
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    ctl.close()
                    os.close(r)
                    os.close(wake_r)
                    os.close(wake_w)
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    job = dict(req["job"], ns_mode=ns_mode, _pid_pipe=w, keep=list(keep), held_out=held_out)
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
            children[pid] = rid
            uids[rid] = int(req["job"]["uid"])
            if req["job"].get("limits", {}).get("memory_bytes"):
                mem_limits[rid] = int(req["job"]["limits"]["memory_bytes"])
            ns_init[rid] = int(got) if got.strip().isdigit() else pid
            ctl.send(json.dumps({"ev": "spawned", "id": rid}).encode())
        elif req["op"] == "kill":
            pid = ns_init.get(req["id"])
            if pid is not None:
                _kill(pid)
                for ipid, rid in children.items():  # the waiting parent too, in case it lingers
                    if rid == req["id"]:
                        _kill(ipid)
            if ns_mode == "uid":
                # No PID namespace holds the child's processes: every process of its uid is killed and
                # reaped, and its files deleted, before the trusted side accepts the notebook's results.
                uid = uids.pop(req["id"], None)
                ok = reaper.sweep_uid(uid, reaped=_REAPED) if uid is not None else True
                flush_reaped()
                ctl.send(json.dumps({"ev": "swept", "id": req["id"], "ok": ok}).encode())


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


if __name__ == "__main__":
    zygote_main(int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else (),
                json.loads(sys.argv[4]) if len(sys.argv) > 4 else ())
