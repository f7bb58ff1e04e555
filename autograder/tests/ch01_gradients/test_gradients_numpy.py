"""Hidden tests for solutions/ch01_gradients/gradients_numpy.ipynb (book: ch01_gradients)."""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.core.api import Fail, check_array, check_scalar, check_unmodified, graded, unpack
from autograder.testkit.shapes import shapes
from autograder.testkit.torchref import value_and_grads, vjp
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference.steps import LAYERS
from autograder.core.api import StepFallback
from autograder.core.engine import Missing, StudentError
from autograder.testkit.compose import either
from autograder.sandbox.wire import ProtocolError

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

# A non-separable probe: a checker that forgets to restore x[i] gets every later entry wrong. It runs
# here, on the trusted side: the student's numerical_gradient calls a forwarder (``sub.callback``).
def probe(x):
    x = np.asarray(x, dtype=np.float64)
    A = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    return float(np.sum(A * x) ** 2 + np.sum(np.sin(x)))


def cube_sum(x):
    return float(np.sum(np.asarray(x, dtype=np.float64) ** 3))


def probe_grad(x):
    A = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    return 2 * np.sum(A * x) * A + np.cos(x)


# ------------------------------------------------------------------ numerical_gradient
@graded("numerical_gradient", points=2)
def test_numerical_gradient_values(sub, rng):
    f = sub.callback(probe, "f")
    x = rng.standard_normal((3, 4))
    g = sub.call("numerical_gradient", f, x)
    check_array(g, probe_grad(x), "numerical_gradient(f, x)", rtol=1e-6, atol=1e-7, dtype=False)


@graded("numerical_gradient", points=1)
def test_numerical_gradient_central_step(sub, rng):
    # For sum(x**3) the central difference with step h is exactly 3x^2 + h^2; a forward
    # difference gives 3x^2 + 3xh + h^2, and ignoring h gives 3x^2 + 1e-10.
    f = sub.callback(cube_sum, "f")
    x = rng.standard_normal(5)
    h = 1e-2
    g = sub.call("numerical_gradient", f, x, h)
    check_array(g, 3 * x ** 2 + h ** 2, "numerical_gradient(f, x, h=1e-2) (central differences, honouring h)",
                rtol=1e-7, atol=1e-9, dtype=False)


@graded("numerical_gradient", points=1)
def test_numerical_gradient_restores_input(sub, rng):
    f = sub.callback(probe, "f")
    x = rng.standard_normal((2, 3))
    _, args, _ = sub.call_with_args("numerical_gradient", f, x.copy())
    check_unmodified({"x": x}, {"x": args[1]}, "numerical_gradient")


@graded("numerical_gradient", points=1)
def test_numerical_gradient_shapes(sub, rng):
    f = sub.callback(probe, "f")
    for shape in [(4,), (2, 1, 3)]:
        x = rng.standard_normal(shape)
        g = sub.call("numerical_gradient", f, x)
        check_array(g, probe_grad(x), f"numerical_gradient for x of shape {shape}", rtol=1e-6, atol=1e-7,
                    dtype=False)


# ---------------------------------------------------------------------- relative_error
@graded("relative_error", points=1)
def test_relative_error_values(sub, rng):
    a = rng.standard_normal((3, 4))
    b = a + 1e-3 * rng.standard_normal((3, 4))
    expected = float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
    check_scalar(sub.call("relative_error", a, b), expected, "relative_error(a, b)", rtol=1e-9)


@graded("relative_error", points=1)
def test_relative_error_zeros(sub, rng):
    check_scalar(sub.call("relative_error", np.zeros(3), np.zeros(3)), 0.0, "relative_error of two zero arrays")
    check_scalar(sub.call("relative_error", np.zeros(2), np.ones(2)), 1.0, "relative_error(zeros, ones)")


# -------------------------------------------------------------------------- affine
def _affine_inputs(rng, dtype=np.float64, N=None):
    n, D, M = shapes(rng)
    N = N or n
    return (rng.standard_normal((N, D)).astype(dtype), rng.standard_normal((M, D)).astype(dtype),
            rng.standard_normal(M).astype(dtype))


@graded("affine_forward", points=2)
def test_affine_forward_parity(sub, rng):
    for N in (None, 1):
        x, W, b = _affine_inputs(rng, N=N)
        out, _ = unpack(sub.call("affine_forward", x, W, b), 2, "affine_forward")
        ref = F.linear(torch.tensor(x), torch.tensor(W), torch.tensor(b)).numpy()
        check_array(out, ref, f"affine_forward out for x {x.shape}, W {W.shape} (W is (M, D): out = x @ W.T + b)")


@graded("affine_forward", points=1)
def test_affine_forward_float32_unmodified(sub, rng):
    x, W, b = _affine_inputs(rng, np.float32)
    (out, _), args, _ = sub.call_with_args("affine_forward", x.copy(), W.copy(), b.copy())
    ref = F.linear(torch.tensor(x), torch.tensor(W), torch.tensor(b)).numpy()
    check_array(out, ref, "affine_forward out (float32 inputs)")
    check_unmodified({"x": x, "W": W, "b": b}, dict(zip("xWb", args)), "affine_forward")


def _affine_refs(x, W, b):
    """The correct affine_forward's values a cache may hold (testkit/repair.py's names)."""
    return {"x": x, "W": W, "b": b, "out": x @ W.T + b, "N": x.shape[0], "D": x.shape[1], "M": W.shape[0]}


def _affine_cache(sub, x, W, b):
    """The cache of the student's own affine_forward; when it raises, one laid out by a one-edit correction
    of it (testkit/corrected.py: probes of the same shapes, and the other float dtype), or its error."""
    from autograder.testkit import corrected, repair

    try:
        return unpack(sub.call("affine_forward", x, W, b), 2, "affine_forward")[1], ""
    except StudentError as first:
        prng = np.random.default_rng(1)
        other = np.float32 if x.dtype == np.float64 else np.float64
        probes = [tuple(prng.standard_normal(a.shape).astype(t) for a in (x, W, b)) for t in (x.dtype, other)]
        cache = corrected.corrected_cache(sub, "affine_forward", 1, 2, (x, W, b), _affine_refs, {0: "out"},
                                          probes) if repair.worth_probing(first) else None
        if cache is None:
            raise first from None
        return cache, corrected.note("affine_forward")


def _noted(note, check, *args, **kwargs):
    try:
        check(*args, **kwargs)
    except Fail as e:
        raise Fail(str(e) + note) from None


@graded("affine_backward", points=3)
def test_affine_backward_parity(sub, rng):
    for N in (None, 1):
        x, W, b = _affine_inputs(rng, N=N)
        dout = rng.standard_normal((x.shape[0], W.shape[0]))
        cache, note = _affine_cache(sub, x, W, b)
        dx, dW, db = unpack(sub.call("affine_backward", dout, cache), 3, "affine_backward")
        _, (rx, rW, rb) = vjp(F.linear, [x, W, b], dout)
        _noted(note, check_array, dx, rx, "affine_backward dx")
        _noted(note, check_array, dW, rW, "affine_backward dW (shape (M, D), like W)")
        _noted(note, check_array, db, rb, "affine_backward db (summed over the batch)")


@graded("affine_backward", points=1)
def test_affine_backward_float32(sub, rng):
    x, W, b = _affine_inputs(rng, np.float32)
    dout = rng.standard_normal((x.shape[0], W.shape[0])).astype(np.float32)
    cache, note = _affine_cache(sub, x, W, b)
    grads = unpack(sub.call("affine_backward", dout, cache), 3, "affine_backward")
    _, refs = vjp(F.linear, [x, W, b], dout)
    for name, g, r in zip(("dx", "dW", "db"), grads, refs):
        _noted(note, check_array, g, r.astype(np.float32), f"affine_backward {name} (float32 inputs)")


# ------------------------------------------------------------------ tanh and sigmoid
NONLIN = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}


def _forward_check(sub, rng, name, dtype):
    x = (2 * rng.standard_normal((3, 5))).astype(dtype)
    (out, _), args, _ = sub.call_with_args(f"{name}_forward", x.copy())
    check_array(out, NONLIN[name](torch.tensor(x)).numpy(), f"{name}_forward out ({np.dtype(dtype).name})")
    check_unmodified({"x": x}, {"x": args[0]}, f"{name}_forward")


def _backward_check(sub, rng, name, dtype):
    x = (2 * rng.standard_normal((4, 3))).astype(dtype)
    dout = rng.standard_normal((4, 3)).astype(dtype)
    out, cache = unpack(sub.call_keep(f"{name}_forward", (1,), x), 2, f"{name}_forward")
    dx = sub.call(f"{name}_backward", dout, cache)
    _, (ref,) = vjp(NONLIN[name], [x], dout)
    what = f"{name}_backward dx ({np.dtype(dtype).name}); the local derivative is written in terms of the forward's output"
    if isinstance(out, np.ndarray) and out.shape == x.shape and not np.allclose(out, NONLIN_NP[name](x), rtol=1e-3):
        # the student's forward is wrong (its own tests say so): also accept the exact derivative given
        # the output their forward returned, so that the forward's mistake costs nothing here
        o = out.astype(np.float64)
        given = dout * (1 - o ** 2) if name == "tanh" else dout * o * (1 - o)
        either(lambda: check_array(dx, ref.astype(dtype), what),
               lambda: check_array(dx, given.astype(dtype), what + " (given your forward's output)"))
        return
    check_array(dx, ref.astype(dtype), what)


NONLIN_NP = {"tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-np.asarray(v, np.float64)))}


@graded("tanh_forward", points=1)
def test_tanh_forward_parity(sub, rng):
    _forward_check(sub, rng, "tanh", np.float64)


@graded("tanh_forward", points=1)
def test_tanh_forward_float32(sub, rng):
    _forward_check(sub, rng, "tanh", np.float32)


@graded("tanh_backward", points=2)
def test_tanh_backward_parity(sub, rng):
    _backward_check(sub, rng, "tanh", np.float64)


@graded("tanh_backward", points=1)
def test_tanh_backward_float32(sub, rng):
    _backward_check(sub, rng, "tanh", np.float32)


@graded("sigmoid_forward", points=1)
def test_sigmoid_forward_parity(sub, rng):
    _forward_check(sub, rng, "sigmoid", np.float64)


@graded("sigmoid_forward", points=1)
def test_sigmoid_forward_float32(sub, rng):
    _forward_check(sub, rng, "sigmoid", np.float32)


@graded("sigmoid_forward", points=1)
def test_sigmoid_forward_stable(sub, rng):
    x = np.array([[-800.0, -30.0, 0.0, 30.0, 800.0]])
    out, _ = unpack(sub.call("sigmoid_forward", x), 2, "sigmoid_forward")
    check_array(out, torch.sigmoid(torch.tensor(x)).numpy(), "sigmoid_forward for |x| up to 800 "
                "(compute exp of a non-positive number only)")


@graded("sigmoid_backward", points=2)
def test_sigmoid_backward_parity(sub, rng):
    _backward_check(sub, rng, "sigmoid", np.float64)


@graded("sigmoid_backward", points=1)
def test_sigmoid_backward_float32(sub, rng):
    _backward_check(sub, rng, "sigmoid", np.float32)


# ---------------------------------------------------------------------- two_layer_net
# Fair credit by composition: two_layer_net is judged against the course's composition of the
# student's OWN layers (affine/tanh forward and backward, caches kept in their process), or the
# trusted reference; a layer's mistake costs points on that layer only. The trusted layers (LAYERS)
# are a fallback, used only when a student layer raises or is missing.
def _net(rng, N, D, H, C):
    shapes_ = {"W1": (H, D), "b1": (H,), "W2": (C, H), "b2": (C,)}
    params = {k: rng.standard_normal(v) for k, v in shapes_.items()}
    return rng.standard_normal((N, D)), rng.standard_normal((N, C)), params


def _net_ref(x, y, params):
    xt, yt = torch.tensor(x), torch.tensor(y)

    def loss(W1, b1, W2, b2):
        scores = F.linear(torch.tanh(F.linear(xt, W1, b1)), W2, b2)
        return ((scores - yt) ** 2).sum() / (2 * x.shape[0])

    return value_and_grads(loss, params)


def _layer(sub, name, keep, *args):
    local = (getattr(sub, "_stand_ins", None) or {}).get(name)
    if local is not None:  # the fallback run: the trusted layer, here
        return local(*args)
    try:
        return sub.call_keep(name, keep, *args) if keep is not None else sub.call(name, *args)
    except (Missing, StudentError, ProtocolError) as e:
        raise StepFallback(f"your {name} raised or is missing ({e})") from None


def _net_composed(sub, x, y, params):
    """The course's two_layer_net over the student's own layers: (loss, grads)."""
    N = x.shape[0]
    try:
        a, c1 = _layer(sub, "affine_forward", (1,), x, params["W1"], params["b1"])
        h, ct = _layer(sub, "tanh_forward", (1,), a)
        scores, c2 = _layer(sub, "affine_forward", (1,), h, params["W2"], params["b2"])
        diff = scores - y
        loss = float(np.sum(diff ** 2) / (2 * N))
        dh, dW2, db2 = _layer(sub, "affine_backward", None, diff / N, c2)
        da = _layer(sub, "tanh_backward", None, dh, ct)
        _, dW1, db1 = _layer(sub, "affine_backward", None, da, c1)
        grads = {"W1": np.asarray(dW1), "b1": np.asarray(db1), "W2": np.asarray(dW2), "b2": np.asarray(db2)}
        if not (np.any(scores) and any(np.any(g) for g in grads.values())):
            raise StepFallback("your layers return only zeros: the trusted layers judge two_layer_net")
        if not (np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())):
            raise StepFallback("your layers return non-finite values: the trusted layers judge two_layer_net")
    except (TypeError, ValueError) as e:  # a layer returned something the composition cannot use
        raise StepFallback(f"a layer returned something unusable ({e})") from None
    return loss, grads


@graded("two_layer_net", points=2, fallback=LAYERS)
def test_two_layer_net_loss(sub, rng):
    x, y, params = _net(rng, 5, 3, 6, 2)
    loss, _ = unpack(sub.call("two_layer_net", x, y, params), 2, "two_layer_net")
    ref, _ = _net_ref(x, y, params)
    composed, _ = _net_composed(sub, x, y, params)
    what = "two_layer_net loss (sum of squares / (2N))"
    either(lambda: check_scalar(loss, composed, what + ("" if np.isclose(composed, ref, rtol=1e-8) else
                                                         " (expected: your layers composed)"), rtol=1e-8),
           lambda: check_scalar(loss, ref, what, rtol=1e-8))


@graded("two_layer_net", points=3, fallback=LAYERS)
def test_two_layer_net_grads(sub, rng):
    for N, D, H, C in [(5, 3, 6, 2), (1, 4, 3, 5)]:
        x, y, params = _net(rng, N, D, H, C)
        (_, grads), args, _ = sub.call_with_args("two_layer_net", x, y, {k: v.copy() for k, v in params.items()})
        _, ref = _net_ref(x, y, params)
        _, composed = _net_composed(sub, x, y, params)
        if not isinstance(grads, dict) or sorted(grads) != sorted(params):
            raise Fail(f"two_layer_net grads must be a dict with keys {sorted(params)}")

        def check(expected, note=""):
            for k in params:
                check_array(grads[k], expected[k], f"two_layer_net grads[{k!r}] (N={N}, D={D}, H={H}, C={C}){note}")

        same = all(np.allclose(composed[k], ref[k], rtol=1e-8, atol=1e-10) for k in params
                   if np.shape(composed[k]) == np.shape(ref[k]))
        either(lambda: check(composed, "" if same else " (expected: your layers' backward passes composed)"),
               lambda: check(ref))
        check_unmodified(params, args[2], "two_layer_net")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("gradients_numpy:together", points=1)
def test_gradients_numpy_together(sub, rng):
    """The whole chain as a training step runs it: two_layer_net over the student's own layers, against
    torch autograd alone (no composition, no trusted layer). Its own graded name (1 point, no answer
    cell): a layer's mistake shows here, not as a loss booked on a two_layer_net that is right."""
    x, y, params = _net(rng, 4, 3, 5, 2)
    loss, grads = unpack(sub.call("two_layer_net", x, y, params), 2, "two_layer_net")
    ref_loss, ref_grads = _net_ref(x, y, params)
    what = "the whole chain (two_layer_net over your affine and tanh layers, N=4, D=3, H=5, C=2) against torch"
    check_scalar(loss, ref_loss, f"{what}: loss", rtol=1e-8)
    if not isinstance(grads, dict) or sorted(grads) != sorted(params):
        raise Fail(f"{what}: grads must be a dict with keys {sorted(params)}")
    for k in params:
        check_array(grads[k], ref_grads[k], f"{what}: grads[{k!r}]")
