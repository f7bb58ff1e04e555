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

from ..sandbox.wire import array_to_bytes


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
from .values import (NotPlain, Remote, RemoteTensor, TensorIn, _int, _text, decode_reply,  # noqa: E402,F401
                     encode_args, tensor)


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

    def variant(self, name: str, k: int | None = None):
        """How many one-edit variants of the notebook's own function ``name`` there are (``k`` None), or
        variant ``k`` as a ``Remote`` function (testkit/corrected.py). Only a name and a number cross."""
        return self._req({"op": "variant", "name": name, "k": k}, (), None, "preparing a cache")

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
