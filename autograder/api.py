"""What a hidden test sees: the ``@graded`` decorator, a ``Submission`` proxy, and strict checks.

A hidden test is a plain function in the trusted process::

    @graded("rnn_step_forward", points=2)
    def test_rnn_step_forward_parity(sub, rng):
        h, cache = sub.call("rnn_step_forward", x, h0, params)   # h: a real numpy array
        check_array(h, expected, "h_next")

``sub.call`` sends the arguments to the student's sandboxed process as plain data and returns plain
data: numpy arrays (never subclasses), ``RemoteTensor`` for tensors (values plus dtype, device and
a handle), ``Remote`` handles for anything else (a cache, a module), which can be passed back in a
later call. Expected values are computed here, in the trusted process, and never sent.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .wire import MAX_STRING, ProtocolError, array_to_bytes, bytes_to_array


# ------------------------------------------------------------------------------ registry
@dataclass
class GradedTest:
    name: str
    function: str
    points: float
    fn: Callable
    module: str = ""
    fallback: dict = field(default_factory=dict)  # step name -> trusted step, used only after StepFallback

    @property
    def seed(self) -> int:
        """The same for every student and every run: regrading gives identical scores."""
        return int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "little")


_REGISTRY: list[GradedTest] = []


def registered(module: str) -> list[GradedTest]:
    """The hidden tests that ``module`` registered, in the order it defines them."""
    return [t for t in _REGISTRY if t.module == module]


def graded(function: str, points: float = 1.0, fallback: dict | None = None):
    """Register a hidden test about the graded name ``function``, worth ``points``.

    A sequence function's test composes: it runs the course's loop over the student's OWN step
    functions (``testkit.compose``) and compares. ``fallback={"rnn_step_forward": trusted_fn, ...}``
    declares the trusted steps used only when a student step raises, is missing or returns something
    the loop cannot use (the test raises ``StepFallback``): the runner then reruns the test with those
    names answered by the trusted side (stand-ins: forwarders that send their plain-data arguments
    here, where ``trusted_fn`` runs). No trusted code ever enters the student's process."""

    def deco(fn):
        _REGISTRY.append(GradedTest(fn.__name__, function, float(points), fn, fn.__module__, dict(fallback or {})))
        return fn

    return deco


class StepFallback(Exception):
    """A dependency of the graded name (a student's step function) raised, is missing or returned
    something unusable: rerun the test with the trusted steps of ``graded(..., fallback=...)``."""


class Fail(AssertionError):
    """A check failed; the message is shown to the student."""


# ------------------------------------------------------------------------- remote values
@dataclass(frozen=True)
class Remote:
    """An object that lives in the student's process (a cache, a module...)."""

    handle: int
    type: str


@dataclass(frozen=True)
class RemoteTensor:
    """A torch.Tensor that lives in the student's process, with a copy of its values."""

    array: np.ndarray
    dtype: str
    device: str
    requires_grad: bool
    handle: int
    cls: str = "Tensor"

    @property
    def shape(self):
        return self.array.shape


@dataclass(frozen=True)
class TensorIn:
    """An argument that the student's process receives as a torch.Tensor."""

    array: np.ndarray
    requires_grad: bool = False
    device: str = "cpu"


def tensor(array, requires_grad=False, device="cpu") -> TensorIn:
    return TensorIn(np.asarray(array), requires_grad, device)


class NotPlain:
    """A returned array of a subclass of np.ndarray: never accepted as an answer."""

    def __init__(self, cls, array):
        self.cls, self.array = cls, array

    def __repr__(self):
        return f"<{self.cls} (a subclass of numpy.ndarray)>"


def encode_args(obj, blobs):
    """Trusted values -> a value tree and .npy blobs, for the student's process."""
    if isinstance(obj, np.ndarray):
        blobs.append(array_to_bytes(obj))
        return {"t": "arr", "i": len(blobs) - 1}
    if isinstance(obj, TensorIn):
        blobs.append(array_to_bytes(obj.array))
        return {"t": "tensor_in", "i": len(blobs) - 1, "rg": obj.requires_grad, "device": obj.device}
    if isinstance(obj, (Remote, RemoteTensor)):
        return {"t": "handle", "h": obj.handle}
    if isinstance(obj, (tuple, list)):
        return {"t": type(obj).__name__, "v": [encode_args(v, blobs) for v in obj]}
    if isinstance(obj, dict):
        return {"t": "dict", "k": [str(k) for k in obj], "v": [encode_args(v, blobs) for v in obj.values()]}
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, (bool, np.bool_)):
        return {"t": "bool", "v": bool(obj)}
    if isinstance(obj, (int, np.integer)):
        return {"t": "int", "v": int(obj)}
    if isinstance(obj, (float, np.floating)):
        return {"t": "float", "v": float(obj)}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    raise TypeError(f"cannot send {type(obj).__name__} to the student's process")


def decode_reply(tree, blobs, depth=0):
    """Build trusted Python values from the student's reply. Strict: anything unexpected raises
    ProtocolError (the frame's size and depth were already bounded by ``wire.FrameReader``)."""
    try:
        return _decode(tree, blobs, depth)
    except ProtocolError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ProtocolError(f"a malformed value ({type(e).__name__})") from None


def _decode(tree, blobs, depth=0):
    if depth > 40:
        raise ProtocolError("a value nested too deeply")
    t = tree.get("t") if isinstance(tree, dict) else None
    if t == "arr":
        a = bytes_to_array(blobs[_int(tree["i"])])
        return NotPlain(_text(tree["cls"]), a) if "cls" in tree else a
    if t == "npscalar":
        return bytes_to_array(blobs[_int(tree["i"])])[()]
    if t == "tensor":
        return RemoteTensor(bytes_to_array(blobs[_int(tree["i"])]), _text(tree["dtype"]), _text(tree["device"]),
                            bool(tree["rg"]), _int(tree["h"]), _text(tree.get("cls", "Tensor")))
    if t in ("tuple", "list"):
        if not isinstance(tree["v"], list):
            raise ProtocolError("a malformed sequence")
        vals = [_decode(v, blobs, depth + 1) for v in tree["v"]]
        return tuple(vals) if t == "tuple" else vals
    if t == "dict":
        if not isinstance(tree["k"], list) or not isinstance(tree["v"], list) or len(tree["k"]) != len(tree["v"]):
            raise ProtocolError("a malformed dict")
        return {_text(k): _decode(v, blobs, depth + 1) for k, v in zip(tree["k"], tree["v"])}
    if t == "obj":
        return Remote(_int(tree["h"]), _text(tree["type"]))
    if t == "none":
        return None
    if t == "bool" and isinstance(tree["v"], bool):
        return tree["v"]
    if t == "int" and type(tree["v"]) is int:
        return _int(tree["v"])
    if t == "float" and type(tree["v"]) in (int, float):
        return float(tree["v"])
    if t == "str":
        return _text(tree["v"])
    raise ProtocolError("a malformed value")


def _int(v) -> int:
    if type(v) is not int or not -(2**63) <= v < 2**63:
        raise ProtocolError("a malformed number")
    return v


def _text(v) -> str:
    """A string from the student's side: short, and valid UTF-8 (lone surrogates replaced)."""
    if not isinstance(v, str):
        raise ProtocolError("a malformed string")
    return v[:MAX_STRING].encode("utf-8", "replace").decode("utf-8")


class Submission:
    """The student's notebook as a hidden test sees it. Every method is a remote call."""

    def __init__(self, notebook, call_seconds: float | None = None, stand_ins: dict | None = None):
        self._nb = notebook
        self._seconds = call_seconds
        self._pending_seed = None
        self._stand_ins = dict(stand_ins or {})
        self._callbacks: dict[str, Callable] = {}  # forwarders made by ``callback``: name -> trusted fn
        self.replies = 0  # replies read from the student's process during this test

    def _request(self, msg, blobs=(), what="running your code"):
        if self._pending_seed is not None:
            msg = dict(msg, seed=self._pending_seed)
            self._pending_seed = None
        callbacks = dict(self._callbacks)
        if self._stand_ins and msg.get("op") == "call":
            msg = dict(msg, stand_ins=sorted(self._stand_ins))
            callbacks.update(self._stand_ins)
        out = self._nb.request(msg, blobs, self._seconds, what, callbacks or None)
        self.replies += 1
        return out

    def _req(self, msg, args=(), kwargs=None, what="running your code"):
        blobs: list[bytes] = []
        msg = dict(msg, args=encode_args(tuple(args), blobs), kwargs=encode_args(dict(kwargs or {}), blobs))
        tree, rblobs = self._request(msg, blobs, what)
        return decode_reply(tree, rblobs)

    def call(self, name: str, *args, **kwargs):
        """Call the student's ``name(*args, **kwargs)``."""
        return self._req({"op": "call", "target": {"name": name}}, args, kwargs, f"running {name}")

    def call_with_args(self, name: str, *args, **kwargs):
        """As ``call``, but also returns the arguments as they are afterwards: (value, args, kwargs)."""
        return self._req({"op": "call", "target": {"name": name}, "return_args": True}, args, kwargs,
                         f"running {name}")

    def call_keep(self, name: str, keep, *args, **kwargs):
        """As ``call``, but the returned tuple's items at the indices ``keep`` stay in the student's
        process and come back as ``Remote`` handles (``keep="all"``: the whole value, as one handle).
        ``h, cache = sub.call_keep("rnn_step_forward", (1,), x, h0, p)``: the student's own cache,
        whatever its layout, to pass back to their backward; it never leaves their process."""
        return self._req({"op": "call", "target": {"name": name}, "keep": _keep_spec(keep)}, args, kwargs,
                         f"running {name}")

    def invoke_keep(self, obj, keep, *args, **kwargs):
        """As ``invoke`` (a remote object called), keeping the items ``keep`` remote (see ``call_keep``)."""
        return self._req({"op": "call", "target": {"h": obj.handle}, "keep": _keep_spec(keep)}, args, kwargs,
                         "running forward")

    def callback(self, fn: Callable, name: str = "f") -> Remote:
        """A function the student's code can call (``numerical_gradient(f, x)``'s ``f``): a plain
        forwarder in their process that sends its arguments here, where ``fn`` runs (trusted side),
        and returns ``fn``'s plain-data value. No code of ours enters their process."""
        key = f"{name}#{len(self._callbacks) + 1}"
        self._callbacks[key] = fn
        tree, blobs = self._request({"op": "forwarder", "name": key}, (), "preparing a test function")
        return decode_reply(tree, blobs)

    def release(self, *remotes) -> None:
        """Free handles in the student's process (objects it no longer needs to keep)."""
        hs = [r.handle for r in remotes if isinstance(r, (Remote, RemoteTensor))]
        if hs:
            self._request({"op": "release", "handles": hs}, (), "releasing values")

    def new(self, cls: str, *args, **kwargs):
        return self.call(cls, *args, **kwargs)

    def method(self, obj, method: str, *args, **kwargs):
        """Call ``obj.method(*args, **kwargs)`` on a remote object."""
        return self._req({"op": "call", "target": {"h": obj.handle}, "method": method}, args, kwargs,
                         f"running {obj.type if isinstance(obj, Remote) else 'tensor'}.{method}")

    def invoke(self, obj, *args, **kwargs):
        """Call a remote object: ``obj(*args, **kwargs)`` (a module's forward, say)."""
        return self._req({"op": "call", "target": {"h": obj.handle}}, args, kwargs, "running forward")

    def invoke_with_args(self, obj, *args, **kwargs):
        """As ``invoke``, but also returns the arguments afterwards: (value, args, kwargs)."""
        return self._req({"op": "call", "target": {"h": obj.handle}, "return_args": True}, args, kwargs,
                         "running forward")

    def getattr(self, obj, attr: str):
        return self._req({"op": "getattr", "h": obj.handle, "attr": attr})

    def backward(self, tensors, grads) -> None:
        """torch.autograd.backward(tensors, grads) in the student's process."""
        blobs = [array_to_bytes(np.asarray(g)) for g in grads]
        self._request({"op": "backward", "handles": [t.handle for t in tensors],
                       "grads": list(range(len(blobs)))}, blobs, "running backward")

    def param_grads(self, module) -> dict:
        """{name: RemoteTensor or None} for the ``.grad`` of each of a remote module's parameters."""
        tree, blobs = self._request({"op": "param_grads", "h": module.handle}, (), "reading parameter gradients")
        return decode_reply(tree, blobs)

    def module_types(self, module) -> list:
        """Types of every submodule of a remote nn.Module, e.g. ['__main__.LSTM', 'torch.nn.modules...']."""
        tree, blobs = self._request({"op": "module_types", "h": module.handle}, (), "listing submodules")
        return decode_reply(tree, blobs)

    def leaves(self, obj) -> list:
        """[[path, array or float], ...]: the float leaves of a kept value (a cache), as plain data."""
        tree, blobs = self._request({"op": "leaves", "h": obj.handle}, (), "reading a cache")
        return decode_reply(tree, blobs)

    def put_leaves(self, obj, paths, values) -> None:
        """Put plain values at ``paths`` (from ``leaves``) of a kept value, in the student's process."""
        self._req({"op": "put_leaves", "h": obj.handle}, (list(paths), list(values)), None, "repairing a cache")

    def seed(self, seed: int) -> None:
        """Seed Python, NumPy and torch in the student's process before the test's next call."""
        self._pending_seed = int(seed)


def _keep_spec(keep):
    if keep == "all":
        return "all"
    if isinstance(keep, int):
        keep = (keep,)
    return [int(i) for i in keep]


# ------------------------------------------------------------------------------- checks
def check_type(got, kind, what: str):
    if isinstance(got, NotPlain):
        raise Fail(f"{what}: expected a plain numpy.ndarray, got {got.cls} (a subclass)")
    if kind is np.ndarray and not isinstance(got, np.ndarray):
        raise Fail(f"{what}: expected a numpy.ndarray, got {_describe(got)}")
    if kind is RemoteTensor and not isinstance(got, RemoteTensor):
        raise Fail(f"{what}: expected a torch.Tensor, got {_describe(got)}")


def _describe(x) -> str:
    if isinstance(x, Remote):
        return f"an object of type {x.type}"
    if isinstance(x, RemoteTensor):
        return f"a torch.Tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {x.shape}"
    if isinstance(x, tuple):
        return f"a tuple of {len(x)} items"
    return f"{type(x).__name__} {x!r}"[:200]


def unpack(got, n: int, what: str):
    """Check that a function returned a tuple (or list) of ``n`` items."""
    if not isinstance(got, (tuple, list)) or len(got) != n:
        raise Fail(f"{what} should return a tuple of {n} items, got {_describe(got)}")
    return got


def rel_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|, 1e-8), CS231n's relative error, elementwise then max."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))) if a.size else 0.0


def check_array(got, expected, what: str, rtol: float | None = None, atol: float | None = None,
                dtype=True):
    """Type, shape, dtype and values, with a message that says which entry is off and by how much."""
    expected = np.asarray(expected)
    if isinstance(got, RemoteTensor):
        arr = got.array
    else:
        check_type(got, np.ndarray, what)
        arr = got
    if arr.shape != expected.shape:
        raise Fail(f"{what}: shape {tuple(arr.shape)}, expected {tuple(expected.shape)}")
    if dtype and arr.dtype != expected.dtype:
        raise Fail(f"{what}: dtype {arr.dtype}, expected {expected.dtype} "
                   "(keep the dtype of the inputs: float32 in, float32 out)")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
        raise Fail(f"{what}: dtype {arr.dtype} is not numeric")
    if rtol is None:
        rtol = 1e-5 if expected.dtype == np.float64 else 1e-3
    if atol is None:
        atol = 1e-7 if expected.dtype == np.float64 else 1e-4
    a64 = arr.astype(np.float64)
    e64 = expected.astype(np.float64)
    if not np.all(np.isfinite(a64)) and np.all(np.isfinite(e64)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a64))[0])
        raise Fail(f"{what}: entry {idx} is {a64[idx]}, expected {e64[idx]:.6g}")
    bad = np.abs(a64 - e64) > atol + rtol * np.abs(e64)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        err = np.abs(a64 - e64)
        raise Fail(f"{what}: {int(bad.sum())} of {bad.size} entries differ; e.g. entry {idx} is "
                   f"{a64[idx]:.6g}, expected {e64[idx]:.6g} (max abs error {err.max():.3g})")


def check_scalar(got, expected: float, what: str, rtol=1e-6, atol=1e-9):
    if isinstance(got, (np.ndarray, NotPlain)) and np.shape(getattr(got, "array", got)) == ():
        got = getattr(got, "array", got)[()]
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise Fail(f"{what}: expected a number, got {_describe(got)}")
    if not np.isfinite(float(got)) or abs(float(got) - expected) > atol + rtol * abs(expected):
        raise Fail(f"{what}: got {float(got):.8g}, expected {expected:.8g}")


def check_unmodified(before: dict, after, what: str):
    """``before``: {name: array}; ``after``: the same arguments as returned by call_with_args."""
    for name, b in before.items():
        a = after[name]
        if isinstance(a, dict) and isinstance(b, dict):
            check_unmodified(b, a, f"{what}: {name}")
            continue
        a = a.array if isinstance(a, RemoteTensor) else a
        if not isinstance(a, np.ndarray) or a.shape != b.shape or not np.array_equal(a, b):
            raise Fail(f"{what} modified its input `{name}` in place; work on copies instead")
