"""The per-notebook child, once it is the student's: runs the notebook's cells and serves the trusted
side's requests, one at a time, on its data channel. Everything it sends back is plain data or a handle
(``codec``); everything it receives was checked by the trusted side to be plain data (no code)."""
from __future__ import annotations

import io
import os
import sys
import traceback

from . import leaves
from .variants import Variants
from .codec import Handles, Kept, decode, encode, keep_parts
from .guards import _block
from .wire import FrameReader, bytes_to_array, send_frame

class _Missing(Exception):
    pass


class _StandInError(Exception):
    pass


_ABSENT = object()


class _Child:
    """Runs inside the child: executes cells and serves the trusted side's requests, one at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = FrameReader()
        self.ns = {"__name__": "__main__", "__builtins__": __builtins__}
        self.handles = Handles()
        self.variants = Variants()  # the cells' texts, for one-edit variants of their functions
        self.current_id = None  # the id of the request being served (stand-in calls carry it)
        self.set_up = False

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
                tree = encode(value, out, self.handles)
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
            self.variants.restore(self.ns)  # a binding (op_bind) never outlives the test that made it
            _seed(req["seed"])
        if op == "setup":  # always the first request, before any student code (see zygote._child_main)
            if self.set_up:
                raise ValueError("set up twice")
            _block(req.get("block", []))
            _seed(req.get("seed", 0))
            self.set_up = True
            return None
        if not self.set_up:
            raise ValueError("not set up")
        serve = self.OPS.get(op)
        if serve is None:
            raise ValueError(f"unknown request {op!r}")
        return serve(self, req, blobs)

    # -- the operations (the trusted side's ``engine.ALLOWED_OPS``), one method each
    def op_run_cell(self, req, blobs):
        i, src = req["i"], req["src"]
        name = f"<cell {i + 1}>" if i >= 0 else "<read-only cell>"
        text = _strip_magics(src)
        import linecache  # so that tracebacks can quote the student's line

        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        self.variants.keep_cell(name, text)
        exec(compile(text, name, "exec"), self.ns)

    def op_seed(self, req, blobs):
        return None

    def op_exists(self, req, blobs):
        return [callable(self.ns.get(n)) for n in req["names"]]

    def op_call(self, req, blobs):
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
        args = decode(req["args"], blobs, self.handles)
        kwargs = decode(req["kwargs"], blobs, self.handles)
        saved = self.install_stand_ins(req.get("stand_ins") or [])
        try:
            value = fn(*args, **kwargs)
        finally:
            for name, old in saved.items():
                if old is _ABSENT:
                    self.ns.pop(name, None)
                else:
                    self.ns[name] = old
        value = keep_parts(value, req.get("keep"))
        if req.get("return_args"):
            return (value, args, kwargs)
        return value

    def op_forwarder(self, req, blobs):
        # A function of the trusted side that student code may call: a plain forwarder (below).
        return Kept(self.make_stand_in(str(req["name"])[:100]))

    def op_getattr(self, req, blobs):
        return getattr(self.handles[req["h"]], req["attr"])

    def op_backward(self, req, blobs):
        import torch

        tensors = [self.handles[h] for h in req["handles"]]
        grads = [torch.from_numpy(bytes_to_array(blobs[i]).copy()).to(t.device)
                 for i, t in zip(req["grads"], tensors)]
        torch.autograd.backward(tensors, grads)

    def op_param_grads(self, req, blobs):
        m = self.handles[req["h"]]
        return {n: p.grad for n, p in m.named_parameters()}

    def op_module_types(self, req, blobs):
        return [f"{type(m).__module__}.{type(m).__qualname__}" for m in self.handles[req["h"]].modules()]

    def op_leaves(self, req, blobs):  # cache repair (testkit/repair.py): a kept value's float leaves
        return leaves.leaves(self.handles[req["h"]])

    def op_put_leaves(self, req, blobs):  # ... and plain values from the trusted side put in at those paths
        paths, values = decode(req["args"], blobs, self.handles)
        root = self.handles[req["h"]]
        for path, value in zip(paths, values):
            root = leaves.put(root, list(path), value)
        self.handles[req["h"]] = root

    def op_variant(self, req, blobs):  # cache repair's last resort (testkit/corrected.py): a name and an index
        name = str(req["name"])[:100]
        if req.get("k") is None:  # how many one-edit variants of the notebook's own ``name`` there are
            return self.variants.count(self.ns, name)
        return Kept(self.variants.make(self.ns, name, int(req["k"])))  # its edit number k, as a new function

    def op_bind(self, req, blobs):  # a sequence module judged over a corrected cell (testkit/corrected_modules.py)
        self.variants.restore(self.ns)  # k None: the notebook's own function back
        if req.get("k") is not None:  # edit k of ``name``'s catalogue bound in place of the function it edits
            self.variants.bind(self.ns, str(req["name"])[:100], int(req["k"]))

    def op_release(self, req, blobs):
        for h in req["handles"]:
            self.handles.pop(h, None)

    OPS = {"run_cell": op_run_cell, "seed": op_seed, "exists": op_exists, "call": op_call,
           "forwarder": op_forwarder, "getattr": op_getattr, "backward": op_backward,
           "param_grads": op_param_grads, "module_types": op_module_types, "leaves": op_leaves,
           "put_leaves": op_put_leaves, "variant": op_variant, "bind": op_bind,
           "release": op_release}

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
                tree = {"args": encode(tuple(args), blobs, child.handles),
                        "kwargs": encode(dict(kwargs), blobs, child.handles)}
            except Exception as e:
                raise TypeError(f"{name}: arguments that cannot be passed ({e})") from None
            child.send({"cb": name, "re": child.current_id, **tree}, blobs)
            reply, rblobs = child.recv()
            if reply.get("cb_reply") != name:
                raise RuntimeError(f"{name}: no answer from the grader")
            if not reply.get("ok"):
                raise _StandInError(reply.get("error", f"{name} could not take these arguments"))
            return decode(reply["value"], rblobs, child.handles)

        stand_in.__name__ = stand_in.__qualname__ = name
        stand_in.__doc__ = f"The grader's {name}, standing in for yours while another function is tested."
        return stand_in


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

