"""Hidden tests for solutions/ch05_gru/gru_numpy.ipynb (book: ch05_gru)."""
import numpy as np

from autograder.core.api import Fail, check_array, check_unmodified, graded, unpack
from autograder.testkit.checks import check_grads, with_hint
from autograder.testkit.mistakes import hint_bptt, hint_gru
from autograder.testkit.numgrad import check_numgrad, numgrad
from autograder.testkit.shapes import arr, copy_params, dims, params, probe_inputs
from autograder.testkit.torchref import cell_ref, seq_ref
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference.steps import GRU_STEPS, gru_step_intermediates, seq_intermediates
from autograder.testkit import repair
from autograder.testkit import compose

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml
# Fair credit by composition (testkit.compose): the sequence functions are judged against the course's loop
# over the student's OWN steps (caches kept in their process), or the trusted reference; the trusted
# steps (GRU_STEPS) are a fallback, used only when a student step raises or is missing.
WORKS_TOGETHER = []


def _step_inputs(rng, kind="random", dtype=np.float64):
    N, D, H = dims(rng, 1 if kind == "n1" else None)
    return arr(rng, N, D, dtype=dtype), arr(rng, N, H, dtype=dtype), params(rng, "gru", D, H, dtype)


def _seq_inputs(rng, kind="random", dtype=np.float64):
    N, D, H = dims(rng, 1 if kind == "n1" else None)
    T = 1 if kind == "t1" else int(rng.integers(2, 7))
    return arr(rng, N, T, D, dtype=dtype), arr(rng, N, H, dtype=dtype), params(rng, "gru", D, H, dtype)


def _label(x, h0):
    return "N={}, D={}, H={}".format(x.shape[0], x.shape[-1], h0.shape[1]) + (
        f", T={x.shape[1]}" if x.ndim == 3 else "")


# ------------------------------------------------------------------- gru_step_forward
def _step_forward_check(sub, x, h0, p, label=""):
    h1, _ = unpack(sub.call("gru_step_forward", x, h0, p), 2, "gru_step_forward")
    (rh,) = cell_ref("gru", x, [h0], p)
    with_hint(lambda: check_array(h1, rh.astype(x.dtype), f"gru_step_forward ({_label(x, h0)}{label}) h_next"),
              lambda: hint_gru(x, h0, p, h1))


@graded("gru_step_forward", points=3)
def test_gru_step_forward_parity(sub, rng):
    for kind in ("random", "random", "n1"):
        _step_forward_check(sub, *_step_inputs(rng, kind))


@graded("gru_step_forward", points=1)
def test_gru_step_forward_float32(sub, rng):
    _step_forward_check(sub, *_step_inputs(rng, dtype=np.float32), label=", float32")


@graded("gru_step_forward", points=1)
def test_gru_step_forward_unmodified(sub, rng):
    x, h0, p = _step_inputs(rng)
    got, args, _ = sub.call_with_args("gru_step_forward", x.copy(), h0.copy(), copy_params(p))
    check_unmodified({"x": x, "h_prev": h0, "params": p}, dict(zip(["x", "h_prev", "params"], args)),
                     "gru_step_forward")
    h1, _ = unpack(got, 2, "gru_step_forward")  # and the values: an answer of zeros earns nothing
    (rh,) = cell_ref("gru", x, [h0], p)
    check_array(h1, rh, f"gru_step_forward h_next ({_label(x, h0)})")


# ------------------------------------------------------------------ gru_step_backward
def _own_step_backward(sub, x, h0, p, dh):
    """(res, args, note): gru_step_backward (called with its arguments returned) on the cache of the
    student's own gru_step_forward, kept in their process; repaired there with the correct step's values
    when their h_next is wrong, or built in its own layout (learned on other inputs) when it raises or
    leaves a cache the backward cannot run on (testkit/repair.py)."""
    (res, args, _), note = repair.run_backward(
        sub, "gru_step_forward", 1, 2, (x, h0, p),
        lambda cache: sub.call_with_args("gru_step_backward", dh.copy(), cache),
        gru_step_intermediates, probe_inputs("gru", x, [h0], p), outputs={0: "h_next"})
    return res, args, note


def _with_note(check, note):
    try:
        check()
    except Fail as e:
        raise Fail(str(e) + note) from None


def _step_backward_check(sub, x, h0, p, dh, label=""):
    res, args, note = _own_step_backward(sub, x, h0, p, dh)
    dx, dhp, grads = unpack(res, 3, "gru_step_backward")
    _with_note(lambda: _step_backward_values(x, h0, p, dh, label, dx, dhp, grads), note)
    check_unmodified({"dh_next": dh}, {"dh_next": args[0]}, "gru_step_backward")


def _step_backward_values(x, h0, p, dh, label, dx, dhp, grads):
    _, (rx, rh, rg) = cell_ref("gru", x, [h0], p, [dh])
    what = f"gru_step_backward ({_label(x, h0)}{label})"
    check_array(dx, rx.astype(x.dtype), f"{what} dx")
    check_array(dhp, rh.astype(x.dtype), f"{what} dh_prev (the direct path z * dh_next plus the three gates)")
    check_grads(grads, {k: v.astype(x.dtype) for k, v in rg.items()},
                f"{what} (in the n block, the hidden side gets r times the input side's gradient)")


@graded("gru_step_backward", points=3)
def test_gru_step_backward_parity(sub, rng):
    for kind in ("random", "random", "n1"):
        x, h0, p = _step_inputs(rng, kind)
        _step_backward_check(sub, x, h0, p, arr(rng, *h0.shape))


@graded("gru_step_backward", points=1)
def test_gru_step_backward_numerical(sub, rng):
    x, h0, p = _step_inputs(rng)
    dh = arr(rng, *h0.shape)
    res, _, note = _own_step_backward(sub, x, h0, p, dh)
    dx, dhp, grads = unpack(res, 3, "gru_step_backward")
    if not isinstance(grads, dict):
        raise Fail("gru_step_backward: grads must be a dict")
    targets = [(0, dx, "dx"), (1, dhp, "dh_prev")] + [((2, k), grads.get(k), f"grads[{k!r}]") for k in p]
    for target, got, name in targets:
        if got is None:
            raise Fail(f"gru_step_backward: {name} is missing")
        flat, num = numgrad(lambda *a: cell_ref("gru", a[0], a[1:2], a[2]), [x, h0, p], target, [dh], rng)
        _with_note(lambda: check_numgrad(got, flat, num, f"gru_step_backward {name}"), note)


@graded("gru_step_backward", points=1)
def test_gru_step_backward_float32(sub, rng):
    x, h0, p = _step_inputs(rng, dtype=np.float32)
    _step_backward_check(sub, x, h0, p, arr(rng, *h0.shape, dtype=np.float32), ", float32")


# ------------------------------------------------------------------------ gru_forward
def _forward_check(sub, x, h0, p, label=""):
    h, _ = unpack(sub.call("gru_forward", x, h0, p), 2, "gru_forward")
    ref = seq_ref("gru", x, [h0], p)
    composed, _ = compose.seq_forward(sub, "gru", x, [h0], p)
    what = f"gru_forward h ({_label(x, h0)}{label}; every step's hidden state, shape (N, T, H))"
    # against the loop over the student's own gru_step_forward, or the trusted reference
    compose.either(lambda: with_hint(lambda: check_array(h, composed, what),
                                     lambda: hint_gru(x, h0, p, h, seq=True)),
                   lambda: check_array(h, ref.astype(x.dtype), what))


@graded("gru_forward", points=3, fallback=GRU_STEPS)
def test_gru_forward_parity(sub, rng):
    for kind in ("random", "random", "n1", "t1"):
        _forward_check(sub, *_seq_inputs(rng, kind))


@graded("gru_forward", points=1, fallback=GRU_STEPS)
def test_gru_forward_float32_unmodified(sub, rng):
    x, h0, p = _seq_inputs(rng, dtype=np.float32)
    _forward_check(sub, x, h0, p, ", float32")
    _, args, _ = sub.call_with_args("gru_forward", x.copy(), h0.copy(), copy_params(p))
    check_unmodified({"x": x, "h0": h0, "params": p}, dict(zip(["x", "h0", "params"], args)), "gru_forward")


# ----------------------------------------------------------------------- gru_backward
def _own_backward(sub, x, h0, p, dh):
    """((dx, dh0, grads), args, note): gru_backward on the cache of the student's own gru_forward (kept
    in their process), or on one built in its own layout (learned on other inputs) when it raises, or is
    wrong and leaves a cache the backward cannot run on (testkit/repair.py; ``note`` says so in a failing
    message). Its values are not repaired: a forward wrong through its steps is consistent with them,
    and the expected value is BPTT over those same steps."""
    (res, args, _), note = repair.run_backward(
        sub, "gru_forward", 1, 2, (x, h0, p), lambda cache: sub.call_with_args("gru_backward", dh.copy(), cache),
        lambda *a: seq_intermediates("gru", *a), probe_inputs("gru", x, [h0], p),
        outputs={0: "h"}, repair_values=False)
    return unpack(res, 3, "gru_backward"), args, note


def _backward_check(sub, x, h0, p, dh, label=""):
    (dx, dh0, grads), args, note = _own_backward(sub, x, h0, p, dh)
    _, (rx, rh, rg) = seq_ref("gru", x, [h0], p, dh)
    _, caches = compose.seq_forward(sub, "gru", x, [h0], p)
    cx, (ch,), cg = compose.seq_backward(sub, "gru", dh.astype(x.dtype), caches, x.shape, h0.shape)
    what = f"gru_backward ({_label(x, h0)}{label})"

    def check(rx, rh, rg):
        check_array(dx, rx.astype(x.dtype), f"{what} dx")
        check_array(dh0, rh.astype(x.dtype), f"{what} dh0")
        check_grads(grads, {k: v.astype(x.dtype) for k, v in rg.items()}, f"{what} (summed over the steps)")

    # BPTT over the student's own steps (their caches), or the trusted reference
    _with_note(lambda: compose.either(lambda: with_hint(lambda: check(cx, ch, cg),
                                                        lambda: hint_bptt("gru", x, [h0], p, dh, dx, grads)),
                                      lambda: check(rx, rh, rg)), note)
    check_unmodified({"dh": dh}, {"dh": args[0]}, "gru_backward")


@graded("gru_backward", points=3, fallback=GRU_STEPS)
def test_gru_backward_parity(sub, rng):
    for kind in ("random", "random", "n1", "t1"):
        x, h0, p = _seq_inputs(rng, kind)
        _backward_check(sub, x, h0, p, arr(rng, *x.shape[:2], h0.shape[1]))


@graded("gru_backward", points=1, fallback=GRU_STEPS)
def test_gru_backward_last_step_only(sub, rng):
    N, D, H = dims(rng)
    T = 5
    x, h0, p = arr(rng, N, T, D), arr(rng, N, H), params(rng, "gru", D, H)
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _backward_check(sub, x, h0, p, dh, "; dh is zero except at the last step")


@graded("gru_backward", points=1, fallback=GRU_STEPS)
def test_gru_backward_numerical(sub, rng):
    N, D, H = dims(rng)
    T = 3
    x, h0, p = arr(rng, N, T, D), arr(rng, N, H), params(rng, "gru", D, H)
    dh = arr(rng, N, T, H)
    (dx, dh0, grads), _, note = _own_backward(sub, x, h0, p, dh)
    if not isinstance(grads, dict):
        raise Fail("gru_backward: grads must be a dict")
    _, caches = compose.seq_forward(sub, "gru", x, [h0], p)
    composed = compose.seq_backward(sub, "gru", dh, caches, x.shape, h0.shape)
    _, (rx, rh, rg) = seq_ref("gru", x, [h0], p, dh)
    if not compose.steps_match(sub, "gru", [composed[0], composed[1][0]] + [composed[2][k] for k in sorted(rg)],
                               [rx, rh] + [rg[k] for k in sorted(rg)]):
        # the student's steps are wrong (their own tests say so): judge BPTT over them
        what = "gru_backward (expected: BPTT over your gru_step_backward, fed your gru_step_forward's caches)"
        _with_note(lambda: compose.either(
            lambda: (check_array(dx, composed[0], f"{what} dx"), check_array(dh0, composed[1][0], f"{what} dh0"),
                     check_grads(grads, composed[2], what)),
            lambda: (check_array(dx, rx, f"{what} dx"), check_array(dh0, rh, f"{what} dh0"),
                     check_grads(grads, rg, what))), note)
        return
    targets = [(0, dx, "dx"), (1, dh0, "dh0")] + [((2, k), grads.get(k), f"grads[{k!r}]") for k in p]
    for target, got, name in targets:
        if got is None:
            raise Fail(f"gru_backward: {name} is missing")
        flat, num = numgrad(lambda *a: [seq_ref("gru", a[0], a[1:2], a[2])], [x, h0, p], target, [dh], rng)
        _with_note(lambda: check_numgrad(got, flat, num, f"gru_backward {name}"), note)


@graded("gru_backward", points=1, fallback=GRU_STEPS)
def test_gru_backward_float32(sub, rng):
    x, h0, p = _seq_inputs(rng, dtype=np.float32)
    _backward_check(sub, x, h0, p, arr(rng, *x.shape[:2], h0.shape[1], dtype=np.float32), ", float32")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("gru_numpy:together", points=1)
def test_gru_numpy_together(sub, rng):
    """The whole chain as a training loop runs it: gru_forward, then gru_backward on its own cache (kept
    in the student's process, never repaired), against torch.nn.GRU. Its own graded name (1 point, no
    answer cell): a mistake anywhere in the notebook shows here, not as a loss booked on a function that
    is right."""
    x, h0, p = _seq_inputs(rng)
    dh = arr(rng, *x.shape[:2], h0.shape[1])
    what = f"the whole chain (gru_forward then gru_backward, {_label(x, h0)}) against torch.nn.GRU:"
    h, cache = unpack(sub.call_keep("gru_forward", (1,), x, h0, p), 2, "gru_forward")
    check_array(h, seq_ref("gru", x, [h0], p), f"{what} h")
    dx, dh0, grads = unpack(sub.call("gru_backward", dh, cache), 3, "gru_backward")
    _, (rx, rh, rg) = seq_ref("gru", x, [h0], p, dh)
    check_array(dx, rx, f"{what} dx")
    check_array(dh0, rh, f"{what} dh0")
    check_grads(grads, rg, what)
