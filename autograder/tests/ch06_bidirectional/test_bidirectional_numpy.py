"""Hidden tests for solutions/ch06_bidirectional/bidirectional_numpy.ipynb (book: ch06_bidirectional).

The student's bidirectional_forward / bidirectional_backward receive *probe* sequence functions:
forwarders (``sub.callback``) to the functions below, which run in this process (plain NumPy, no graded name): a tanh RNN
whose state is an (N, H) array and an LSTM whose state is a pair (h, c). Expected values come from
torch.nn's bidirectional RNN and LSTM with the same weights, in float64, in this process.
"""
import numpy as np
import torch

from autograder.core.api import Fail, check_array, check_unmodified, graded, unpack
from autograder.testkit.shapes import seq_dims
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml


# ----------------------------------------------------------------------------- probes
PROBE_RNN = '''
def _check_x(x, params, who):
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[2] != params["weight_ih"].shape[1]:
        raise ValueError(f"{who} received x of shape {np.shape(x)}; expected (N, T, D) with "
                         f"D = {params['weight_ih'].shape[1]}")


def seq_forward(x, h0, params):
    _check_x(x, params, "seq_forward")
    N, T, D = x.shape
    Wx, Wh, bx, bh = (params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    H = Wh.shape[1]
    if not isinstance(h0, np.ndarray) or h0.shape != (N, H):
        raise ValueError(f"seq_forward received an initial state {type(h0).__name__} of shape "
                         f"{np.shape(h0)}; expected one direction's state, an (N, H) = {(N, H)} array")
    h, hs = h0, []
    for t in range(T):
        h = np.tanh(x[:, t] @ Wx.T + bx + h @ Wh.T + bh)
        hs.append(h)
    hs = np.stack(hs, axis=1)
    return hs, ("rnn-probe-cache", x.copy(), h0.copy(), {k: np.array(v) for k, v in params.items()}, hs.copy())


def seq_backward(dh, cache):
    if not (isinstance(cache, tuple) and len(cache) == 5 and cache[0] == "rnn-probe-cache"):
        raise ValueError("seq_backward received something that is not a cache made by seq_forward")
    _, x, h0, p, hs = cache
    N, T, H = hs.shape
    if not isinstance(dh, np.ndarray) or dh.shape != (N, T, H):
        raise ValueError(f"seq_backward received dh of shape {np.shape(dh)}; expected one "
                         f"direction's (N, T, H) = {(N, T, H)}")
    Wx, Wh = p["weight_ih"], p["weight_hh"]
    dx = np.zeros_like(x)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dnext = np.zeros_like(h0)
    for t in reversed(range(T)):
        da = (dh[:, t] + dnext) * (1 - hs[:, t] ** 2)
        prev = hs[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx
        g["weight_ih"] += da.T @ x[:, t]
        g["weight_hh"] += da.T @ prev
        g["bias_ih"] += da.sum(0)
        g["bias_hh"] += da.sum(0)
        dnext = da @ Wh
    return dx, dnext, g
'''

PROBE_LSTM = '''
def _sig(a):
    return 1 / (1 + np.exp(-a))


def seq_forward(x, state, params):
    Wx, Wh, bx, bh = (params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[2] != Wx.shape[1]:
        raise ValueError(f"seq_forward received x of shape {np.shape(x)}; expected (N, T, D) with D = {Wx.shape[1]}")
    N, T, D = x.shape
    H = Wh.shape[1]
    if not (isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, np.ndarray) and s.shape == (N, H)
                                                                 for s in state)):
        raise ValueError("this LSTM's seq_forward received an initial state that is not one direction's "
                         f"pair (h0, c0) of (N, H) = {(N, H)} arrays (pass each direction's state unchanged)")
    h, c = state
    keep = []
    for t in range(T):
        a = x[:, t] @ Wx.T + bx + h @ Wh.T + bh
        i, f, g, o = _sig(a[:, :H]), _sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sig(a[:, 3 * H:])
        c_prev, h_prev = c, h
        c = f * c + i * g
        h = o * np.tanh(c)
        keep.append((i, f, g, o, c, c_prev, h_prev))
    hs = np.stack([k[6] for k in keep[1:]] + [h], axis=1)
    return hs, ("lstm-probe-cache", x.copy(), {k: np.array(v) for k, v in params.items()}, keep, H)


def seq_backward(dh, cache):
    if not (isinstance(cache, tuple) and len(cache) == 5 and cache[0] == "lstm-probe-cache"):
        raise ValueError("seq_backward received something that is not a cache made by seq_forward")
    _, x, p, keep, H = cache
    N, T, D = x.shape
    if not isinstance(dh, np.ndarray) or dh.shape != (N, T, H):
        raise ValueError(f"seq_backward received dh of shape {np.shape(dh)}; expected one direction's "
                         f"(N, T, H) = {(N, T, H)}")
    Wx, Wh = p["weight_ih"], p["weight_hh"]
    dx = np.zeros_like(x)
    gr = {k: np.zeros_like(v) for k, v in p.items()}
    dh_next = np.zeros_like(keep[0][6])
    dc_next = np.zeros_like(keep[0][6])
    for t in reversed(range(T)):
        i, f, g, o, c, c_prev, h_prev = keep[t]
        dht = dh[:, t] + dh_next
        tc = np.tanh(c)
        dc = dc_next + dht * o * (1 - tc ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                             dht * tc * o * (1 - o)], axis=1)
        dx[:, t] = da @ Wx
        gr["weight_ih"] += da.T @ x[:, t]
        gr["weight_hh"] += da.T @ h_prev
        gr["bias_ih"] += da.sum(0)
        gr["bias_hh"] += da.sum(0)
        dh_next = da @ Wh
        dc_next = dc * f
    return dx, (dh_next, dc_next), gr
'''

PROBES = {"rnn": PROBE_RNN, "lstm": PROBE_LSTM}
MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM}
KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _probe_functions(source):
    scope = {"np": np}
    exec(compile(source, "<probe>", "exec"), scope)  # trusted code, run here only
    return scope["seq_forward"], scope["seq_backward"]


PROBE_FUNCTIONS = {kind: _probe_functions(src) for kind, src in PROBES.items()}


def _probe(sub, kind):
    """The probe sequence functions as forwarders: the student's code calls them, they run here (on the
    trusted side) and answer with plain data; their caches are plain data too (arrays, tuples)."""
    fwd, bwd = PROBE_FUNCTIONS[kind]
    return sub.callback(fwd, "seq_forward"), sub.callback(bwd, "seq_backward")


# ------------------------------------------------------------------ trusted references
def _dims(rng, N=None, T=None):
    """(N, T, D, H) with D != H (the test kit's one shape generator)."""
    return seq_dims(rng, N, T, n_max=4, size_max=5)


def _case(rng, kind, N, T, D, H, dtype=np.float64):
    G = {"rnn": 1, "lstm": 4}[kind]
    shp = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    x = rng.standard_normal((N, T, D)).astype(dtype)
    pf = {k: (0.6 * rng.standard_normal(s)).astype(dtype) for k, s in shp.items()}
    pb = {k: (0.6 * rng.standard_normal(s)).astype(dtype) for k, s in shp.items()}
    st = lambda: (0.6 * rng.standard_normal((N, H))).astype(dtype)
    h0 = ((st(), st()), (st(), st())) if kind == "lstm" else (st(), st())
    return x, h0, pf, pb


def _uni(kind, x, state, params, dh=None):
    """One direction in float64 torch autograd: h (N, T, H) and, given dh, (dx, dstate, grads)."""
    H, D = np.shape(params["weight_hh"])[1], np.shape(params["weight_ih"])[1]
    m = MODULES[kind](D, H, batch_first=True).double()
    with torch.no_grad():
        for k in KEYS:
            getattr(m, k + "_l0").copy_(torch.tensor(np.asarray(params[k], dtype=np.float64)))
    xt = torch.tensor(np.array(x, dtype=np.float64), requires_grad=True)
    sts = state if kind == "lstm" else (state,)
    st = [torch.tensor(np.asarray(s, dtype=np.float64)[None], requires_grad=True) for s in sts]
    h, _ = m(xt, tuple(st) if kind == "lstm" else st[0])
    if dh is None:
        return h.detach().numpy()
    h.backward(torch.tensor(np.array(dh, dtype=np.float64)))
    ds = [s.grad[0].numpy() for s in st]
    dstate = tuple(ds) if kind == "lstm" else ds[0]
    grads = {k: getattr(m, k + "_l0").grad.numpy() for k in KEYS}
    return h.detach().numpy(), (xt.grad.numpy(), dstate, grads)


def _bi_torch(kind, x, h0, pf, pb, dout=None):
    """torch.nn's own bidirectional layer with copied weights: out and, given dout, the gradients."""
    D, H = pf["weight_ih"].shape[1], pf["weight_hh"].shape[1]
    m = MODULES[kind](D, H, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        for k in KEYS:
            getattr(m, k + "_l0").copy_(torch.tensor(np.asarray(pf[k], dtype=np.float64)))
            getattr(m, k + "_l0_reverse").copy_(torch.tensor(np.asarray(pb[k], dtype=np.float64)))
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    if kind == "lstm":
        st = [torch.tensor(np.stack([h0[0][j], h0[1][j]]).astype(np.float64), requires_grad=True) for j in (0, 1)]
        out, _ = m(xt, tuple(st))
    else:
        st = [torch.tensor(np.stack(h0).astype(np.float64), requires_grad=True)]
        out, _ = m(xt, st[0])
    if dout is None:
        return out.detach().numpy()
    out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
    if kind == "lstm":
        dh0 = tuple((st[0].grad[d].numpy(), st[1].grad[d].numpy()) for d in (0, 1))
    else:
        dh0 = (st[0].grad[0].numpy(), st[0].grad[1].numpy())
    gf = {k: getattr(m, k + "_l0").grad.numpy() for k in KEYS}
    gb = {k: getattr(m, k + "_l0_reverse").grad.numpy() for k in KEYS}
    return out.detach().numpy(), (xt.grad.numpy(), dh0, gf, gb)


def _close(got, exp):
    if isinstance(exp, tuple):
        return isinstance(got, (tuple, list)) and len(got) == len(exp) and all(_close(g, e) for g, e in zip(got, exp))
    if isinstance(exp, dict):
        return isinstance(got, dict) and all(k in got and _close(got[k], exp[k]) for k in exp)
    return (isinstance(got, np.ndarray) and got.shape == np.shape(exp)
            and np.allclose(got.astype(np.float64), exp, rtol=1e-3, atol=1e-4))


# ------------------------------------------------------------------------ forward checks
def _check_forward(sub, kind, x, h0, pf, pb, label):
    f, _ = _probe(sub, kind)
    out, _ = unpack(sub.call("bidirectional_forward", x, h0, pf, pb, f), 2, "bidirectional_forward")
    exp = _bi_torch(kind, x, h0, pf, pb).astype(x.dtype)
    N, T, D = x.shape
    H = pf["weight_hh"].shape[1]
    what = f"bidirectional_forward out ({label}, N={N}, T={T}, D={D}, H={H})"
    if isinstance(out, np.ndarray) and out.shape == exp.shape and not _close(out, exp):
        fw, bw = exp[..., :H], exp[..., H:]
        h0_fw, h0_bw = h0
        if _close(out[..., H:], bw[:, ::-1]) and _close(out[..., :H], fw):
            raise Fail(f"{what}: the reverse half out[..., H:] is in reversed time order; flip the reverse "
                       "direction's states back so that out[:, t, H:] is the state that has just read x[:, t]")
        if _close(out[..., :H], bw) and _close(out[..., H:], fw):
            raise Fail(f"{what}: the two halves are swapped; out[..., :H] is the forward direction, "
                       "out[..., H:] the reverse one")
        if _close(out[..., H:], _uni(kind, x, h0_bw, pb)):
            raise Fail(f"{what}: the reverse direction read x from t = 0 to T-1; it must read x[:, T-1] first "
                       "(run seq_forward on x flipped in time)")
        if _close(out[..., H:], _uni(kind, x[:, ::-1], h0_bw, pf)[:, ::-1]):
            raise Fail(f"{what}: the reverse direction must use params_bw (it used params_fw)")
        if _close(out[..., H:], _uni(kind, x[:, ::-1], h0_fw, pb)[:, ::-1]):
            raise Fail(f"{what}: the reverse direction must start from h0[1] (the reverse direction's initial state)")
        if _close(out[..., :H], fw) and not _close(out[..., H:], bw):
            raise Fail(f"{what}: the forward half is right, the reverse half out[..., H:] is not")
    check_array(out, exp, what)


@graded("bidirectional_forward", points=3)
def test_bidirectional_forward_rnn_parity(sub, rng):
    for N, T in [(None, None), (None, None), (1, None), (None, 1)]:
        dims = _dims(rng, N, T)
        _check_forward(sub, "rnn", *_case(rng, "rnn", *dims), "tanh RNN probe, float64")


@graded("bidirectional_forward", points=2)
def test_bidirectional_forward_lstm(sub, rng):
    for N, T in [(None, None), (1, 3)]:
        dims = _dims(rng, N, T)
        _check_forward(sub, "lstm", *_case(rng, "lstm", *dims), "LSTM probe whose state is a pair (h, c), float64")


@graded("bidirectional_forward", points=1)
def test_bidirectional_forward_float32(sub, rng):
    dims = _dims(rng)
    _check_forward(sub, "rnn", *_case(rng, "rnn", *dims, dtype=np.float32), "float32 inputs: keep the dtype")


@graded("bidirectional_forward", points=1)
def test_bidirectional_forward_unmodified(sub, rng):
    for kind in ("rnn", "lstm"):
        x, h0, pf, pb = _case(rng, kind, *_dims(rng))
        f, _ = _probe(sub, kind)
        copy = lambda v: tuple(copy(a) for a in v) if isinstance(v, tuple) else v.copy()
        _, args, _ = sub.call_with_args("bidirectional_forward", x.copy(), copy(h0), dict(pf), dict(pb), f)
        check_unmodified({"x": x}, {"x": args[0]}, "bidirectional_forward")
        check_unmodified({"params_fw": pf, "params_bw": pb}, {"params_fw": args[2], "params_bw": args[3]},
                         "bidirectional_forward")
        flat = lambda v: [a for s in v for a in flat(s)] if isinstance(v, (tuple, list)) else [v]
        before, after = flat(h0), flat(args[1])
        if len(after) != len(before) or not all(isinstance(a, np.ndarray) and np.array_equal(a, b)
                                                for a, b in zip(after, before)):
            raise Fail("bidirectional_forward modified its input `h0` in place; work on copies instead")


# ----------------------------------------------------------------------- backward checks
def _repaired(kind, out, cache, x, h0, pf, pb):
    """(cache, note). The cache holds the probe's own caches (plain data the trusted seq_forward made).
    When the student's bidirectional_forward is wrong on these inputs (its own tests take its points),
    each probe cache is replaced by the one that direction should have made (identified by its params;
    forward: x, h0[0], params_fw; reverse: x flipped in time, h0[1], params_bw), so that a right
    bidirectional_backward keeps its points (cache repair, issue 20). Fail closed: a probe cache that
    cannot be told apart, or a cache the student keeps as an object, is left as it is."""
    exp = _bi_torch(kind, x, h0, pf, pb)
    if isinstance(out, np.ndarray) and out.shape == exp.shape and _close(out, exp):
        return cache, ""
    fwd, _ = PROBE_FUNCTIONS[kind]
    right = {"fw": fwd(x.copy(), h0[0], pf)[1], "bw": fwd(x[:, ::-1].copy(), h0[1], pb)[1]}
    done = []

    def which(c):
        p = c[3] if c[0] == "rnn-probe-cache" else c[2]
        hits = [d for d, pp in (("fw", pf), ("bw", pb)) if _close(p, {k: np.asarray(v, np.float64) for k, v in pp.items()})]
        return hits[0] if len(hits) == 1 else None

    def walk(c):
        if isinstance(c, tuple) and len(c) == 5 and isinstance(c[0], str) and c[0].endswith("-probe-cache"):
            d = which(c)
            if d is None:
                raise LookupError
            done.append(d)
            return right[d]
        if isinstance(c, tuple):
            return tuple(walk(v) for v in c)
        if isinstance(c, list):
            return [walk(v) for v in c]
        if isinstance(c, dict):
            return {k: walk(v) for k, v in c.items()}
        return c

    try:
        new = walk(cache)
    except LookupError:
        return cache, ""
    if not done:
        return cache, ""
    return new, (" [your bidirectional_forward is wrong on these inputs, so the caches of its seq_forward calls "
                 "were repaired (each direction's, as it should have been called) before your backward ran: "
                 "this failure is the backward's own]")


def _forward_cache(sub, kind, x, h0, pf, pb, f):
    """(out, cache, note) of the student's own bidirectional_forward on these inputs. When it raises, out is
    None and the cache
    of a one-edit correction of it (testkit/corrected.py: its output must equal torch.nn's here and on
    probes of the same shapes; its seq_forward calls went to the same trusted probe, so the probe caches
    it holds are what the right calls make), a handle kept in their process; or the forward's error."""
    from autograder.core.engine import StudentError
    from autograder.testkit import corrected, repair

    try:
        out, cache = unpack(sub.call("bidirectional_forward", x, h0, pf, pb, f), 2, "bidirectional_forward")
    except StudentError as first:
        if not repair.worth_probing(first):
            raise
        N, T, D = x.shape
        prng = np.random.default_rng(1)
        probes = [(*_case(prng, kind, N, T, D, pf["weight_hh"].shape[1], x.dtype), f) for _ in range(2)]
        cache = corrected.corrected_cache(sub, "bidirectional_forward", 1, 2, (x, h0, pf, pb, f),
                                          lambda x, h0, pf, pb, f: {"out": _bi_torch(kind, x, h0, pf, pb)},
                                          {0: "out"}, probes)
        if cache is None:
            raise first from None
        return None, cache, corrected.note("bidirectional_forward")
    return (out, *_repaired(kind, out, cache, x, h0, pf, pb))


def _check_backward(sub, kind, x, h0, pf, pb, label, rng):
    f, b = _probe(sub, kind)
    _, cache, note = _forward_cache(sub, kind, x, h0, pf, pb, f)
    try:
        _check_backward_values(sub, kind, x, h0, pf, pb, label, rng, cache, b)
    except Fail as e:
        raise Fail(str(e) + note) from None


def _check_backward_values(sub, kind, x, h0, pf, pb, label, rng, cache, b):
    N, T, D = x.shape
    H = pf["weight_hh"].shape[1]
    dout = rng.standard_normal((N, T, 2 * H)).astype(x.dtype)
    got = unpack(sub.call("bidirectional_backward", dout, cache, b), 4, "bidirectional_backward")
    dx, dh0, gf, gb = got
    _, (edx, edh0, egf, egb) = _bi_torch(kind, x, h0, pf, pb, dout)
    dt = x.dtype
    what = f"bidirectional_backward ({label}, N={N}, T={T}, D={D}, H={H})"

    # Named diagnoses of the classic mistakes, before the plain comparisons.
    _, (dx_f, _, _) = _uni(kind, x, h0[0], pf, dout[..., :H])
    _, (dx_r, _, _) = _uni(kind, x[:, ::-1], h0[1], pb, dout[:, ::-1, H:])  # right, in reversed order
    _, (dx_nf, _, gb_nf) = _uni(kind, x[:, ::-1], h0[1], pb, dout[..., H:])  # dout not flipped
    if isinstance(dx, np.ndarray) and not _close(dx, edx):
        if _close(dx, dx_f + dx_r):
            raise Fail(f"{what}: dx: the reverse direction's dx is in reversed time order; flip it back "
                       "before adding it to the forward direction's dx")
        if _close(dx, dx_f) or _close(dx, dx_r[:, ::-1]):
            raise Fail(f"{what}: dx holds one direction only; both directions read x, so add their dx")
        if _close(dx, dx_f + dx_nf[:, ::-1]) or _close(dx, dx_f + dx_nf):
            raise Fail(f"{what}: dx: the reverse half of dout must be flipped in time before it goes into "
                       "seq_backward (the reverse direction read the sequence from the end)")
    if isinstance(gb, dict) and not _close(gb, egb):
        if _close(gb, gb_nf):
            raise Fail(f"{what}: grads_bw: the reverse half of dout must be flipped in time before it goes "
                       "into seq_backward (the reverse direction read the sequence from the end)")
        if _close(gb, egf) and _close(gf, egb):
            raise Fail(f"{what}: grads_fw and grads_bw are swapped (return dx, dh0, grads_fw, grads_bw)")
    if not _close(dh0, edh0) and _close(dh0, (edh0[1], edh0[0])):
        raise Fail(f"{what}: dh0 should be the pair (dh0_fw, dh0_bw); its two entries are swapped")

    check_array(dx, edx.astype(dt), f"{what}: dx")
    if not isinstance(dh0, (tuple, list)) or len(dh0) != 2:
        raise Fail(f"{what}: dh0 should be a pair (dh0_fw, dh0_bw), got {type(dh0).__name__}")
    for d, name in enumerate(("dh0_fw", "dh0_bw")):
        if kind == "lstm":
            if not isinstance(dh0[d], (tuple, list)) or len(dh0[d]) != 2:
                raise Fail(f"{what}: {name} should be what seq_backward returned for that direction (here a "
                           "pair (dh0, dc0))")
            check_array(dh0[d][0], edh0[d][0].astype(dt), f"{what}: {name}[0] (gradient on h0)")
            check_array(dh0[d][1], edh0[d][1].astype(dt), f"{what}: {name}[1] (gradient on c0)")
        else:
            check_array(dh0[d], edh0[d].astype(dt), f"{what}: {name}")
    for name, g, e in (("grads_fw", gf, egf), ("grads_bw", gb, egb)):
        if not isinstance(g, dict) or sorted(g) != sorted(KEYS):
            raise Fail(f"{what}: {name} should be a dict with keys {sorted(KEYS)}")
        for k in KEYS:
            check_array(g[k], e[k].astype(dt), f"{what}: {name}[{k!r}]")


@graded("bidirectional_backward", points=3)
def test_bidirectional_backward_rnn_parity(sub, rng):
    for N, T in [(None, None), (None, None), (1, None), (None, 1)]:
        dims = _dims(rng, N, T)
        _check_backward(sub, "rnn", *_case(rng, "rnn", *dims), "tanh RNN probe, float64", rng)


@graded("bidirectional_backward", points=2)
def test_bidirectional_backward_lstm(sub, rng):
    for N, T in [(None, None), (1, 3)]:
        dims = _dims(rng, N, T)
        _check_backward(sub, "lstm", *_case(rng, "lstm", *dims), "LSTM probe whose state is a pair (h, c), float64",
                        rng)


@graded("bidirectional_backward", points=1)
def test_bidirectional_backward_float32(sub, rng):
    dims = _dims(rng)
    _check_backward(sub, "rnn", *_case(rng, "rnn", *dims, dtype=np.float32), "float32 inputs: keep the dtype", rng)


@graded("bidirectional_backward", points=1)
def test_bidirectional_backward_numerical(sub, rng):
    """The backward against central differences of the student's own forward (float64)."""
    N, T, D, H = 2, 3, 2, 3
    x, h0, pf, pb = _case(rng, "rnn", N, T, D, H)
    f, b = _probe(sub, "rnn")
    out, cache, note = _forward_cache(sub, "rnn", x, h0, pf, pb, f)
    dout = rng.standard_normal((N, T, 2 * H))
    dx, dh0, gf, gb = unpack(sub.call("bidirectional_backward", dout, cache, b), 4, "bidirectional_backward")
    # a wrong forward: central differences of the trusted layer (torch.nn's), not of the student's
    own = isinstance(out, np.ndarray) and out.shape == (N, T, 2 * H) and _close(out, _bi_torch("rnn", x, h0, pf, pb))

    def loss(x_=x, h0_=h0, pb_=pb):
        if not own:
            return float(np.sum(_bi_torch("rnn", x_, h0_, pf, pb_) * dout))
        o, _ = unpack(sub.call("bidirectional_forward", x_, h0_, pf, pb_, f), 2, "bidirectional_forward")
        if not isinstance(o, np.ndarray) or o.shape != dout.shape:
            raise Fail(f"bidirectional_forward out should have shape {dout.shape}")
        return float(np.sum(o * dout))

    def numeric(make, a, eps=1e-5):
        g = np.zeros_like(a)
        for ix in np.ndindex(a.shape):
            ap, am = a.copy(), a.copy()
            ap[ix] += eps
            am[ix] -= eps
            g[ix] = (loss(**make(ap)) - loss(**make(am))) / (2 * eps)
        return g

    checks = [("dx", dx, numeric(lambda v: {"x_": v}, x)),
              ("dh0[1] (reverse direction's initial state)", dh0[1] if isinstance(dh0, (tuple, list)) else None,
               numeric(lambda v: {"h0_": (h0[0], v)}, h0[1])),
              ("grads_bw['weight_hh']", gb.get("weight_hh") if isinstance(gb, dict) else None,
               numeric(lambda v: {"pb_": {**pb, "weight_hh": v}}, pb["weight_hh"]))]
    for name, got, num in checks:
        try:
            check_array(got, num, f"bidirectional_backward {name} against the numerical gradient of "
                        + ("your bidirectional_forward" if own else "the layer (torch.nn's)"), rtol=1e-5, atol=1e-7)
        except Fail as e:
            raise Fail(str(e) + note) from None


@graded("bidirectional_backward", points=1)
def test_bidirectional_backward_unmodified(sub, rng):
    x, h0, pf, pb = _case(rng, "rnn", *_dims(rng))
    f, b = _probe(sub, "rnn")
    _, cache, _ = _forward_cache(sub, "rnn", x, h0, pf, pb, f)
    dout = rng.standard_normal((x.shape[0], x.shape[1], 2 * pf["weight_hh"].shape[1]))
    _, args, _ = sub.call_with_args("bidirectional_backward", dout.copy(), cache, b)
    check_unmodified({"dout": dout}, {"dout": args[0]}, "bidirectional_backward")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("bidirectional_numpy:together", points=1)
def test_bidirectional_numpy_together(sub, rng):
    """The whole chain as a training loop runs it: bidirectional_forward (an LSTM in both directions),
    then bidirectional_backward on its own cache (never repaired), against torch.nn.LSTM(bidirectional=
    True). Its own graded name (1 point, no answer cell): a mistake anywhere shows here, not as a loss
    booked on a function that is right."""
    N, T, D, H = _dims(rng)
    x, h0, pf, pb = _case(rng, "lstm", N, T, D, H)
    f, b = _probe(sub, "lstm")
    what = (f"the whole chain (bidirectional_forward then bidirectional_backward, LSTM probe, N={N}, T={T}, D={D}, "
            f"H={H}) against torch.nn.LSTM(bidirectional=True)")
    out, cache = unpack(sub.call("bidirectional_forward", x, h0, pf, pb, f), 2, "bidirectional_forward")
    check_array(out, _bi_torch("lstm", x, h0, pf, pb), f"{what}: out")
    dout = rng.standard_normal((N, T, 2 * H))
    dx, dh0, gf, gb = unpack(sub.call("bidirectional_backward", dout, cache, b), 4, "bidirectional_backward")
    _, (edx, edh0, egf, egb) = _bi_torch("lstm", x, h0, pf, pb, dout)
    check_array(dx, edx, f"{what}: dx")
    if not isinstance(dh0, (tuple, list)) or len(dh0) != 2 or not all(
            isinstance(d, (tuple, list)) and len(d) == 2 for d in dh0):
        raise Fail(f"{what}: dh0 should be ((dh0_fw, dc0_fw), (dh0_bw, dc0_bw))")
    for d, name in enumerate(("fw", "bw")):
        check_array(dh0[d][0], edh0[d][0], f"{what}: dh0_{name}[0] (gradient on h0)")
        check_array(dh0[d][1], edh0[d][1], f"{what}: dh0_{name}[1] (gradient on c0)")
    for name, g, e in (("grads_fw", gf, egf), ("grads_bw", gb, egb)):
        if not isinstance(g, dict) or sorted(g) != sorted(KEYS):
            raise Fail(f"{what}: {name} should be a dict with keys {sorted(KEYS)}")
        for k in KEYS:
            check_array(g[k], e[k], f"{what}: {name}[{k!r}]")
