"""Hidden tests for solutions/ch10_ctc/ctc_numpy.ipynb (book: ch10_ctc).

Expected values come from the trusted side only: torch.nn.functional.ctc_loss in float64 (loss and the
gradient on the logits), a per-sequence loop for log alpha, central differences, an exhaustive search
over every label string of tiny vocabularies (``autograder/testkit/reference/ctc.py``). ctc_backward is
judged on the student's own forward: their ctc_forward's cache stays in their process (``call_keep``)
and goes back to their ctc_backward, repaired there first with the correct forward's values when their
loss is wrong on a test's inputs (``testkit/repair.py``).
"""
import numpy as np

from autograder.core.api import Fail, Remote, check_array, check_unmodified, graded, unpack
from autograder.testkit.checks import with_hint
from autograder.core.engine import StudentError
from autograder.testkit import corrected, repair
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference import ctc as ref

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml


def _batch(rng, N=None, T=None, C=None, S=None, repeats=False, blank=0, empty=True):
    """Logits (N, T, C), padded targets (N, S), lengths: varying across the batch, every sequence
    possible (input_lengths at least the minimum length of its label)."""
    N = int(rng.integers(2, 5)) if N is None else N
    C = int(rng.integers(3, 7)) if C is None else C
    S = int(rng.integers(2, 5)) if S is None else S
    T = int(rng.integers(2 * S + 2, 2 * S + 6)) if T is None else T
    labels = [c for c in range(C) if c != blank]
    targets = rng.choice(labels, size=(N, S))
    if repeats:  # a doubled label in every row
        targets[:, 1] = targets[:, 0]
    tl = rng.integers(0 if empty else 1, S + 1, size=N)
    tl[0] = S
    if N > 1 and empty:
        tl[-1] = 0
    need = np.array([int(tl[n]) + int(np.sum(targets[n, 1:tl[n]] == targets[n, :tl[n] - 1])) if tl[n] else 1
                     for n in range(N)])
    il = np.array([int(rng.integers(max(need[n], 1), T + 1)) for n in range(N)])
    il[0] = T
    logits = 2.0 * rng.standard_normal((N, T, C))
    return logits, targets, il, tl


def _label(logits, targets, il, tl):
    return (f"N={logits.shape[0]}, T={logits.shape[1]}, C={logits.shape[2]}, S={targets.shape[1]}, "
            f"input_lengths={list(map(int, il))}, target_lengths={list(map(int, tl))}")


def check_loss(got, want, what):
    """check_array, where an infinite expected entry must be that infinity exactly (a finite loss where no
    path fits fails; so does a finite log alpha for a state no path reaches)."""
    want = np.asarray(want)
    inf = ~np.isfinite(want)
    if isinstance(got, np.ndarray) and got.shape == want.shape and inf.any():
        g = got.astype(np.float64)
        wrong = inf & ~(g == want)
        if wrong.any():
            i = tuple(int(k) for k in np.argwhere(wrong)[0])
            why = ("no path fits in input_lengths steps: a label needs one step per label plus one blank between "
                   "each pair of equal neighbours" if want.ndim == 1 else "no path reaches this state by this step")
            raise Fail(f"{what}: entry {i if len(i) > 1 else i[0]} is {g[i]:.6g}, expected {want[i]} ({why})")
        got = np.where(inf, 0, got).astype(got.dtype)
        want = np.where(inf, 0, want).astype(want.dtype)
    check_array(got, want, what)


def _forward(sub, logits, targets, il, tl, blank=0, keep=False):
    args = (logits, targets, il, tl) + ((blank,) if blank else ())
    got = sub.call_keep("ctc_forward", (2,), *args) if keep else sub.call("ctc_forward", *args)
    return unpack(got, 3, "ctc_forward")


def _loss_check(sub, logits, targets, il, tl, blank=0, what=""):
    loss, _, _ = _forward(sub, logits, targets, il, tl, blank)
    want, _ = ref.torch_ctc(logits, targets, il, tl, blank)
    with_hint(lambda: check_loss(loss, want.astype(logits.dtype),
                                  f"ctc_forward loss ({_label(logits, targets, il, tl)}{what})"),
              lambda: ref.hint_ctc_loss(logits, targets, il, tl, loss, blank))
    return loss


# ------------------------------------------------------------------------ ctc_forward
@graded("ctc_forward", points=3)
def test_ctc_forward_loss(sub, rng):
    for kw in ({}, {}, {"N": 1}, {"repeats": True}):
        _loss_check(sub, *_batch(rng, **kw))


@graded("ctc_forward", points=2)
def test_ctc_forward_log_alpha(sub, rng):
    logits, targets, il, tl = _batch(rng, repeats=True)
    _, la, _ = _forward(sub, logits, targets, il, tl)
    N, T, C = logits.shape
    L = 2 * targets.shape[1] + 1
    if not isinstance(la, np.ndarray) or la.shape != (N, T, L):
        raise Fail(f"ctc_forward log_alpha: expected an array of shape (N, T, 2S + 1) = {(N, T, L)}, got "
                   f"{getattr(la, 'shape', type(la).__name__)}")
    alphas, _ = ref.alpha(logits, targets, il, tl)
    for n, a in enumerate(alphas):
        t_n, l_n = a.shape
        check_loss(la[n, :t_n, :l_n], a, f"ctc_forward log_alpha[{n}, :{t_n}, :{l_n}] "
                    f"({_label(logits, targets, il, tl)}; -inf where a state cannot be reached)")


@graded("ctc_forward", points=2)
def test_ctc_forward_repeats_minimum_length_impossible(sub, rng):
    C = 4
    targets = np.array([[1, 1, 2], [3, 3, 3], [2, 1, 2], [1, 1, 0]])
    tl = np.array([3, 3, 3, 2])
    need = np.array([4, 5, 3, 3])  # U + number of equal neighbours
    logits = rng.standard_normal((4, 6, C))
    _loss_check(sub, logits, targets, need, tl, what="; input_lengths = the minimum length of each label")
    _loss_check(sub, logits, targets, need + 1, tl, what="; one step more than the minimum")
    logits = rng.standard_normal((4, 6, C))
    il = need - 1  # one step short: no path fits
    loss, _, _ = _forward(sub, logits, targets, il, tl)
    check_loss(loss, np.full(4, np.inf), f"ctc_forward loss ({_label(logits, targets, il, tl)}: one step "
                "short of the minimum length, every loss must be inf)")


@graded("ctc_forward", points=1)
def test_ctc_forward_long_sequence(sub, rng):
    logits = 6.0 * rng.standard_normal((2, 160, 7))
    targets = np.array([[1, 2, 3, 3, 4], [6, 5, 4, 0, 0]])
    _loss_check(sub, logits, targets, np.array([160, 131]), np.array([5, 3]),
                what="; a long sequence: its probabilities underflow in linear space")
    logits = rng.standard_normal((2, 60, 6)) * np.array([30.0, 0.1])[:, None, None]  # alphas far apart
    _loss_check(sub, logits, np.array([[1, 2, 2, 3], [4, 5, 5, 1]]), np.array([60, 60]), np.array([4, 4]),
                what="; one confident and one uncertain sequence: their log alphas lie hundreds apart, so "
                "each log-sum-exp needs its own max (along the axis it sums over), not one for the whole batch")
    logits = rng.standard_normal((2, 9, 5)) + 900.0 * rng.integers(0, 2, size=(2, 9, 1))  # large, per-step offsets
    _loss_check(sub, logits, np.array([[1, 2], [3, 3]]), np.array([9, 9]), np.array([2, 2]),
                what="; logits offset by 900 at some steps: the log-softmax must shift each step by its own max")


@graded("ctc_forward", points=1)
def test_ctc_forward_blank_not_zero(sub, rng):
    C = 5
    logits, targets, il, tl = _batch(rng, C=C, blank=C - 1, repeats=True)
    _loss_check(sub, logits, targets, il, tl, blank=C - 1, what=f", blank={C - 1}")


@graded("ctc_forward", points=1)
def test_ctc_forward_float32_unmodified(sub, rng):
    logits, targets, il, tl = _batch(rng)
    x32 = logits.astype(np.float32)
    got, args, _ = sub.call_with_args("ctc_forward", x32.copy(), targets.copy(), il.copy(), tl.copy())
    check_unmodified({"logits": x32, "targets": targets, "input_lengths": il, "target_lengths": tl},
                     dict(zip(["logits", "targets", "input_lengths", "target_lengths"], args)), "ctc_forward")
    loss, la, _ = unpack(got, 3, "ctc_forward")
    want, _ = ref.torch_ctc(x32.astype(np.float64), targets, il, tl)
    check_array(loss, want.astype(np.float32), f"ctc_forward loss (float32 logits; {_label(logits, targets, il, tl)})")
    if getattr(la, "dtype", None) != np.float32:
        raise Fail(f"ctc_forward log_alpha: dtype {getattr(la, 'dtype', type(la).__name__)}, expected float32 "
                   "(keep the dtype of the logits)")


# ----------------------------------------------------------------------- ctc_backward
def _backward_check(sub, logits, targets, il, tl, dloss, blank=0, what=""):
    cache, note = _repaired_forward(sub, logits, targets, il, tl, blank)
    got, args, _ = sub.call_with_args("ctc_backward", dloss.copy(), cache)
    _, want = ref.torch_ctc(logits, targets, il, tl, blank, dloss=dloss)
    _with_note(lambda: check_array(got, want.astype(logits.dtype),
                                   f"ctc_backward dlogits ({_label(logits, targets, il, tl)}{what}; softmax minus the "
                                   "occupancy of each class, times dloss[n]; zero at steps t >= input_lengths[n])"), note)
    check_unmodified({"dloss": dloss}, {"dloss": args[0]}, "ctc_backward")
    return got


def _repaired_forward(sub, logits, targets, il, tl, blank=0):
    """(cache, note): the student's own ctc_forward's cache, repaired in their process with the correct
    forward's values when their loss is wrong on these inputs (testkit/repair.py)."""
    args = (logits, targets, il, tl, blank)
    try:
        loss, _, cache = _forward(sub, *args, keep=True)
    except StudentError as first:  # a cache laid out by a one-edit correction of their forward, or nothing
        fixed = _corrected(sub, args) if repair.worth_probing(first) else None
        if fixed is None:
            raise first from None
        return fixed, corrected.note("ctc_forward")
    if not isinstance(cache, Remote):
        raise Fail("ctc_forward should return (loss, log_alpha, cache)")
    refs = ref.intermediates(logits, targets, il, tl, blank)
    try:
        right = np.allclose(np.asarray(loss, np.float64), refs["loss"], rtol=1e-4, atol=1e-6)
    except Exception:  # noqa: BLE001 - not an array of the right shape: wrong
        right = False
    fixed = None if right else _corrected(sub, args)
    if fixed is not None:
        return fixed, corrected.note("ctc_forward")
    return cache, ("" if right else repair.note(repair.repair(sub, cache, refs, {"loss": loss}), "ctc_forward"))


def _probes(logits, targets, il, tl, blank):
    """Other inputs of the same kind (new logits; the other float dtype), drawn with a fixed seed."""
    rng = np.random.default_rng(10)
    other = np.float32 if logits.dtype == np.float64 else np.float64
    return [(rng.standard_normal(logits.shape).astype(logits.dtype), targets, il, tl, blank),
            (rng.standard_normal(logits.shape).astype(other), targets, il, tl, blank)]


def _corrected(sub, args):
    """A cache laid out by a one-edit correction of the student's own ctc_forward (testkit/corrected.py)."""
    return corrected.corrected_cache(sub, "ctc_forward", 2, 3, args, ref.intermediates, {0: "loss"}, _probes(*args))


def _with_note(check, note):
    try:
        check()
    except Fail as e:
        raise Fail(str(e) + note) from None


@graded("ctc_backward", points=3)
def test_ctc_backward_parity(sub, rng):
    for kw in ({}, {"repeats": True}, {"N": 1}):
        logits, targets, il, tl = _batch(rng, **kw)
        _backward_check(sub, logits, targets, il, tl, rng.standard_normal(len(il)))


@graded("ctc_backward", points=1)
def test_ctc_backward_numerical(sub, rng):
    logits, targets, il, tl = _batch(rng, N=2, T=5, C=3, S=2, repeats=True)
    dloss = rng.standard_normal(2)
    cache, note = _repaired_forward(sub, logits, targets, il, tl)
    got = sub.call("ctc_backward", dloss, cache)
    num = ref.numeric_logit_grad(logits, targets, il, tl, dloss)
    _with_note(lambda: check_array(got, num, f"ctc_backward dlogits against central differences of the loss "
                                   f"({_label(logits, targets, il, tl)})", rtol=1e-5, atol=1e-7), note)


@graded("ctc_backward", points=1)
def test_ctc_backward_minimum_length_and_impossible(sub, rng):
    targets = np.array([[1, 1, 2], [3, 3, 3], [2, 1, 2]])
    tl = np.array([3, 3, 3])
    logits = rng.standard_normal((3, 6, 4))
    _backward_check(sub, logits, targets, np.array([4, 5, 3]), tl, rng.standard_normal(3),
                    what="; input_lengths = the minimum length")
    il = np.array([6, 4, 3])  # the second sequence needs 5 steps: its loss is inf, its gradient zero
    dl = rng.standard_normal(3)
    got = _backward_check(sub, logits, targets, il, tl, dl, what="; sequence 1 is impossible: zero gradient, no NaN")
    if not np.all(np.isfinite(got)):
        raise Fail("ctc_backward: NaN or inf in dlogits; an impossible sequence must get a zero gradient")


@graded("ctc_backward", points=1)
def test_ctc_backward_float32_blank(sub, rng):
    C = 5
    logits, targets, il, tl = _batch(rng, C=C, blank=2)
    _backward_check(sub, logits, targets, il, tl, rng.standard_normal(len(il)), blank=2, what=", blank=2")
    logits, targets, il, tl = _batch(rng)
    x32 = logits.astype(np.float32)
    cache, note = _repaired_forward(sub, x32, targets, il, tl)
    got = sub.call("ctc_backward", np.ones(len(il), np.float32), cache)
    _, want = ref.torch_ctc(x32.astype(np.float64), targets, il, tl, dloss=np.ones(len(il)))
    _with_note(lambda: check_array(got, want.astype(np.float32),
                                   f"ctc_backward dlogits (float32 logits; {_label(logits, targets, il, tl)})"), note)


# ------------------------------------------------------------------ ctc_greedy_decode
def _decoded(got, N, what):
    if not isinstance(got, (list, tuple)) or len(got) != N:
        raise Fail(f"{what}: expected a list of {N} label lists, got {type(got).__name__}"
                   + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))
    out = []
    for row in got:
        if isinstance(row, np.ndarray):
            row = row.tolist()
        if not isinstance(row, (list, tuple)):
            raise Fail(f"{what}: each decoded string must be a list of ints, got {type(row).__name__}")
        out.append([int(c) for c in row])
    return out


@graded("ctc_greedy_decode", points=2)
def test_ctc_greedy_decode_parity(sub, rng):
    for _ in range(3):
        N, T, C = int(rng.integers(2, 6)), int(rng.integers(5, 15)), int(rng.integers(3, 6))
        logits = rng.standard_normal((N, T, C))
        logits[..., 0] += 0.5  # blanks often, as a trained network
        il = rng.integers(1, T + 1, size=N)
        il[0] = T
        got = _decoded(sub.call("ctc_greedy_decode", logits, il), N, "ctc_greedy_decode")
        want = ref.greedy(logits, il)
        if got != want:
            n = next(i for i in range(N) if got[i] != want[i])
            raise Fail(f"ctc_greedy_decode: sequence {n} (input_lengths {int(il[n])}) decodes to {got[n]}, expected "
                       f"{want[n]} (argmax per step over the first input_lengths[n] steps, merge repeats, drop blanks)")


@graded("ctc_greedy_decode", points=1)
def test_ctc_greedy_decode_repeats_blank(sub, rng):
    paths = ["33113003", "01110200", "22222222", "00000000"]
    C = 4
    logits = np.full((4, 8, C), -3.0) + 0.1 * rng.standard_normal((4, 8, C))
    for n, p in enumerate(paths):
        logits[n, np.arange(8), [int(c) for c in p]] = 2.0
    for blank in (0, 3):
        got = _decoded(sub.call("ctc_greedy_decode", logits, np.full(4, 8), blank), 4, "ctc_greedy_decode")
        want = ref.greedy(logits, np.full(4, 8), blank)
        if got != want:
            n = next(i for i in range(4) if got[i] != want[i])
            raise Fail(f"ctc_greedy_decode (blank={blank}): the path {paths[n]} reads {want[n]}, got {got[n]} "
                       "(merge repeats first, then drop blanks)")


# ------------------------------------------------------------- ctc_prefix_beam_search
def _beam_call(sub, lp, width, blank=0):
    got = unpack(sub.call("ctc_prefix_beam_search", lp, width, *((blank,) if blank else ())), 2,
                 "ctc_prefix_beam_search")
    best, score = got
    if isinstance(best, np.ndarray):
        best = best.tolist()
    if not isinstance(best, (list, tuple)):
        raise Fail(f"ctc_prefix_beam_search: best must be a list of ints, got {type(best).__name__}")
    try:
        score = float(np.asarray(score))
    except (TypeError, ValueError):
        raise Fail(f"ctc_prefix_beam_search: log_prob must be a number, got {type(score).__name__}") from None
    return tuple(int(c) for c in best), score


def _random_lp(rng, T, C, peaked=1.5):
    return ref.log_softmax(peaked * rng.standard_normal((T, C)))


def _exhaustive_case(sub, rng, T, C, blank=0):
    for _ in range(20):  # a case whose best string is clear (no near tie)
        lp = _random_lp(rng, T, C)
        ranked = ref.exhaustive_best(lp, blank)
        if ranked[0][1] - ranked[1][1] > 1e-3:
            break
    best, score = _beam_call(sub, lp, 10 ** 4, blank)
    what = f"ctc_prefix_beam_search (T={T}, C={C}, blank={blank}, a beam wide enough to keep every prefix)"
    if best != ranked[0][0]:
        raise Fail(f"{what}: best {list(best)}, expected {list(ranked[0][0])}, the most probable string of an "
                   "exhaustive search (sum every path of a prefix; a repeated label grows the prefix only "
                   "after a blank)")
    if not abs(score - ranked[0][1]) <= 1e-6 * max(1.0, abs(ranked[0][1])):
        raise Fail(f"{what}: log_prob {score:.8g}, expected {ranked[0][1]:.8g}, ln p(best | x) over all its paths")


@graded("ctc_prefix_beam_search", points=3)
def test_ctc_prefix_beam_search_exhaustive(sub, rng):
    for T, C in ((3, 2), (4, 3), (5, 3), (4, 4)):
        _exhaustive_case(sub, rng, T, C)
    _exhaustive_case(sub, rng, 4, 3, blank=2)


@graded("ctc_prefix_beam_search", points=1)
def test_ctc_prefix_beam_search_best_string_not_best_path(sub, rng):
    # the best path is all blanks (0.6^2 = 0.36) but '1' has three paths (0.64)
    lp = np.log(np.tile([0.6, 0.4], (2, 1)))  # (T=2, C=2)
    best, score = _beam_call(sub, lp, 4)
    if best != (1,) or abs(score - np.log(0.64)) > 1e-9:
        raise Fail(f"ctc_prefix_beam_search: on p(blank) = 0.6, p(1) = 0.4 at both of two steps, got {list(best)} "
                   f"with log_prob {score:.6g}; expected [1] with ln 0.64 (paths 11, 1-, -1: sum a prefix's paths)")
    # '11' needs the blank between its copies: best here is '11' via 1-1
    lp = np.log(np.array([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]]))
    best, score = _beam_call(sub, lp, 8)
    want = ref.exhaustive_best(lp)[0]
    if best != want[0] or abs(score - want[1]) > 1e-9:
        raise Fail(f"ctc_prefix_beam_search: got {list(best)} ({score:.6g}), expected {list(want[0])} ({want[1]:.6g}) "
                   "for p(1) = 0.9, 0.2, 0.9 (the path 1-1 reads 11)")


@graded("ctc_prefix_beam_search", points=1)
def test_ctc_prefix_beam_search_narrow_beam(sub, rng):
    for width, T, C in ((1, 6, 4), (2, 7, 4), (3, 8, 5)):
        for _ in range(20):
            lp = _random_lp(rng, T, C)
            beams = ref.prefix_beam(lp, width)
            if len(beams) < 2 or beams[0][1] - beams[1][1] > 1e-3:
                break
        best, score = _beam_call(sub, lp, width)
        if best != beams[0][0] or abs(score - beams[0][1]) > 1e-6 * max(1.0, abs(beams[0][1])):
            raise Fail(f"ctc_prefix_beam_search (beam_width={width}, T={T}, C={C}): got {list(best)} ({score:.6g}), "
                       f"expected {list(beams[0][0])} ({beams[0][1]:.6g}); keep exactly the beam_width most "
                       "probable prefixes after each step")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("ctc_numpy:together", points=1)
def test_ctc_numpy_together(sub, rng):
    """The whole chain as a training loop runs it: ctc_forward, then ctc_backward on its own cache (kept in
    the student's process, never repaired), against torch.nn.functional.ctc_loss. Its own graded name (1
    point, no answer cell): a mistake anywhere shows here, not as a loss booked on a function that is
    right."""
    logits, targets, il, tl = _batch(rng, repeats=True)
    dloss = rng.standard_normal(len(il))
    what = f"the whole chain (ctc_forward then ctc_backward, {_label(logits, targets, il, tl)}) against torch"
    loss, _, cache = _forward(sub, logits, targets, il, tl, keep=True)
    want, _ = ref.torch_ctc(logits, targets, il, tl)
    check_loss(loss, want, f"{what}: loss")
    got = sub.call("ctc_backward", dloss, cache)
    _, dlogits = ref.torch_ctc(logits, targets, il, tl, dloss=dloss)
    check_array(got, dlogits, f"{what}: dlogits")
