"""Hidden tests for solutions/ch01_gradients/gradients_torch.ipynb (book: ch01_gradients)."""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.core.api import Fail, RemoteTensor, check_array, check_type, graded, tensor
from autograder.testkit.shapes import shapes
from autograder.testkit.torchref import vjp
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml


REFS = {"TanhFunction": torch.tanh, "SigmoidFunction": torch.sigmoid, "AffineFunction": F.linear}
TORCH_DTYPE = {np.float32: "torch.float32", np.float64: "torch.float64"}


def _inputs(rng, name, dtype):
    if name == "AffineFunction":
        N, D, M = shapes(rng)
        return [rng.standard_normal(s).astype(dtype) for s in ((N, D), (M, D), (M,))]
    return [(2 * rng.standard_normal((4, 3))).astype(dtype)]


def _apply(sub, name, arrays, requires_grad=True):
    y, args, _ = sub.call_with_args(f"{name}.apply", *[tensor(a, requires_grad) for a in arrays])
    check_type(y, RemoteTensor, f"{name}.apply(...)")
    return y, args


def _forward(sub, rng, name, dtype):
    arrays = _inputs(rng, name, dtype)
    y, _ = _apply(sub, name, arrays)
    ref = REFS[name](*[torch.tensor(a) for a in arrays]).numpy()
    check_array(y, ref, f"{name}.apply output ({np.dtype(dtype).name})")
    if y.dtype != TORCH_DTYPE[dtype]:
        raise Fail(f"{name}: output dtype {y.dtype}, expected {TORCH_DTYPE[dtype]}")


def _backward(sub, rng, name, dtype):
    arrays = _inputs(rng, name, dtype)
    y, args = _apply(sub, name, arrays)
    grad_fn = sub.getattr(y, "grad_fn")
    if grad_fn is None or getattr(grad_fn, "type", "") != f"{name}Backward":
        raise Fail(f"{name}.apply's output should come from your Function (grad_fn {name}Backward), "
                   f"got {getattr(grad_fn, 'type', None)}")
    dy = rng.standard_normal(y.shape).astype(dtype)
    sub.backward([y], [dy])
    _, refs = vjp(REFS[name], arrays, dy)
    labels = ("dx", "dW", "db") if name == "AffineFunction" else ("dx",)
    for label, arg, ref in zip(labels, args, refs):
        g = sub.getattr(arg, "grad")
        if g is None:
            raise Fail(f"{name}.backward returned no gradient for {label}")
        check_array(g, ref.astype(dtype), f"{name}.backward {label} ({np.dtype(dtype).name})")
    if name == "AffineFunction":  # backward's own return values: autograd would sum a broadcast db
        _raw_backward(sub, name, arrays, labels, dtype)


def _raw_backward(sub, name, arrays, labels, dtype):
    """What backward itself returns, before autograd reduces a broadcast gradient to its input's shape."""
    y, _ = _apply(sub, name, arrays)
    dy = np.ones(y.shape, dtype=dtype)
    raw = sub.method(sub.getattr(y, "grad_fn"), "apply", tensor(dy))
    raw = raw if isinstance(raw, (tuple, list)) else (raw,)
    _, refs = vjp(REFS[name], arrays, dy)
    for label, got, ref in zip(labels, raw, refs):
        if not isinstance(got, RemoteTensor):
            raise Fail(f"{name}.backward should return a tensor for {label}, got {type(got).__name__}")
        if tuple(got.shape) != ref.shape:
            hint = " (sum the upstream gradient over the batch: db = dy.sum(0))" if label == "db" else ""
            raise Fail(f"{name}.backward returns {label} of shape {tuple(got.shape)}, expected {ref.shape}, "
                       f"the shape of its input{hint}; autograd hides this by summing, but the Function "
                       "must return the gradient of each input itself")
        check_array(got, ref.astype(dtype), f"{name}.backward's own return value {label} ({np.dtype(dtype).name})")


@graded("TanhFunction", points=1)
def test_TanhFunction_forward(sub, rng):
    _forward(sub, rng, "TanhFunction", np.float64)


@graded("TanhFunction", points=2)
def test_TanhFunction_backward(sub, rng):
    _backward(sub, rng, "TanhFunction", np.float64)


@graded("TanhFunction", points=1)
def test_TanhFunction_float32(sub, rng):
    _forward(sub, rng, "TanhFunction", np.float32)
    _backward(sub, rng, "TanhFunction", np.float32)


@graded("SigmoidFunction", points=1)
def test_SigmoidFunction_forward(sub, rng):
    _forward(sub, rng, "SigmoidFunction", np.float64)


@graded("SigmoidFunction", points=2)
def test_SigmoidFunction_backward(sub, rng):
    _backward(sub, rng, "SigmoidFunction", np.float64)


@graded("SigmoidFunction", points=1)
def test_SigmoidFunction_float32(sub, rng):
    _forward(sub, rng, "SigmoidFunction", np.float32)
    _backward(sub, rng, "SigmoidFunction", np.float32)


@graded("AffineFunction", points=1)
def test_AffineFunction_forward(sub, rng):
    _forward(sub, rng, "AffineFunction", np.float64)


@graded("AffineFunction", points=3)
def test_AffineFunction_backward(sub, rng):
    _backward(sub, rng, "AffineFunction", np.float64)


@graded("AffineFunction", points=1)
def test_AffineFunction_float32(sub, rng):
    _forward(sub, rng, "AffineFunction", np.float32)
    _backward(sub, rng, "AffineFunction", np.float32)
