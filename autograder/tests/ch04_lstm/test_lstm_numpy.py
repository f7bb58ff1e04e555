"""Hidden tests for solutions/ch04_lstm/lstm_numpy.ipynb (book: ch04_lstm)."""
import numpy as np

from autograder.core.api import Fail, check_array, check_unmodified, graded, unpack
from autograder.testkit.checks import check_grads, with_hint
from autograder.testkit.mistakes import hint_bptt, hint_lstm
from autograder.testkit.numgrad import check_numgrad, numgrad
from autograder.testkit.shapes import arr, copy_params, dims, params, probe_inputs
from autograder.testkit.torchref import cell_ref, seq_ref
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference.steps import LSTM_STEPS, lstm_step_intermediates, seq_intermediates
from autograder.testkit import repair
from autograder.testkit import compose

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml
# Fair credit by composition (testkit.compose): the sequence functions are judged against the course's loop
# over the student's OWN steps (caches kept in their process), or the trusted reference; the trusted
# steps (LSTM_STEPS) are a fallback, used only when a student step raises or is missing.
WORKS_TOGETHER = []


def _step_inputs(rng, kind="random", dtype=np.float64):
    N, D, H = dims(rng, 1 if kind == "n1" else None)
    return arr(rng, N, D, dtype=dtype), arr(rng, N, H, dtype=dtype), arr(rng, N, H, dtype=dtype), \
        params(rng, "lstm", D, H, dtype)


def _seq_inputs(rng, kind="random", dtype=np.float64):
    N, D, H = dims(rng, 1 if kind == "n1" else None)
    T = 1 if kind == "t1" else int(rng.integers(2, 7))
    return arr(rng, N, T, D, dtype=dtype), arr(rng, N, H, dtype=dtype), arr(rng, N, H, dtype=dtype), \
        params(rng, "lstm", D, H, dtype)


def _label(x, h0):
    return "N={}, D={}, H={}".format(x.shape[0], x.shape[-1], h0.shape[1]) + (
        f", T={x.shape[1]}" if x.ndim == 3 else "")


# ------------------------------------------------------------------ lstm_step_forward
def _step_forward_check(sub, x, h0, c0, p, dtype_label=""):
    h1, c1, _ = unpack(sub.call("lstm_step_forward", x, h0, c0, p), 3, "lstm_step_forward")
    rh, rc = cell_ref("lstm", x, [h0, c0], p)
    what = f"lstm_step_forward ({_label(x, h0)}{dtype_label})"

    def check():
        check_array(h1, rh.astype(x.dtype), f"{what} h_next")
        check_array(c1, rc.astype(x.dtype), f"{what} c_next")

    with_hint(check, lambda: hint_lstm(x, h0, c0, p, h1, c1))


@graded("lstm_step_forward", points=3)
def test_lstm_step_forward_parity(sub, rng):
    for kind in ("random", "random", "n1"):
        _step_forward_check(sub, *_step_inputs(rng, kind))


@graded("lstm_step_forward", points=1)
def test_lstm_step_forward_float32(sub, rng):
    _step_forward_check(sub, *_step_inputs(rng, dtype=np.float32), dtype_label=", float32")


@graded("lstm_step_forward", points=1)
def test_lstm_step_forward_unmodified(sub, rng):
    x, h0, c0, p = _step_inputs(rng)
    got, args, _ = sub.call_with_args("lstm_step_forward", x.copy(), h0.copy(), c0.copy(), copy_params(p))
    check_unmodified({"x": x, "h_prev": h0, "c_prev": c0, "params": p},
                     dict(zip(["x", "h_prev", "c_prev", "params"], args)), "lstm_step_forward")
    h1, c1, _ = unpack(got, 3, "lstm_step_forward")  # and the values: an answer of zeros earns nothing
    rh, rc = cell_ref("lstm", x, [h0, c0], p)
    check_array(h1, rh, f"lstm_step_forward h_next ({_label(x, h0)})")
    check_array(c1, rc, f"lstm_step_forward c_next ({_label(x, h0)})")


# ----------------------------------------------------------------- lstm_step_backward
def _own_step_backward(sub, x, h0, c0, p, dh, dc):
    """(res, args, note): lstm_step_backward (called with its arguments returned) on the cache of the
    student's own lstm_step_forward, kept in their process; repaired there with the correct step's values
    when their h_next or c_next is wrong, or built in its own layout (learned on other inputs) when it
    raises or leaves a cache the backward cannot run on (testkit/repair.py)."""
    (res, args, _), note = repair.run_backward(
        sub, "lstm_step_forward", 2, 3, (x, h0, c0, p),
        lambda cache: sub.call_with_args("lstm_step_backward", dh.copy(), dc.copy(), cache),
        lstm_step_intermediates, probe_inputs("lstm", x, [h0, c0], p), outputs={0: "h_next", 1: "c_next"})
    return res, args, note


def _with_note(check, note):
    try:
        check()
    except Fail as e:
        raise Fail(str(e) + note) from None


def _step_backward_check(sub, rng, x, h0, c0, p, dh, dc, label=""):
    res, args, note = _own_step_backward(sub, x, h0, c0, p, dh, dc)
    dx, dhp, dcp, grads = unpack(res, 4, "lstm_step_backward")
    _with_note(lambda: _step_backward_values(x, h0, c0, p, dh, dc, label, dx, dhp, dcp, grads), note)
    check_unmodified({"dh_next": dh, "dc_next": dc}, dict(zip(["dh_next", "dc_next"], args)), "lstm_step_backward")


def _step_backward_values(x, h0, c0, p, dh, dc, label, dx, dhp, dcp, grads):
    _, (rx, rh, rc, rg) = cell_ref("lstm", x, [h0, c0], p, [dh, dc])
    what = f"lstm_step_backward ({_label(x, h0)}{label})"
    check_array(dx, rx.astype(x.dtype), f"{what} dx")
    check_array(dhp, rh.astype(x.dtype), f"{what} dh_prev")
    check_array(dcp, rc.astype(x.dtype), f"{what} dc_prev (dc_next plus the path through h_next, "
                "times the forget gate)")
    check_grads(grads, {k: v.astype(x.dtype) for k, v in rg.items()}, what)


@graded("lstm_step_backward", points=3)
def test_lstm_step_backward_parity(sub, rng):
    for kind in ("random", "random", "n1"):
        x, h0, c0, p = _step_inputs(rng, kind)
        _step_backward_check(sub, rng, x, h0, c0, p, arr(rng, *h0.shape), arr(rng, *h0.shape))


@graded("lstm_step_backward", points=1)
def test_lstm_step_backward_dc_next(sub, rng):
    x, h0, c0, p = _step_inputs(rng)
    zero = np.zeros_like(h0)
    _step_backward_check(sub, rng, x, h0, c0, p, zero, arr(rng, *h0.shape),
                         ", dh_next = 0: only dc_next flows in; it must reach c_next's gradient")
    _step_backward_check(sub, rng, x, h0, c0, p, arr(rng, *h0.shape), zero, ", dc_next = 0")


@graded("lstm_step_backward", points=1)
def test_lstm_step_backward_numerical(sub, rng):
    # Against central differences of the reference forward pass (float64): a second, independent
    # pass on its own, even where the forward pass has a mistake.
    x, h0, c0, p = _step_inputs(rng)
    dh, dc = arr(rng, *h0.shape), arr(rng, *h0.shape)
    res, _, note = _own_step_backward(sub, x, h0, c0, p, dh, dc)
    dx, dhp, dcp, grads = unpack(res, 4, "lstm_step_backward")
    if not isinstance(grads, dict):
        raise Fail("lstm_step_backward: grads must be a dict")
    args = [x, h0, c0, p]
    targets = [(0, dx, "dx"), (1, dhp, "dh_prev"), (2, dcp, "dc_prev")] + [
        ((3, k), grads.get(k), f"grads[{k!r}]") for k in p]
    for target, got, name in targets:
        if got is None:
            raise Fail(f"lstm_step_backward: {name} is missing")
        flat, num = numgrad(lambda *a: cell_ref("lstm", a[0], a[1:3], a[3]), args, target, [dh, dc], rng)
        _with_note(lambda: check_numgrad(got, flat, num, f"lstm_step_backward {name}"), note)


@graded("lstm_step_backward", points=1)
def test_lstm_step_backward_float32(sub, rng):
    x, h0, c0, p = _step_inputs(rng, dtype=np.float32)
    _step_backward_check(sub, rng, x, h0, c0, p, arr(rng, *h0.shape, dtype=np.float32),
                         arr(rng, *h0.shape, dtype=np.float32), ", float32")


# ----------------------------------------------------------------------- lstm_forward
def _forward_check(sub, x, h0, c0, p, label=""):
    h, _ = unpack(sub.call("lstm_forward", x, h0, c0, p), 2, "lstm_forward")
    ref = seq_ref("lstm", x, [h0, c0], p)
    composed, _ = compose.seq_forward(sub, "lstm", x, [h0, c0], p)
    what = f"lstm_forward h ({_label(x, h0)}{label}; every step's hidden state, shape (N, T, H))"
    # against the loop over the student's own lstm_step_forward, or the trusted reference
    compose.either(lambda: with_hint(lambda: check_array(h, composed, what),
                                     lambda: hint_lstm(x, h0, c0, p, h, seq=True)),
                   lambda: check_array(h, ref.astype(x.dtype), what))


@graded("lstm_forward", points=3, fallback=LSTM_STEPS)
def test_lstm_forward_parity(sub, rng):
    for kind in ("random", "random", "n1", "t1"):
        _forward_check(sub, *_seq_inputs(rng, kind))


@graded("lstm_forward", points=1, fallback=LSTM_STEPS)
def test_lstm_forward_float32_unmodified(sub, rng):
    x, h0, c0, p = _seq_inputs(rng, dtype=np.float32)
    _forward_check(sub, x, h0, c0, p, ", float32")
    _, args, _ = sub.call_with_args("lstm_forward", x.copy(), h0.copy(), c0.copy(), copy_params(p))
    check_unmodified({"x": x, "h0": h0, "c0": c0, "params": p},
                     dict(zip(["x", "h0", "c0", "params"], args)), "lstm_forward")


# ---------------------------------------------------------------------- lstm_backward
def _own_backward(sub, x, h0, c0, p, dh):
    """((dx, dh0, dc0, grads), args, note): lstm_backward on the cache of the student's own lstm_forward (kept
    in their process), or on one built in its own layout (learned on other inputs) when it raises, or is
    wrong and leaves a cache the backward cannot run on (testkit/repair.py; ``note`` says so in a failing
    message). Its values are not repaired: a forward wrong through its steps is consistent with them,
    and the expected value is BPTT over those same steps."""
    (res, args, _), note = repair.run_backward(
        sub, "lstm_forward", 1, 2, (x, h0, c0, p), lambda cache: sub.call_with_args("lstm_backward", dh.copy(), cache),
        lambda *a: seq_intermediates("lstm", *a), probe_inputs("lstm", x, [h0, c0], p),
        outputs={0: "h"}, repair_values=False)
    return unpack(res, 4, "lstm_backward"), args, note


def _backward_check(sub, x, h0, c0, p, dh, label=""):
    (dx, dh0, dc0, grads), args, note = _own_backward(sub, x, h0, c0, p, dh)
    _, (rx, rh, rc, rg) = seq_ref("lstm", x, [h0, c0], p, dh)
    _, caches = compose.seq_forward(sub, "lstm", x, [h0, c0], p)
    cx, (ch, cc), cg = compose.seq_backward(sub, "lstm", dh.astype(x.dtype), caches, x.shape, h0.shape)
    what = f"lstm_backward ({_label(x, h0)}{label})"

    def check(rx, rh, rc, rg):
        check_array(dx, rx.astype(x.dtype), f"{what} dx")
        check_array(dh0, rh.astype(x.dtype), f"{what} dh0")
        check_array(dc0, rc.astype(x.dtype), f"{what} dc0")
        check_grads(grads, {k: v.astype(x.dtype) for k, v in rg.items()}, f"{what} (summed over the steps)")

    # BPTT over the student's own steps (their caches), or the trusted reference
    _with_note(lambda: compose.either(lambda: with_hint(lambda: check(cx, ch, cc, cg),
                                                        lambda: hint_bptt("lstm", x, [h0, c0], p, dh, dx, grads)),
                                      lambda: check(rx, rh, rc, rg)), note)
    check_unmodified({"dh": dh}, {"dh": args[0]}, "lstm_backward")


@graded("lstm_backward", points=3, fallback=LSTM_STEPS)
def test_lstm_backward_parity(sub, rng):
    for kind in ("random", "random", "n1", "t1"):
        x, h0, c0, p = _seq_inputs(rng, kind)
        _backward_check(sub, x, h0, c0, p, arr(rng, *x.shape[:2], h0.shape[1]))


@graded("lstm_backward", points=1, fallback=LSTM_STEPS)
def test_lstm_backward_last_step_only(sub, rng):
    # The loss sees only the last hidden state (as in the adding problem): every earlier gradient
    # must arrive through h and c.
    N, D, H = dims(rng)
    T = 5
    x, h0, c0, p = arr(rng, N, T, D), arr(rng, N, H), arr(rng, N, H), params(rng, "lstm", D, H)
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _backward_check(sub, x, h0, c0, p, dh, "; dh is zero except at the last step")


@graded("lstm_backward", points=1, fallback=LSTM_STEPS)
def test_lstm_backward_numerical(sub, rng):
    N, D, H = dims(rng)
    T = 3
    x, h0, c0, p = arr(rng, N, T, D), arr(rng, N, H), arr(rng, N, H), params(rng, "lstm", D, H)
    dh = arr(rng, N, T, H)
    (dx, dh0, dc0, grads), _, note = _own_backward(sub, x, h0, c0, p, dh)
    if not isinstance(grads, dict):
        raise Fail("lstm_backward: grads must be a dict")
    _, caches = compose.seq_forward(sub, "lstm", x, [h0, c0], p)
    composed = compose.seq_backward(sub, "lstm", dh, caches, x.shape, h0.shape)
    _, (rx, rh, rc, rg) = seq_ref("lstm", x, [h0, c0], p, dh)
    if not compose.steps_match(sub, "lstm", [composed[0], *composed[1]] + [composed[2][k] for k in sorted(rg)],
                               [rx, rh, rc] + [rg[k] for k in sorted(rg)]):
        # the student's steps are wrong (their own tests say so): judge BPTT over them
        what = "lstm_backward (expected: BPTT over your lstm_step_backward, fed your lstm_step_forward's caches)"
        _with_note(lambda: compose.either(
            lambda: (check_array(dx, composed[0], f"{what} dx"), check_array(dh0, composed[1][0], f"{what} dh0"),
                     check_array(dc0, composed[1][1], f"{what} dc0"), check_grads(grads, composed[2], what)),
            lambda: (check_array(dx, rx, f"{what} dx"), check_array(dh0, rh, f"{what} dh0"),
                     check_array(dc0, rc, f"{what} dc0"), check_grads(grads, rg, what))), note)
        return
    targets = [(0, dx, "dx"), (1, dh0, "dh0"), (2, dc0, "dc0")] + [
        ((3, k), grads.get(k), f"grads[{k!r}]") for k in p]
    for target, got, name in targets:
        if got is None:
            raise Fail(f"lstm_backward: {name} is missing")
        flat, num = numgrad(lambda *a: [seq_ref("lstm", a[0], a[1:3], a[3])], [x, h0, c0, p], target, [dh], rng)
        _with_note(lambda: check_numgrad(got, flat, num, f"lstm_backward {name}"), note)


@graded("lstm_backward", points=1, fallback=LSTM_STEPS)
def test_lstm_backward_float32(sub, rng):
    x, h0, c0, p = _seq_inputs(rng, dtype=np.float32)
    _backward_check(sub, x, h0, c0, p, arr(rng, *x.shape[:2], h0.shape[1], dtype=np.float32), ", float32")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("lstm_numpy:together", points=1)
def test_lstm_numpy_together(sub, rng):
    """The whole chain as a training loop runs it: lstm_forward, then lstm_backward on its own cache (kept
    in the student's process, never repaired), against torch.nn.LSTM. Its own graded name (1 point, no
    answer cell): a mistake anywhere in the notebook shows here, not as a loss booked on a function that
    is right."""
    x, h0, c0, p = _seq_inputs(rng)
    dh = arr(rng, *x.shape[:2], h0.shape[1])
    what = f"the whole chain (lstm_forward then lstm_backward, {_label(x, h0)}) against torch.nn.LSTM:"
    h, cache = unpack(sub.call_keep("lstm_forward", (1,), x, h0, c0, p), 2, "lstm_forward")
    check_array(h, seq_ref("lstm", x, [h0, c0], p), f"{what} h")
    dx, dh0, dc0, grads = unpack(sub.call("lstm_backward", dh, cache), 4, "lstm_backward")
    _, (rx, rh, rc, rg) = seq_ref("lstm", x, [h0, c0], p, dh)
    check_array(dx, rx, f"{what} dx")
    check_array(dh0, rh, f"{what} dh0")
    check_array(dc0, rc, f"{what} dc0")
    check_grads(grads, rg, what)
