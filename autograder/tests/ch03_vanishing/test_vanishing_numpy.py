"""Hidden tests for solutions/ch03_vanishing/vanishing_numpy.ipynb (book: ch03_vanishing).

Clipping is compared with torch.nn.utils.clip_grad_norm_ / clip_grad_value_ on copies; the gradient
norms across time lags with torch autograd through torch.nn.RNN (float64); the adding problem with its
definition (the variant of Le, Jaitly and Hinton 2015, as in the contract).
"""
import numpy as np
import torch

from autograder.core.api import Fail, Remote, check_scalar, check_type, check_unmodified, graded, unpack
from autograder.core.engine import Missing, StudentError
from autograder.testkit.checks import check_strict
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml



def _grads(rng, dtype=np.float64, n=None, scale=1.0):
    shapes = [(3, 4), (4,), (2, 3, 2), (5, 1)]
    names = ["weight_ih", "bias_ih", "conv", "weight_out"]
    n = n or len(shapes)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in zip(names[:n], shapes[:n])}


def _torch_clip_norm(grads, max_norm):
    ps = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g.astype(np.float64))
        ps.append(p)
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
    return {k: p.grad.numpy().astype(g.dtype) for (k, g), p in zip(grads.items(), ps)}, float(total)


def _check_dict(got, ref, what, atol=None, rtol=5e-6, detail=""):
    # rtol 5e-6: forgetting the contract's 1e-6 in max_norm / (total_norm + 1e-6) is a relative change of
    # about 1e-6 here; only test_clip_grad_norm_epsilon_and_zero (tiny norms) is about that mistake.
    if not isinstance(got, dict) or sorted(got) != sorted(ref):
        keys = sorted(got) if isinstance(got, dict) else type(got).__name__
        raise Fail(f"{what}: expected a dict with keys {sorted(ref)}, got {keys}")
    for k in ref:
        check_strict(got[k], ref[k], f"{what}[{k!r}]{detail}", atol=atol,
                     rtol=rtol if ref[k].dtype == np.float64 else None)


# ---------------------------------------------------------------------- clip_grad_norm
@graded("clip_grad_norm", points=2)
def test_clip_grad_norm_parity(sub, rng):
    for max_norm in (0.5, 2.0):
        g = _grads(rng, scale=1.0)
        clipped, total = unpack(sub.call("clip_grad_norm", g, max_norm), 2, "clip_grad_norm")
        ref, rtotal = _torch_clip_norm(g, max_norm)
        check_scalar(total, rtotal, f"clip_grad_norm total_norm (the global L2 norm over every array)",
                     rtol=1e-9)
        _check_dict(clipped, ref, f"clip_grad_norm(grads, max_norm={max_norm}) clipped")


@graded("clip_grad_norm", points=2)
def test_clip_grad_norm_global(sub, rng):
    # Each array alone is below max_norm, together they are above: only a global norm clips them.
    g = {"weight_hh": np.full((2, 2), 0.3), "bias_hh": np.full(3, 0.35), "weight_ih": np.full((3, 1), -0.3)}
    clipped, total = unpack(sub.call("clip_grad_norm", g, 0.8), 2, "clip_grad_norm")
    ref, rtotal = _torch_clip_norm(g, 0.8)
    check_scalar(total, rtotal, "clip_grad_norm total_norm when every array is small but their global norm is "
                 "not", rtol=1e-9)
    _check_dict(clipped, ref, "clip_grad_norm with one global norm over every array (not one norm per "
                "array), clipped")


@graded("clip_grad_norm", points=1)
def test_clip_grad_norm_below_threshold(sub, rng):
    g = _grads(rng, scale=0.1)
    clipped, total = unpack(sub.call("clip_grad_norm", g, 100.0), 2, "clip_grad_norm")
    ref, rtotal = _torch_clip_norm(g, 100.0)
    check_scalar(total, rtotal, "clip_grad_norm total_norm", rtol=1e-9)
    _check_dict(clipped, ref, "clip_grad_norm below max_norm (the factor is capped at 1: never scale up)")


@graded("clip_grad_norm", points=1)
def test_clip_grad_norm_epsilon_and_zero(sub, rng):
    g = {"a": np.array([3e-7, -4e-7]), "b": np.zeros((2, 2))}  # norm 5e-7, comparable to the 1e-6
    clipped, _ = unpack(sub.call("clip_grad_norm", g, 1e-7), 2, "clip_grad_norm")
    ref, _ = _torch_clip_norm(g, 1e-7)
    _check_dict(clipped, ref, "clip_grad_norm with a tiny norm (the factor is max_norm / (total_norm + 1e-6))",
                atol=1e-16)
    z = {"a": np.zeros(3), "b": np.zeros((2, 1))}
    clipped, total = unpack(sub.call("clip_grad_norm", z, 1.0), 2, "clip_grad_norm")
    check_scalar(total, 0.0, "clip_grad_norm total_norm of zero gradients")
    _check_dict(clipped, z, "clip_grad_norm of zero gradients (no division by zero)")


@graded("clip_grad_norm", points=1)
def test_clip_grad_norm_float32_unmodified(sub, rng):
    g = _grads(rng, np.float32, scale=2.0)
    (clipped, total), args, _ = sub.call_with_args("clip_grad_norm", {k: v.copy() for k, v in g.items()}, 1.0)
    ref, rtotal = _torch_clip_norm(g, 1.0)
    check_scalar(total, rtotal, "clip_grad_norm total_norm (float32 gradients)", rtol=1e-5)
    _check_dict(clipped, ref, "clip_grad_norm clipped_grads", detail=" (float32 gradients keep their dtype)")
    check_unmodified({"grads": g}, {"grads": args[0]}, "clip_grad_norm")


@graded("clip_grad_norm", points=1)
def test_clip_grad_norm_single_array(sub, rng):
    g = {"w": rng.standard_normal((1, 1, 5)) * 3}
    clipped, total = unpack(sub.call("clip_grad_norm", g, 1.0), 2, "clip_grad_norm")
    ref, rtotal = _torch_clip_norm(g, 1.0)
    check_scalar(total, rtotal, "clip_grad_norm total_norm for a single 3-D array", rtol=1e-9)
    _check_dict(clipped, ref, "clip_grad_norm for a single 3-D array")


# --------------------------------------------------------------------- clip_grad_value
def _torch_clip_value(grads, c):
    out = {}
    for k, g in grads.items():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g.astype(np.float64))
        torch.nn.utils.clip_grad_value_([p], c)
        out[k] = p.grad.numpy().astype(g.dtype)
    return out


@graded("clip_grad_value", points=2)
def test_clip_grad_value_parity(sub, rng):
    for c in (0.5, 1.3):
        g = _grads(rng, scale=1.5)
        clipped = sub.call("clip_grad_value", g, c)
        _check_dict(clipped, _torch_clip_value(g, c), f"clip_grad_value(grads, {c}) (clamp to [-{c}, {c}])")


@graded("clip_grad_value", points=1)
def test_clip_grad_value_float32_unmodified(sub, rng):
    g = _grads(rng, np.float32, scale=2.0)
    clipped, args, _ = sub.call_with_args("clip_grad_value", {k: v.copy() for k, v in g.items()}, 0.7)
    _check_dict(clipped, _torch_clip_value(g, 0.7), "clip_grad_value clipped_grads",
                detail=" (float32 gradients keep their dtype)")
    check_unmodified({"grads": g}, {"grads": args[0]}, "clip_grad_value")


# ---------------------------------------------------------------------- adding_problem
def make_rng(sub, seed):
    """np.random.default_rng(seed), made in the student's process by their own NumPy (the notebook's
    `np`, else `numpy`): a Generator cannot travel as data, and no code of ours runs there."""
    for name in ("np.random.default_rng", "numpy.random.default_rng"):
        try:
            r = sub.call(name, seed)
        except (Missing, StudentError):  # the notebook has no such name: try the next
            continue
        if isinstance(r, Remote) and r.type == "Generator":
            return r
    raise Fail("adding_problem could not be tested: the notebook should `import numpy as np` (its first cell does)")


def _adding(sub, n, T, seed):
    r = make_rng(sub, seed)
    x, y = unpack(sub.call("adding_problem", n, T, r), 2, "adding_problem")
    check_type(x, np.ndarray, "adding_problem x")
    check_type(y, np.ndarray, "adding_problem y")
    return x, y


def _check_adding(x, y, n, T):
    what = f"adding_problem(n={n}, T={T})"
    if x.shape != (n, T, 2):
        raise Fail(f"{what}: x has shape {x.shape}, expected {(n, T, 2)}")
    if y.shape != (n,):
        raise Fail(f"{what}: y has shape {y.shape}, expected {(n,)}")
    if not np.issubdtype(x.dtype, np.floating) or not np.issubdtype(y.dtype, np.floating):
        raise Fail(f"{what}: x and y should be floating point arrays, got {x.dtype} and {y.dtype}")
    v, m = x[..., 0], x[..., 1]
    if not ((v >= 0) & (v < 1)).all():
        raise Fail(f"{what}: channel 0 must hold values in [0, 1); found {v.min():.3g} to {v.max():.3g}")
    if not np.isin(m, (0.0, 1.0)).all():
        raise Fail(f"{what}: channel 1 must be 0.0 or 1.0")
    counts = m.sum(1)
    if not (counts == 2).all():
        i = int(np.argmax(counts != 2))
        raise Fail(f"{what}: sequence {i} has {counts[i]:g} markers, expected exactly 2 (two distinct steps)")
    first = m[:, : T // 2].sum(1)
    if not (first == 1).all():
        i = int(np.argmax(first != 1))
        raise Fail(f"{what}: sequence {i} has {first[i]:g} markers in the first half [0, T // 2) = [0, {T // 2}), "
                   "expected one there and one in [T // 2, T)")
    check_strict(y, (v * m).sum(1).astype(y.dtype), f"{what}: y (the sum of the two marked values)", dtype=False)


@graded("adding_problem", points=2)
def test_adding_problem_definition(sub, rng):
    for n, T in ((50, 10), (20, 7), (1, 2), (3, 51)):
        x, y = _adding(sub, n, T, int(rng.integers(1 << 30)))
        _check_adding(x, y, n, T)


@graded("adding_problem", points=1)
def test_adding_problem_uses_rng(sub, rng):
    seed = int(rng.integers(1 << 30))
    x1, y1 = _adding(sub, 8, 12, seed)
    x2, y2 = _adding(sub, 8, 12, seed)
    if not (np.array_equal(x1, x2) and np.array_equal(y1, y2)):
        raise Fail("adding_problem: two generators with the same seed gave different data; draw every random "
                   "number from rng (not from np.random or another generator)")
    x3, _ = _adding(sub, 8, 12, seed + 1)
    if np.array_equal(x1, x3):
        raise Fail("adding_problem: generators with different seeds gave the same data; use rng")


@graded("adding_problem", points=2)
def test_adding_problem_distribution(sub, rng):
    n, T = 4000, 21  # odd: the second half [10, 21) is one step longer than the first
    x, y = _adding(sub, n, T, int(rng.integers(1 << 30)))
    _check_adding(x, y, n, T)
    v, m = x[..., 0], x[..., 1]
    pos = np.argmax(m, axis=1), T - 1 - np.argmax(m[:, ::-1], axis=1)
    for which, p, lo, hi in (("first", pos[0], 0, T // 2), ("second", pos[1], T // 2, T)):
        counts = np.bincount(p - lo, minlength=hi - lo)[: hi - lo]
        if counts.min() < 0.5 * n / (hi - lo):
            raise Fail(f"adding_problem: the {which} marker should be uniform over [{lo}, {hi}); some positions "
                       f"are (almost) never used: counts {counts.tolist()}")
    if abs(v.mean() - 0.5) > 0.02:
        raise Fail(f"adding_problem: values should be uniform in [0, 1) (mean 0.5), got mean {v.mean():.3f}")
    if abs(np.mean((y - 1.0) ** 2) - 1 / 6) > 0.02:
        raise Fail(f"adding_problem: predicting 1.0 should give MSE near 1/6; got {np.mean((y - 1) ** 2):.3f}")


# ------------------------------------------------------------------- grad_norms_by_lag
def _lag_case(rng, N, T, D, H, dtype=np.float64, radius=None):
    torch.manual_seed(int(rng.integers(1 << 30)))
    rnn = torch.nn.RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        w = torch.tensor(rng.standard_normal((H, H)))  # not symmetric: W_hh and W_hh.T differ
        r = radius if radius is not None else float(rng.uniform(0.8, 1.6))
        rnn.weight_hh_l0.copy_(r * w / torch.linalg.matrix_norm(w, 2))
    xs = torch.tensor(rng.standard_normal((N, T, D)))
    h_t, states = torch.tensor(0.3 * rng.standard_normal((1, N, H))), []
    for t in range(T):
        _, h_t = rnn(xs[:, t:t + 1], h_t)
        h_t.retain_grad()
        states.append(h_t)
    dh_last = rng.standard_normal((N, H))
    (states[-1][0] * torch.tensor(dh_last)).sum().backward()
    expected = np.array([st.grad[0].norm(dim=1).mean().item() for st in states[::-1]])
    h = torch.cat(states, 0).permute(1, 0, 2).detach().numpy()  # (N, T, H)
    W = rnn.weight_hh_l0.detach().numpy()
    return W.astype(dtype), h.astype(dtype), dh_last.astype(dtype), expected


LAG_HINT = (" (norms[k] = mean over the batch of ||dL/dh[:, T-1-k]||; going back one step multiplies "
            "by (1 - h_t**2) with the later state h_t, then by W_hh: g @ W_hh, not g @ W_hh.T)")


@graded("grad_norms_by_lag", points=3)
def test_grad_norms_by_lag_parity(sub, rng):
    for _ in range(2):
        N, D, H = int(rng.integers(2, 5)), int(rng.integers(2, 5)), int(rng.integers(3, 7))
        T = int(rng.integers(4, 9))
        W, h, g, expected = _lag_case(rng, N, T, D, H)
        got = sub.call("grad_norms_by_lag", W, h, g)
        check_strict(got, expected, f"grad_norms_by_lag for N={N}, T={T}, H={H}{LAG_HINT}")


@graded("grad_norms_by_lag", points=1)
def test_grad_norms_by_lag_edge_cases(sub, rng):
    for N, T in ((1, 5), (3, 1), (1, 1)):
        W, h, g, expected = _lag_case(rng, N, T, 2, 4)
        got = sub.call("grad_norms_by_lag", W, h, g)
        check_strict(got, expected, f"grad_norms_by_lag for N={N}, T={T}{LAG_HINT}")


@graded("grad_norms_by_lag", points=1)
def test_grad_norms_by_lag_long(sub, rng):
    # 60 steps with a small and with a large spectral norm: the decay (or growth) must come out right.
    for radius in (0.7, 1.8):
        W, h, g, expected = _lag_case(rng, 3, 60, 2, 8, radius=radius)
        got = sub.call("grad_norms_by_lag", W, h, g)
        check_strict(got, expected, f"grad_norms_by_lag over 60 steps, largest singular value {radius}{LAG_HINT}",
                    rtol=1e-6, atol=1e-14)


@graded("grad_norms_by_lag", points=1)
def test_grad_norms_by_lag_float32_unmodified(sub, rng):
    W, h, g, expected = _lag_case(rng, 3, 6, 2, 5, np.float32)
    got, args, _ = sub.call_with_args("grad_norms_by_lag", W.copy(), h.copy(), g.copy())
    check_strict(got, expected.astype(np.float32), "grad_norms_by_lag (float32 inputs give float32 norms)")
    check_unmodified({"W_hh": W, "h": h, "dh_last": g}, dict(zip(("W_hh", "h", "dh_last"), args)),
                     "grad_norms_by_lag")
