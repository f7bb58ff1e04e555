"""Hidden tests for solutions/ch08_attention/attention_numpy.ipynb (book: ch08_attention).

Scaled dot-product and additive (Bahdanau) attention, batched, with masks (True = may attend) and the
course's rule for a query that may attend to nothing (weights 0, output 0, no gradient). References are
torch autograd in float64 (``autograder.testkit.reference.attention``); numerical gradients go through
the trusted forward. A backward is judged on the student's own forward: the cache stays in the
student's process (``call_keep``) and is handed back to the student's backward; when the forward is
wrong on a test's inputs, that cache is first repaired there with the correct forward's values
(``testkit/repair.py``), so a right backward keeps its points.
"""
import numpy as np

from autograder.core.api import Fail, check_array, check_unmodified, graded, unpack
from autograder.core.engine import StudentError
from autograder.testkit.manifest import forbidden
from autograder.testkit.numgrad import check_numgrad, numgrad
from autograder.testkit import corrected, repair
from autograder.testkit.reference.attention import (additive_intermediates, additive_ref, additive_variants,
                                                    attention_intermediates, attention_ref, attention_variants,
                                                    which_variant)
from autograder.testkit.shapes import arr

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

PKEYS = ("W_q", "W_k", "w_v")


def _forward(sub, name, *args):
    """(out, cache): out as plain data, the cache kept in the student's process (a handle to pass back)."""
    return unpack(sub.call_keep(name, (1,), *args), 2, name)


def _probes(name, q, k, v, *rest):
    """Other inputs on which a forward that raises on a test's may run, to learn its cache's layout
    (testkit/repair.py): the same N, Tq, Tk and mask, the feature sizes tied (d == Dv; Dk == A, Dq == A,
    Dq == Dk == A, Dv == A) or moved apart, and the other float dtype. A fixed seed: the same probes for
    every student."""
    rng = np.random.default_rng(8)
    N, Tq, Tk, dt = q.shape[0], q.shape[1], k.shape[1], q.dtype
    other = np.float32 if dt == np.float64 else np.float64
    if name == "attention_forward":
        d, Dv = q.shape[2], v.shape[2]
        sizes = [(Dv, Dv, dt), (d + 7, Dv + 9, dt), (d, Dv, other)]
        return [(arr(rng, N, Tq, a, dtype=t), arr(rng, N, Tk, a, dtype=t), arr(rng, N, Tk, b, dtype=t), *rest)
                for a, b, t in sizes]
    p, mask = rest
    Dq, Dk, Dv, A = q.shape[2], k.shape[2], v.shape[2], p["W_q"].shape[0]
    sizes = [(Dq, A, Dv, A, dt), (A, Dk, Dv, A, dt), (A, A, Dv, A, dt), (Dq, Dk, A, A, dt), (Dq, Dk, Dv, A, other)]
    return [(arr(rng, N, Tq, a, dtype=t), arr(rng, N, Tk, b, dtype=t), arr(rng, N, Tk, c, dtype=t),
             {"W_q": arr(rng, e, a, dtype=t), "W_k": arr(rng, e, b, dtype=t), "w_v": arr(rng, 1, e, dtype=t)}, mask)
            for a, b, c, e, t in sizes]


REFS_OF = {"attention_forward": attention_intermediates, "additive_attention_forward": additive_intermediates}


def _repaired_forward(sub, name, refs, *args):
    """(cache, note): the student's own forward's cache, repaired in their process with the correct
    forward's values when their forward is wrong on these inputs (testkit/repair.py), and the note a
    failing backward's message then carries. When their forward raises on these inputs, a cache in its
    own layout, learned on other inputs where it runs (``_probes``, ``repair.probe_caches``)."""
    try:
        out, cache = _forward(sub, name, *args)
    except StudentError as first:
        if not repair.worth_probing(first):
            raise
        for cache in repair.probe_caches(sub, name, 1, _probes(name, *args), REFS_OF[name], args, 2):
            return cache, repair.probe_note(name)
        cache = _corrected(sub, name, args)
        if cache is None:
            raise first from None
        return cache, corrected.note(name)
    try:
        right = np.allclose(np.asarray(out, np.float64), refs["out"], rtol=1e-4, atol=1e-6)
    except Exception:  # noqa: BLE001 - not an array of the right shape: wrong
        right = False
    fixed = None if right else _corrected(sub, name, args)
    if fixed is not None:
        return fixed, corrected.note(name)
    return cache, ("" if right else repair.note(repair.repair(sub, cache, refs, {"out": out}), name))


def _corrected(sub, name, args):
    """A cache laid out by a one-edit correction of the student's own forward (testkit/corrected.py)."""
    return corrected.corrected_cache(sub, name, 1, 2, args, REFS_OF[name], {0: "out"}, _probes(name, *args))


def _with_note(check, note):
    try:
        check()
    except Fail as e:
        raise Fail(str(e) + note) from None


def _dims(rng, N=None, Tq=None, additive=False):
    """(N, Tq, Tk, d, Dv) [, Dk, A]: Tq != Tk where possible, Dv != d, so a transpose cannot pass."""
    N = N or int(rng.integers(2, 5))
    Tq = Tq or int(rng.integers(2, 5))
    Tk = int(rng.integers(2, 6))
    while Tk == Tq:
        Tk = int(rng.integers(2, 7))
    d = int(rng.integers(2, 6))
    Dv = int(rng.integers(2, 6))
    while Dv == d:
        Dv = int(rng.integers(2, 7))
    if not additive:
        return N, Tq, Tk, d, Dv
    Dk = int(rng.integers(2, 6))
    while Dk in (d, Dv):
        Dk = int(rng.integers(2, 8))
    A = int(rng.integers(2, 6))
    while A in (d, Dk, Dv):
        A = int(rng.integers(2, 9))
    return N, Tq, Tk, d, Dv, Dk, A


def _mask(rng, kind, N, Tq, Tk, empty_rows=0):
    """None, 'causal' (Tq, Tk), 'padding' (N, 1, Tk), 'full' (N, Tq, Tk); every row keeps one key,
    except ``empty_rows`` rows that may attend to nothing."""
    if kind == "none":
        return None
    if kind == "causal":
        return np.tril(np.ones((Tq, Tk), dtype=bool), k=max(0, Tk - Tq))
    if kind == "padding":
        lengths = rng.integers(1, Tk + 1, size=N)
        lengths[0] = Tk - 1
        return (np.arange(Tk)[None, :] < lengths[:, None])[:, None, :]
    m = rng.random((N, Tq, Tk)) < 0.6
    m[np.arange(N)[:, None], np.arange(Tq)[None, :], rng.integers(0, Tk, size=(N, Tq))] = True
    for _ in range(empty_rows):
        m[rng.integers(0, N), rng.integers(0, Tq)] = False
    return m


def _sdpa_inputs(rng, N=None, Tq=None, dtype=np.float64):
    N, Tq, Tk, d, Dv = _dims(rng, N, Tq)
    return arr(rng, N, Tq, d, dtype=dtype), arr(rng, N, Tk, d, dtype=dtype), arr(rng, N, Tk, Dv, dtype=dtype)


def _add_inputs(rng, N=None, Tq=None, dtype=np.float64):
    N, Tq, Tk, d, Dv, Dk, A = _dims(rng, N, Tq, additive=True)
    p = {"W_q": 0.7 * arr(rng, A, d, dtype=dtype), "W_k": 0.7 * arr(rng, A, Dk, dtype=dtype),
         "w_v": arr(rng, 1, A, dtype=dtype)}
    return arr(rng, N, Tq, d, dtype=dtype), arr(rng, N, Tk, Dk, dtype=dtype), arr(rng, N, Tk, Dv, dtype=dtype), p


def _label(q, k, v, mask, extra=""):
    m = "no mask" if mask is None else f"mask {tuple(mask.shape)}"
    return (f"N={q.shape[0]}, Tq={q.shape[1]}, Tk={k.shape[1]}, d={q.shape[2]}, Dv={v.shape[2]}, {m}"
            + (f", {np.dtype(q.dtype).name}" if q.dtype != np.float64 else "") + extra)


def _check_out(out, ref, what, variants=None):
    try:
        check_array(out, ref, what)
    except Fail as e:
        hint = ""
        if variants is not None:
            try:
                hint = which_variant(out, variants())
            except Exception:  # a hint is optional: never let it break grading
                hint = ""
        raise Fail(str(e) + hint) from None


# ------------------------------------------------------------------ attention_forward
def _attention_forward_check(sub, q, k, v, mask, extra=""):
    out, _ = _forward(sub, "attention_forward", q, k, v, mask)
    ref = attention_ref(q, k, v, mask).astype(q.dtype)
    _check_out(out, ref, f"attention_forward ({_label(q, k, v, mask, extra)}) out",
               (lambda: attention_variants(q, k, v, mask)) if q.dtype == np.float64 else None)


@graded("attention_forward", points=3)
def test_attention_forward_parity(sub, rng):
    for kind, N in (("none", None), ("causal", None), ("padding", None), ("full", None), ("full", 1)):
        q, k, v = _sdpa_inputs(rng, N)
        _attention_forward_check(sub, q, k, v, _mask(rng, kind, q.shape[0], q.shape[1], k.shape[1]))


@graded("attention_forward", points=1)
def test_attention_forward_all_masked_rows(sub, rng):
    q, k, v = _sdpa_inputs(rng, Tq=4)
    mask = _mask(rng, "full", q.shape[0], 4, k.shape[1], empty_rows=2)
    out, _ = _forward(sub, "attention_forward", q, k, v, mask)
    what = f"attention_forward ({_label(q, k, v, mask)}, some queries may attend to nothing)"
    arr_out = np.asarray(getattr(out, "array", out))
    if isinstance(out, np.ndarray) and not np.all(np.isfinite(arr_out)):
        raise Fail(f"{what}: the output has NaN or inf entries; a query whose mask row is all False "
                   "gets weights 0 and output 0 (the notebook's rule), without dividing by zero")
    check_array(out, attention_ref(q, k, v, mask), f"{what} out (an all-masked row is 0)")


@graded("attention_forward", points=1)
def test_attention_forward_large_scores(sub, rng):
    q, k, v = _sdpa_inputs(rng)
    q, k = 40.0 * q, 40.0 * k  # scores in the thousands: exp overflows unless the row maximum is subtracted
    mask = _mask(rng, "padding", q.shape[0], q.shape[1], k.shape[1])
    out, _ = _forward(sub, "attention_forward", q, k, v, mask)
    check_array(out, attention_ref(q, k, v, mask), f"attention_forward ({_label(q, k, v, mask)}, scores of "
                "size ~1000: subtract each row's maximum over its allowed keys before np.exp) out")


@graded("attention_forward", points=1)
def test_attention_forward_float32(sub, rng):
    q, k, v = _sdpa_inputs(rng, dtype=np.float32)
    _attention_forward_check(sub, q, k, v, _mask(rng, "causal", q.shape[0], q.shape[1], k.shape[1]))


@graded("attention_forward", points=1)
def test_attention_forward_unmodified(sub, rng):
    q, k, v = _sdpa_inputs(rng)
    mask = _mask(rng, "full", q.shape[0], q.shape[1], k.shape[1])
    got, args, _ = sub.call_with_args("attention_forward", q.copy(), k.copy(), v.copy(), mask.copy())
    check_unmodified({"q": q, "k": k, "v": v, "mask": mask}, dict(zip(["q", "k", "v", "mask"], args)),
                     "attention_forward")
    out, _ = unpack(got, 2, "attention_forward")  # and the values: an answer of zeros earns nothing
    check_array(out, attention_ref(q, k, v, mask), f"attention_forward ({_label(q, k, v, mask)}) out")


# ----------------------------------------------------------------- attention_backward
def _scale_hint(got, ref, d, name):
    try:
        g = np.asarray(getattr(got, "array", got), np.float64)
        if g.shape == ref.shape and np.abs(ref).max() > 1e-6:
            for factor, sentence in ((np.sqrt(d), "is missing the 1/sqrt(d) of the scores"),
                                     (1 / np.sqrt(d), "carries 1/sqrt(d) twice"),
                                     (-1.0, "has the wrong sign")):
                if np.allclose(g, ref * factor, rtol=1e-6, atol=1e-9):
                    return f" (hint: {name} {sentence})"
    except Exception:
        pass
    return ""


def _attention_backward_check(sub, q, k, v, mask, dout, extra=""):
    cache, note = _repaired_forward(sub, "attention_forward", attention_intermediates(q, k, v, mask), q, k, v, mask)
    res, args, _ = sub.call_with_args("attention_backward", dout.copy(), cache)
    dq, dk, dv = unpack(res, 3, "attention_backward")
    _, (rq, rk, rv) = attention_ref(q, k, v, mask, dout)
    what = f"attention_backward ({_label(q, k, v, mask, extra)})"
    for got, ref, name in ((dq, rq, "dq"), (dk, rk, "dk"), (dv, rv, "dv")):
        try:
            check_array(got, ref.astype(q.dtype), f"{what} {name}")
        except Fail as e:
            raise Fail(str(e) + (_scale_hint(got, ref, q.shape[2], name) if q.dtype == np.float64 else "")
                       + note) from None
    check_unmodified({"dout": dout}, {"dout": args[0]}, "attention_backward")


@graded("attention_backward", points=3)
def test_attention_backward_parity(sub, rng):
    for kind, N in (("none", None), ("causal", None), ("padding", None), ("full", 1)):
        q, k, v = _sdpa_inputs(rng, N)
        mask = _mask(rng, kind, q.shape[0], q.shape[1], k.shape[1])
        _attention_backward_check(sub, q, k, v, mask, arr(rng, q.shape[0], q.shape[1], v.shape[2]))


@graded("attention_backward", points=2)
def test_attention_backward_numerical(sub, rng):
    q, k, v = _sdpa_inputs(rng)
    mask = _mask(rng, "full", q.shape[0], q.shape[1], k.shape[1])
    dout = arr(rng, q.shape[0], q.shape[1], v.shape[2])
    cache, note = _repaired_forward(sub, "attention_forward", attention_intermediates(q, k, v, mask), q, k, v, mask)
    grads = unpack(sub.call("attention_backward", dout, cache), 3, "attention_backward")
    for i, name in enumerate(("dq", "dk", "dv")):
        flat, num = numgrad(lambda *a: [attention_ref(*a, mask)], [q, k, v], i, [dout], rng)
        _with_note(lambda: check_numgrad(grads[i], flat, num, f"attention_backward {name} ({_label(q, k, v, mask)})"),
                   note)


@graded("attention_backward", points=1)
def test_attention_backward_all_masked_rows(sub, rng):
    q, k, v = _sdpa_inputs(rng, Tq=4)
    mask = _mask(rng, "full", q.shape[0], 4, k.shape[1], empty_rows=2)
    _attention_backward_check(sub, q, k, v, mask, arr(rng, q.shape[0], 4, v.shape[2]),
                              "; some queries may attend to nothing: their rows get no gradient")


@graded("attention_backward", points=1)
def test_attention_backward_float32(sub, rng):
    q, k, v = _sdpa_inputs(rng, dtype=np.float32)
    mask = _mask(rng, "padding", q.shape[0], q.shape[1], k.shape[1])
    _attention_backward_check(sub, q, k, v, mask, arr(rng, q.shape[0], q.shape[1], v.shape[2], dtype=np.float32))


# --------------------------------------------------------- additive_attention_forward
def _add_label(q, k, v, p, mask, extra=""):
    return _label(q, k, v, mask, f", Dk={k.shape[2]}, A={p['W_q'].shape[0]}{extra}").replace("d=", "Dq=", 1)


def _additive_forward_check(sub, q, k, v, p, mask, extra=""):
    out, _ = _forward(sub, "additive_attention_forward", q, k, v, p, mask)
    ref = additive_ref(q, k, v, p, mask).astype(q.dtype)
    _check_out(out, ref, f"additive_attention_forward ({_add_label(q, k, v, p, mask, extra)}) out",
               (lambda: additive_variants(q, k, v, p, mask)) if q.dtype == np.float64 else None)


@graded("additive_attention_forward", points=3)
def test_additive_attention_forward_parity(sub, rng):
    for kind, N in (("none", None), ("padding", None), ("full", None), ("causal", 1)):
        q, k, v, p = _add_inputs(rng, N)
        _additive_forward_check(sub, q, k, v, p, _mask(rng, kind, q.shape[0], q.shape[1], k.shape[1]))
    q, k, v, p = _add_inputs(rng)
    p["w_v"] = 500.0 * p["w_v"]  # scores in the hundreds: exp overflows unless the row maximum is subtracted
    _additive_forward_check(sub, q, k, v, p, _mask(rng, "full", q.shape[0], q.shape[1], k.shape[1]),
                            "; large scores: subtract each row's maximum before np.exp")


@graded("additive_attention_forward", points=1)
def test_additive_attention_forward_all_masked_float32(sub, rng):
    q, k, v, p = _add_inputs(rng, Tq=4)
    _additive_forward_check(sub, q, k, v, p, _mask(rng, "full", q.shape[0], 4, k.shape[1], empty_rows=2),
                            "; some queries may attend to nothing: their output is 0")
    q, k, v, p = _add_inputs(rng, dtype=np.float32)
    _additive_forward_check(sub, q, k, v, p, _mask(rng, "padding", q.shape[0], q.shape[1], k.shape[1]))


@graded("additive_attention_forward", points=1)
def test_additive_attention_forward_unmodified(sub, rng):
    q, k, v, p = _add_inputs(rng)
    mask = _mask(rng, "full", q.shape[0], q.shape[1], k.shape[1])
    got, args, _ = sub.call_with_args("additive_attention_forward", q.copy(), k.copy(), v.copy(),
                                      {n: a.copy() for n, a in p.items()}, mask.copy())
    check_unmodified({"q": q, "k": k, "v": v, "params": p, "mask": mask},
                     dict(zip(["q", "k", "v", "params", "mask"], args)), "additive_attention_forward")
    out, _ = unpack(got, 2, "additive_attention_forward")
    check_array(out, additive_ref(q, k, v, p, mask), f"additive_attention_forward ({_add_label(q, k, v, p, mask)}) out")


# -------------------------------------------------------- additive_attention_backward
def _additive_backward_check(sub, q, k, v, p, mask, dout, extra=""):
    cache, note = _repaired_forward(sub, "additive_attention_forward", additive_intermediates(q, k, v, p, mask),
                                    q, k, v, p, mask)
    res, args, _ = sub.call_with_args("additive_attention_backward", dout.copy(), cache)
    dq, dk, dv, grads = unpack(res, 4, "additive_attention_backward")
    _with_note(lambda: _additive_backward_values(q, k, v, p, mask, dout, extra, dq, dk, dv, grads), note)
    check_unmodified({"dout": dout}, {"dout": args[0]}, "additive_attention_backward")


def _additive_backward_values(q, k, v, p, mask, dout, extra, dq, dk, dv, grads):
    _, (rq, rk, rv, rg) = additive_ref(q, k, v, p, mask, dout)
    what = f"additive_attention_backward ({_add_label(q, k, v, p, mask, extra)})"
    check_array(dq, rq.astype(q.dtype), f"{what} dq (each query's gradient sums over the keys)")
    check_array(dk, rk.astype(q.dtype), f"{what} dk (each key's gradient sums over the queries)")
    check_array(dv, rv.astype(q.dtype), f"{what} dv")
    if not isinstance(grads, dict) or sorted(grads) != sorted(PKEYS):
        raise Fail(f"{what}: grads must be a dict with keys {sorted(PKEYS)}, got "
                   f"{sorted(grads) if isinstance(grads, dict) else type(grads).__name__}")
    for n in PKEYS:
        check_array(grads[n], rg[n].astype(q.dtype), f"{what} grads[{n!r}] (summed over N and every position)")


@graded("additive_attention_backward", points=3)
def test_additive_attention_backward_parity(sub, rng):
    for kind, N in (("none", None), ("padding", None), ("full", 1)):
        q, k, v, p = _add_inputs(rng, N)
        mask = _mask(rng, kind, q.shape[0], q.shape[1], k.shape[1])
        _additive_backward_check(sub, q, k, v, p, mask, arr(rng, q.shape[0], q.shape[1], v.shape[2]))


@graded("additive_attention_backward", points=2)
def test_additive_attention_backward_numerical(sub, rng):
    q, k, v, p = _add_inputs(rng)
    mask = _mask(rng, "full", q.shape[0], q.shape[1], k.shape[1])
    dout = arr(rng, q.shape[0], q.shape[1], v.shape[2])
    cache, note = _repaired_forward(sub, "additive_attention_forward", additive_intermediates(q, k, v, p, mask),
                                    q, k, v, p, mask)
    dq, dk, dv, grads = unpack(sub.call("additive_attention_backward", dout, cache), 4, "additive_attention_backward")
    if not isinstance(grads, dict):
        raise Fail("additive_attention_backward: grads must be a dict")
    targets = [(0, dq, "dq"), (1, dk, "dk"), (2, dv, "dv")] + [((3, n), grads.get(n), f"grads[{n!r}]") for n in PKEYS]
    for target, got, name in targets:
        if got is None:
            raise Fail(f"additive_attention_backward: {name} is missing")
        flat, num = numgrad(lambda *a: [additive_ref(*a, mask)], [q, k, v, p], target, [dout], rng)
        _with_note(lambda: check_numgrad(got, flat, num, f"additive_attention_backward {name}"), note)


@graded("additive_attention_backward", points=1)
def test_additive_attention_backward_all_masked_rows(sub, rng):
    q, k, v, p = _add_inputs(rng, Tq=4)
    mask = _mask(rng, "full", q.shape[0], 4, k.shape[1], empty_rows=2)
    _additive_backward_check(sub, q, k, v, p, mask, arr(rng, q.shape[0], 4, v.shape[2]),
                             "; some queries may attend to nothing: they get no gradient")


@graded("additive_attention_backward", points=1)
def test_additive_attention_backward_float32(sub, rng):
    q, k, v, p = _add_inputs(rng, dtype=np.float32)
    mask = _mask(rng, "causal", q.shape[0], q.shape[1], k.shape[1])
    _additive_backward_check(sub, q, k, v, p, mask, arr(rng, q.shape[0], q.shape[1], v.shape[2], dtype=np.float32))


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("attention_numpy:together", points=1)
def test_attention_numpy_together(sub, rng):
    """The whole chain as a training loop runs it, for both attentions: the forward, then the backward on
    its own cache (kept in the student's process, never repaired), against torch autograd. Its own graded
    name (1 point, no answer cell): a mistake anywhere shows here, not as a loss booked on a function
    that is right."""
    q, k, v = _sdpa_inputs(rng)
    mask = _mask(rng, "padding", q.shape[0], q.shape[1], k.shape[1])
    dout = arr(rng, q.shape[0], q.shape[1], v.shape[2])
    what = f"the whole chain (attention_forward then attention_backward, {_label(q, k, v, mask)}) against torch"
    out, cache = _forward(sub, "attention_forward", q, k, v, mask)
    check_array(out, attention_ref(q, k, v, mask), f"{what}: out")
    grads = unpack(sub.call("attention_backward", dout, cache), 3, "attention_backward")
    _, ref = attention_ref(q, k, v, mask, dout)
    for got, want, name in zip(grads, ref, ("dq", "dk", "dv")):
        check_array(got, want, f"{what}: {name}")
    q, k, v, p = _add_inputs(rng)
    mask = _mask(rng, "full", q.shape[0], q.shape[1], k.shape[1])
    dout = arr(rng, q.shape[0], q.shape[1], v.shape[2])
    what = (f"the whole chain (additive_attention_forward then additive_attention_backward, "
            f"{_add_label(q, k, v, p, mask)}) against torch")
    out, cache = _forward(sub, "additive_attention_forward", q, k, v, p, mask)
    check_array(out, additive_ref(q, k, v, p, mask), f"{what}: out")
    dq, dk, dv, g = unpack(sub.call("additive_attention_backward", dout, cache), 4, "additive_attention_backward")
    _, (rq, rk, rv, rg) = additive_ref(q, k, v, p, mask, dout)
    for got, want, name in ((dq, rq, "dq"), (dk, rk, "dk"), (dv, rv, "dv")):
        check_array(got, want, f"{what}: {name}")
    if not isinstance(g, dict) or sorted(g) != sorted(PKEYS):
        raise Fail(f"{what}: grads should be a dict with keys {sorted(PKEYS)}")
    for key in PKEYS:
        check_array(g[key], rg[key], f"{what}: grads[{key!r}]")
