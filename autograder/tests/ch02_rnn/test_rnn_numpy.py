"""Hidden tests for solutions/ch02_rnn/rnn_numpy.ipynb (book: ch02_rnn).

References are torch.nn.RNNCell / torch.nn.RNN in float64 with the same weights (autograd for the
gradients), plus central differences of a trusted NumPy forward. Every shape has D != H, so a
transposed weight cannot pass by accident; N = 1 and T = 1 are covered.
"""
import numpy as np
import torch

from autograder.testkit.shapes import shapes
from autograder.core.api import Fail, check_type, check_unmodified, graded, rel_error, unpack
from autograder.testkit.checks import check_strict, with_hint
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference.steps import RNN_STEPS, rnn_step_intermediates, seq_intermediates
from autograder.testkit import compose, repair
from autograder.testkit import corrected
from autograder.testkit.shapes import probe_inputs
from autograder.core.engine import StudentError

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml
# Fair credit by composition (testkit.compose): rnn_forward / rnn_backward are judged against the
# course's loop over the student's OWN rnn_step_forward / rnn_step_backward (caches kept in their
# process), or the trusted reference; a step's mistake costs points on the step only. The trusted
# steps (RNN_STEPS) are a fallback, used only when a student step raises or is missing.
WORKS_TOGETHER = []

KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# Known mistakes of the backward passes: each hint is printed only when the student's answer matches it.
TANH_VARIANTS = {
    "1 - h_prev**2 (the previous state)": lambda a, h_prev, h_next: 1 - h_prev ** 2,
    "1 - a**2 (the pre-activation)": lambda a, h_prev, h_next: 1 - a ** 2,
    "no derivative at all (da = dh_next)": lambda a, h_prev, h_next: np.ones_like(a),
    "h_next * (1 - h_next) (the sigmoid's derivative)": lambda a, h_prev, h_next: h_next * (1 - h_next),
    "1 - h_next (the output, not squared)": lambda a, h_prev, h_next: 1 - h_next,
}


# ------------------------------------------------------------------------------ helpers
def _dims(rng):
    """Random (N, D, H) with D != H (the course's shared helper)."""
    return shapes(rng, n_max=4)


def _params(rng, D, H, dtype=np.float64, scale=None):
    k = scale if scale is not None else 1.5 / np.sqrt(H)  # a bit larger than torch's: tanh' matters
    layout = {"weight_ih": (H, D), "weight_hh": (H, H), "bias_ih": (H,), "bias_hh": (H,)}
    return {n: rng.uniform(-k, k, s).astype(dtype) for n, s in layout.items()}


def _torch_rnn(params, cell=False):
    H, D = params["weight_ih"].shape
    m = torch.nn.RNNCell(D, H, dtype=torch.float64) if cell else \
        torch.nn.RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        for k in KEYS:
            getattr(m, k if cell else k + "_l0").copy_(torch.tensor(np.asarray(params[k], dtype=np.float64)))
    return m


def ref_step(x, h_prev, params, dh_next=None):
    """h_next (and, with dh_next, the gradients dx, dh_prev, grads) from torch.nn.RNNCell."""
    m = _torch_rnn(params, cell=True)
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    ht = torch.tensor(np.asarray(h_prev, np.float64), requires_grad=True)
    out = m(xt, ht)
    if dh_next is None:
        return out.detach().numpy()
    out.backward(torch.tensor(np.asarray(dh_next, np.float64)))
    return xt.grad.numpy(), ht.grad.numpy(), {k: getattr(m, k).grad.numpy() for k in KEYS}


def ref_seq(x, h0, params, dh=None):
    """h (N, T, H) (and, with dh, the gradients dx, dh0, grads) from torch.nn.RNN(batch_first=True)."""
    m = _torch_rnn(params)
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    ht = torch.tensor(np.asarray(h0, np.float64)[None], requires_grad=True)
    out, _ = m(xt, ht)
    if dh is None:
        return out.detach().numpy()
    out.backward(torch.tensor(np.asarray(dh, np.float64)))
    return xt.grad.numpy(), ht.grad.numpy()[0], {k: getattr(m, k + "_l0").grad.numpy() for k in KEYS}


def _np_seq(x, h0, p):
    """Trusted NumPy forward (float64) for central differences."""
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
        hs.append(h)
    return np.stack(hs, axis=1)


def _numeric(f, x, dout, h=1e-6):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        fp = f(x)
        x[ix] = old - h
        fm = f(x)
        x[ix] = old
        g[ix] = np.sum((fp - fm) * dout) / (2 * h)
    return g


def _check_grads(grads, ref, what, dtype=None, hint=""):
    if not isinstance(grads, dict) or sorted(grads) != sorted(KEYS):
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        raise Fail(f"{what}: grads must be a dict with keys {sorted(KEYS)}, got {got}")
    for k in KEYS:
        r = ref[k] if dtype is None else ref[k].astype(dtype)
        g = grads[k]
        if k.startswith("bias") and isinstance(g, np.ndarray) and g.ndim == 2 and g.shape[1:] == r.shape:
            raise Fail(f"{what} grads[{k!r}]: shape {g.shape}, expected {r.shape}: the bias gradient is not summed "
                       "over the batch (sum da over axis 0)")
        check_strict(g, r, f"{what} grads[{k!r}]{hint}")


def _check_numeric(got, num, what, tol=1e-7):
    check_type(got, np.ndarray, what)
    if got.shape != num.shape:
        raise Fail(f"{what}: shape {got.shape}, expected {num.shape}")
    e = rel_error(got, num)
    if not e < tol:
        raise Fail(f"{what}: relative error {e:.2e} against a numerical gradient (float64; must be below "
                   f"{tol:.0e})")


def _step_inputs(rng, N=None, dtype=np.float64):
    n, D, H = _dims(rng)
    N = N or n
    return (rng.standard_normal((N, D)).astype(dtype), rng.standard_normal((N, H)).astype(dtype),
            _params(rng, D, H, dtype))


def _seq_inputs(rng, N=None, T=None, dtype=np.float64):
    n, D, H = _dims(rng)
    N = N or n
    T = T or int(rng.integers(3, 7))
    return (rng.standard_normal((N, T, D)).astype(dtype), rng.standard_normal((N, H)).astype(dtype),
            _params(rng, D, H, dtype))


def _copy(p):
    return {k: v.copy() for k, v in p.items()}


# -------------------------------------------------------------------- rnn_step_forward
@graded("rnn_step_forward", points=2)
def test_rnn_step_forward_parity(sub, rng):
    for N in (None, None, 1):
        x, h, p = _step_inputs(rng, N)
        h_next, _ = unpack(sub.call("rnn_step_forward", x, h, p), 2, "rnn_step_forward")
        check_strict(h_next, ref_step(x, h, p), f"rnn_step_forward h_next for x {x.shape}, h_prev {h.shape} "
                    "(h_next = tanh(x @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh))")


@graded("rnn_step_forward", points=1)
def test_rnn_step_forward_float32(sub, rng):
    x, h, p = _step_inputs(rng, dtype=np.float32)
    h_next, _ = unpack(sub.call("rnn_step_forward", x, h, p), 2, "rnn_step_forward")
    check_strict(h_next, ref_step(x, h, p).astype(np.float32), "rnn_step_forward h_next (float32 inputs)")


@graded("rnn_step_forward", points=1)
def test_rnn_step_forward_unmodified(sub, rng):
    x, h, p = _step_inputs(rng)
    got, args, _ = sub.call_with_args("rnn_step_forward", x.copy(), h.copy(), _copy(p))
    check_unmodified({"x": x, "h_prev": h, "params": p}, dict(zip(("x", "h_prev", "params"), args)),
                     "rnn_step_forward")
    h_next, _ = unpack(got, 2, "rnn_step_forward")  # and the values: an answer of zeros earns nothing
    check_strict(h_next, ref_step(x, h, p), f"rnn_step_forward h_next for x {x.shape}, h_prev {h.shape}")


# ------------------------------------------------------------------- rnn_step_backward
def _step_backward(sub, x, h, p, dh_next, with_h_next=False):
    """rnn_step_backward on the cache of the student's own rnn_step_forward (kept in their process); when
    that forward raises on these inputs, on a cache built in its own layout, learned on other inputs,
    or laid out by a one-edit correction of it (testkit/repair.py, corrected.py; the h_next given back is
    then None: the reference judges)."""
    h_next, cache = _own_step_cache(sub, x, h, p, lambda c: sub.call("rnn_step_backward", dh_next, c))
    try:
        got = sub.call("rnn_step_backward", dh_next, cache)
    except StudentError as first:
        h_next, cache = None, _corrected_step_cache(sub, x, h, p, h_next, first)
        got = sub.call("rnn_step_backward", dh_next, cache)
    got = unpack(got, 3, "rnn_step_backward")
    return (got, h_next) if with_h_next else got


def _own_step_cache(sub, x, h, p, backward):
    """(h_next or None, cache): the cache of the student's own rnn_step_forward, or, when it raises, one
    built in its layout (learned on probes where ``backward(cache)`` runs) or laid out by a one-edit
    correction of it."""
    try:
        return unpack(sub.call_keep("rnn_step_forward", (1,), x, h, p), 2, "rnn_step_forward")
    except StudentError as first:
        if not repair.worth_probing(first):
            raise
        for cache in repair.probe_caches(sub, "rnn_step_forward", 1, probe_inputs("rnn", x, [h], p),
                                         rnn_step_intermediates, (x, h, p), 2):
            try:
                backward(cache)
            except StudentError:
                continue
            return None, cache
        return None, _corrected_step_cache(sub, x, h, p, None, first)


def _corrected_step_cache(sub, x, h, p, h_next, first):
    """A cache laid out by a one-edit correction of the student's rnn_step_forward, when that forward is
    wrong (``h_next``; None: it raised) and ``first`` (raised) is not the released stub's; else ``first``."""
    right = isinstance(h_next, np.ndarray) and h_next.shape == h.shape and np.allclose(h_next, ref_step(x, h, p))
    fixed = None if right or not repair.worth_probing(first) else corrected.corrected_cache(
        sub, "rnn_step_forward", 1, 2, (x, h, p), rnn_step_intermediates, {0: "h_next"}, probe_inputs("rnn", x, [h], p))
    if fixed is None:
        raise first from None
    return fixed


def _given_h_next(x, h_prev, p, dh_next, h_next):
    """The exact step gradients given the h_next that the student's own forward returned (so that a
    mistake in rnn_step_forward costs nothing here): (dx, dh_prev, grads), or None."""
    if not isinstance(h_next, np.ndarray) or h_next.shape != h_prev.shape:
        return None
    da = dh_next * (1 - h_next.astype(np.float64) ** 2)
    db = da.sum(axis=0)
    return da @ p["weight_ih"], da @ p["weight_hh"], {"weight_ih": da.T @ x, "weight_hh": da.T @ h_prev,
                                                      "bias_ih": db, "bias_hh": db}


def _either_step(check, ref, given):
    """Pass on the reference, or on the exact gradients given the student's own h_next."""
    if given is None:
        check(ref)
    else:
        compose.either(lambda: check(ref), lambda: check(given))


@graded("rnn_step_backward", points=3)
def test_rnn_step_backward_parity(sub, rng):
    for N in (None, None, 1):
        x, h, p = _step_inputs(rng, N)
        dh_next = rng.standard_normal(h.shape)
        (dx, dh_prev, grads), h_next = _step_backward(sub, x, h, p, dh_next, with_h_next=True)
        what = f"rnn_step_backward (N, D, H) = {x.shape + h.shape[1:]}"

        def check(ref):
            rdx, rdh, rg = ref
            check_strict(dh_prev, rdh, f"{what} dh_prev (da @ weight_hh)")
            check_strict(dx, rdx, f"{what} dx (da @ weight_ih)")
            _check_grads(grads, rg, what)

        with_hint(lambda: _either_step(check, ref_step(x, h, p, dh_next), _given_h_next(x, h, p, dh_next, h_next)),
                  lambda: _tanh_hint(x, h, p, dh_next, dh_prev))


def _tanh_hint(x, h_prev, p, dh_next, got):
    """The tanh-derivative mistake that reproduces the student's dh_prev, or ''."""
    a = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    h_next = np.tanh(a)
    for desc, local in TANH_VARIANTS.items():
        want = (dh_next * local(a, h_prev, h_next)) @ p["weight_hh"]
        if isinstance(got, np.ndarray) and got.shape == want.shape and np.allclose(got, want, rtol=1e-6, atol=1e-9):
            return (f". Your dh_prev matches a local derivative of tanh written as {desc}; it is "
                    "1 - h_next**2, with the step's output")
    return ""


@graded("rnn_step_backward", points=2)
def test_rnn_step_backward_numerical(sub, rng):
    x, h, p = _step_inputs(rng)
    dh_next = rng.standard_normal(h.shape)
    (dx, dh_prev, grads), h_next = _step_backward(sub, x, h, p, dh_next, with_h_next=True)
    given = _given_h_next(x, h, p, dh_next, h_next)
    if given is not None and not np.allclose(h_next, ref_step(x, h, p), rtol=1e-8, atol=1e-10):
        # the student's forward is wrong (its own tests say so): judge the backward on its h_next
        check_strict(dx, given[0], "rnn_step_backward dx (given your rnn_step_forward's h_next)")
        check_strict(dh_prev, given[1], "rnn_step_backward dh_prev (given your rnn_step_forward's h_next)")
        _check_grads(grads, given[2], "rnn_step_backward (given your rnn_step_forward's h_next)")
        return

    def fwd(x_, h_, p_):
        return _np_seq(x_[:, None], h_, p_)[:, 0]

    _check_numeric(dx, _numeric(lambda v: fwd(v, h, p), x, dh_next), "rnn_step_backward dx")
    _check_numeric(dh_prev, _numeric(lambda v: fwd(x, v, p), h, dh_next), "rnn_step_backward dh_prev")
    if not isinstance(grads, dict) or sorted(grads) != sorted(KEYS):
        raise Fail(f"rnn_step_backward: grads must be a dict with keys {sorted(KEYS)}")
    for k in KEYS:
        num = _numeric(lambda v: fwd(x, h, {**p, k: v}), p[k], dh_next)
        _check_numeric(grads[k], num, f"rnn_step_backward grads[{k!r}]")


@graded("rnn_step_backward", points=1)
def test_rnn_step_backward_float32(sub, rng):
    x, h, p = _step_inputs(rng, dtype=np.float32)
    dh_next = rng.standard_normal(h.shape).astype(np.float32)
    (dx, dh_prev, grads), h_next = _step_backward(sub, x, h, p, dh_next, with_h_next=True)

    def check(ref):
        rdx, rdh, rg = ref
        check_strict(dx, rdx.astype(np.float32), "rnn_step_backward dx (float32 inputs)")
        check_strict(dh_prev, rdh.astype(np.float32), "rnn_step_backward dh_prev (float32 inputs)")
        _check_grads(grads, rg, "rnn_step_backward (float32 inputs)", np.float32)

    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    _either_step(check, ref_step(x, h, p, dh_next),
                 _given_h_next(x.astype(np.float64), h.astype(np.float64), p64, dh_next.astype(np.float64), h_next))


@graded("rnn_step_backward", points=1)
def test_rnn_step_backward_unmodified(sub, rng):
    x, h, p = _step_inputs(rng)
    dh_next = rng.standard_normal(h.shape)
    h_next, cache = _own_step_cache(sub, x, h, p, lambda c: sub.call("rnn_step_backward", dh_next.copy(), c))
    try:
        first, args, _ = sub.call_with_args("rnn_step_backward", dh_next.copy(), cache)
    except StudentError as e:
        h_next, cache = None, _corrected_step_cache(sub, x, h, p, h_next, e)
        first, args, _ = sub.call_with_args("rnn_step_backward", dh_next.copy(), cache)
    first = unpack(first, 3, "rnn_step_backward")
    check_unmodified({"dh_next": dh_next}, {"dh_next": args[0]}, "rnn_step_backward")
    # values first (so that an answer of zeros earns nothing here), then the cache: a second call with
    # the same cache must give the same dx, whatever the first one gave
    _either_step(lambda ref: check_strict(first[0], ref[0], f"rnn_step_backward dx (N, D, H) = "
                                          f"{x.shape + h.shape[1:]}"),
                 ref_step(x, h, p, dh_next), _given_h_next(x, h, p, dh_next, h_next))
    second = unpack(sub.call("rnn_step_backward", dh_next, cache), 3, "rnn_step_backward")
    check_strict(second[0], first[0], "rnn_step_backward dx when called a second time with the same cache "
                 "differs from the first call's: the backward pass changed the cache (work on copies)")


# ------------------------------------------------------------------------ rnn_forward
def _check_forward(sub, h, x, h0, p, what):
    """h against the loop over the student's own rnn_step_forward, or the trusted reference."""
    composed, _ = compose.seq_forward(sub, "rnn", x, [h0], p)
    ref = ref_seq(x, h0, p).astype(x.dtype)
    note = "" if compose.steps_match(sub, "rnn", [composed], [ref]) else \
        " (expected: your rnn_step_forward applied step by step, h0 first)"
    compose.either(lambda: check_strict(h, composed, what + note), lambda: check_strict(h, ref, what))


@graded("rnn_forward", points=3, fallback=RNN_STEPS)
def test_rnn_forward_parity(sub, rng):
    for N, T in ((None, None), (None, None), (1, None), (None, 1)):
        x, h0, p = _seq_inputs(rng, N, T)
        h, _ = unpack(sub.call("rnn_forward", x, h0, p), 2, "rnn_forward")
        _check_forward(sub, h, x, h0, p, f"rnn_forward h for x {x.shape}, h0 {h0.shape} "
                       "(h[:, t] is the state after step t; h0 is not part of h)")


@graded("rnn_forward", points=1, fallback=RNN_STEPS)
def test_rnn_forward_float32(sub, rng):
    x, h0, p = _seq_inputs(rng, dtype=np.float32)
    h, _ = unpack(sub.call("rnn_forward", x, h0, p), 2, "rnn_forward")
    _check_forward(sub, h, x, h0, p, "rnn_forward h (float32 inputs)")


@graded("rnn_forward", points=1, fallback=RNN_STEPS)
def test_rnn_forward_unmodified(sub, rng):
    x, h0, p = _seq_inputs(rng)
    got, args, _ = sub.call_with_args("rnn_forward", x.copy(), h0.copy(), _copy(p))
    check_unmodified({"x": x, "h0": h0, "params": p}, dict(zip(("x", "h0", "params"), args)), "rnn_forward")
    h, _ = unpack(got, 2, "rnn_forward")  # and the values: an answer of zeros earns nothing
    _check_forward(sub, h, x, h0, p, f"rnn_forward h (N, T, D, H) = {x.shape + h0.shape[1:]}")


# ----------------------------------------------------------------------- rnn_backward
class _Noted(tuple):
    """What rnn_backward returned, with the note a failing message carries (``note``)."""
    note = ""


def _seq_backward(sub, x, h0, p, dh, with_args=False):
    """rnn_backward on the cache of the student's own rnn_forward (kept in their process), or on one built
    in its own layout (learned on other inputs) when it raises, or is wrong and leaves a cache the
    backward cannot run on (testkit/repair.py). Its values are not repaired: a forward wrong through
    its steps is consistent with them, and the expected value is BPTT over those same steps."""
    (res, args, _), note = repair.run_backward(
        sub, "rnn_forward", 1, 2, (x, h0, p), lambda cache: sub.call_with_args("rnn_backward", dh.copy(), cache),
        lambda *a: seq_intermediates("rnn", *a), probe_inputs("rnn", x, [h0], p),
        outputs={0: "h"}, repair_values=False)
    got = _Noted(unpack(res, 3, "rnn_backward"))
    got.note = note
    return (got, args) if with_args else got


def _check_seq_backward(got, ref, what, dtype=None):
    dx, dh0, grads = got
    rdx, rdh0, rg = ref
    cast = (lambda a: a) if dtype is None else (lambda a: a.astype(dtype))
    check_strict(dh0, cast(rdh0), f"{what} dh0")
    check_strict(dx, cast(rdx), f"{what} dx")
    _check_grads(grads, rg, what, dtype)


BPTT_VARIANTS = {
    "the gradient that step t+1 sends back through h is not added to dh[:, t]": {"carry": False},
    "the weight gradients are not summed over the steps (only one step's are returned)": {"accumulate": False},
    "the steps are walked from 0 up to T-1 instead of from T-1 down to 0": {"reverse": False},
}


def _composed_backward(sub, x, h0, p, dh, **variant):
    """The course's BPTT over the student's own steps (caches from their own rnn_step_forward)."""
    _, caches = compose.seq_forward(sub, "rnn", x, [h0], p)
    dx, (dh0,), grads = compose.seq_backward(sub, "rnn", dh, caches, x.shape, h0.shape, **variant)
    return dx, dh0, grads


def _bptt_hint(sub, x, h0, p, dh, got):
    """The BPTT mistake (over the student's own steps) that reproduces their dx or weight gradient, or ''."""
    dx, _, grads = got if isinstance(got, (tuple, list)) and len(got) == 3 else (None, None, None)
    for desc, kw in BPTT_VARIANTS.items():
        vdx, _, vg = _composed_backward(sub, x, h0, p, dh, **kw)
        same_dx = isinstance(dx, np.ndarray) and dx.shape == vdx.shape and np.allclose(dx, vdx, rtol=1e-6, atol=1e-9)
        w = grads.get("weight_hh") if isinstance(grads, dict) else None
        same_w = isinstance(w, np.ndarray) and w.shape == vg["weight_hh"].shape and np.allclose(
            w, vg["weight_hh"], rtol=1e-6, atol=1e-9)
        if (same_dx or same_w) and not (kw.get("accumulate") is False and not same_w):
            return f". It looks like {desc}"
    return ""


def _judge_backward(sub, got, x, h0, p, dh, what, dtype=None, hint=True):
    """The student's rnn_backward against BPTT over their own steps, or the trusted reference."""
    composed = _composed_backward(sub, x, h0, p, dh)
    ref = ref_seq(x, h0, p, dh)
    if dtype is not None:
        ref = tuple(r.astype(dtype) if isinstance(r, np.ndarray) else {k: v.astype(dtype) for k, v in r.items()}
                    for r in ref)
    same = compose.steps_match(sub, "rnn", composed[:2] + tuple(composed[2][k] for k in KEYS),
                               ref[:2] + tuple(ref[2][k] for k in KEYS))
    note = ("" if same else " (expected: BPTT over your rnn_step_backward, fed your rnn_step_forward's caches)") + \
        getattr(got, "note", "")

    def check_composed():
        if hint:
            with_hint(lambda: _check_seq_backward(got, composed, what + note),
                      lambda: _bptt_hint(sub, x, h0, p, dh, got))
        else:
            _check_seq_backward(got, composed, what + note)

    compose.either(check_composed, lambda: _check_seq_backward(got, ref, what))
    return same


@graded("rnn_backward", points=4, fallback=RNN_STEPS)
def test_rnn_backward_parity(sub, rng):
    for _ in range(2):
        x, h0, p = _seq_inputs(rng)
        dh = rng.standard_normal((x.shape[0], x.shape[1], h0.shape[1]))
        got = _seq_backward(sub, x, h0, p, dh)
        _judge_backward(sub, got, x, h0, p, dh, f"rnn_backward (N, T, D, H) = {x.shape + h0.shape[1:]}:")


@graded("rnn_backward", points=1, fallback=RNN_STEPS)
def test_rnn_backward_last_step_only(sub, rng):
    # A many-to-one loss: only the last state gets a direct gradient; every step must still learn.
    x, h0, p = _seq_inputs(rng, T=5)
    dh = np.zeros((x.shape[0], 5, h0.shape[1]))
    dh[:, -1] = rng.standard_normal((x.shape[0], h0.shape[1]))
    got = _seq_backward(sub, x, h0, p, dh)
    _judge_backward(sub, got, x, h0, p, dh, "rnn_backward with a gradient on the last state only "
                    "(it must flow back to every earlier step through dh_prev):", hint=False)


@graded("rnn_backward", points=1, fallback=RNN_STEPS)
def test_rnn_backward_edge_cases(sub, rng):
    for N, T in ((1, None), (None, 1), (1, 1)):
        x, h0, p = _seq_inputs(rng, N, T)
        dh = rng.standard_normal((x.shape[0], x.shape[1], h0.shape[1]))
        got = _seq_backward(sub, x, h0, p, dh)
        _judge_backward(sub, got, x, h0, p, dh, f"rnn_backward with N={x.shape[0]}, T={x.shape[1]}:", hint=False)


@graded("rnn_backward", points=2, fallback=RNN_STEPS)
def test_rnn_backward_numerical(sub, rng):
    x, h0, p = _seq_inputs(rng, N=2, T=4)
    dh = rng.standard_normal((2, 4, h0.shape[1]))
    got = _seq_backward(sub, x, h0, p, dh)
    # Over the student's own steps first; the numerical gradient is the judge when their steps are right
    # (or when their rnn_backward does not use them and matches the reference).
    if not _judge_backward(sub, got, x, h0, p, dh, "rnn_backward (N, T, D, H) = "
                           f"{x.shape + h0.shape[1:]}:", hint=False):
        return
    dx, dh0, grads = got
    _check_numeric(dx, _numeric(lambda v: _np_seq(v, h0, p), x, dh), "rnn_backward dx")
    _check_numeric(dh0, _numeric(lambda v: _np_seq(x, v, p), h0, dh), "rnn_backward dh0")
    if not isinstance(grads, dict) or sorted(grads) != sorted(KEYS):
        raise Fail(f"rnn_backward: grads must be a dict with keys {sorted(KEYS)}")
    for k in KEYS:
        num = _numeric(lambda v: _np_seq(x, h0, {**p, k: v}), p[k], dh)
        _check_numeric(grads[k], num, f"rnn_backward grads[{k!r}]")


@graded("rnn_backward", points=1, fallback=RNN_STEPS)
def test_rnn_backward_float32(sub, rng):
    x, h0, p = _seq_inputs(rng, dtype=np.float32)
    dh = rng.standard_normal((x.shape[0], x.shape[1], h0.shape[1])).astype(np.float32)
    got = _seq_backward(sub, x, h0, p, dh)
    _judge_backward(sub, got, x, h0, p, dh, "rnn_backward (float32 inputs):", np.float32, hint=False)


@graded("rnn_backward", points=1, fallback=RNN_STEPS)
def test_rnn_backward_unmodified(sub, rng):
    x, h0, p = _seq_inputs(rng)
    dh = rng.standard_normal((x.shape[0], x.shape[1], h0.shape[1]))
    got, args = _seq_backward(sub, x, h0, p, dh, with_args=True)
    check_unmodified({"dh": dh}, {"dh": args[0]}, "rnn_backward (add the carried gradient into a new "
                     "array, not into dh)")
    _judge_backward(sub, got, x, h0, p, dh,  # and the values
                    f"rnn_backward (N, T, D, H) = {x.shape + h0.shape[1:]}:", hint=False)


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("rnn_numpy:together", points=1)
def test_rnn_numpy_together(sub, rng):
    """The whole chain as a training loop runs it: rnn_forward, then rnn_backward on its own cache,
    against torch.nn.RNN. Its own graded name (1 point, no answer cell): a mistake anywhere in the
    notebook shows here, not as a loss booked on a function that is right."""
    x, h0, p = _seq_inputs(rng)
    dh = rng.standard_normal((x.shape[0], x.shape[1], h0.shape[1]))
    what = f"the whole chain (rnn_forward then rnn_backward, (N, T, D, H) = {x.shape + h0.shape[1:]}) against torch.nn.RNN:"
    h, cache = unpack(sub.call_keep("rnn_forward", (1,), x, h0, p), 2, "rnn_forward")
    check_strict(h, ref_seq(x, h0, p), f"{what} h")
    got = unpack(sub.call("rnn_backward", dh, cache), 3, "rnn_backward")
    _check_seq_backward(got, ref_seq(x, h0, p, dh), what)
