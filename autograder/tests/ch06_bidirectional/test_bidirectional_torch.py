"""Hidden tests for solutions/ch06_bidirectional/bidirectional_torch.ipynb (book: ch06_bidirectional).

RNN, GRU and LSTM from scratch with num_layers and bidirectional, against torch.nn.RNN / GRU / LSTM
(batch_first=True) with copied weights, in float64 (and float32), in this process.
"""
import numpy as np
import torch

from autograder.core.api import Fail, RemoteTensor, check_array, check_type, graded, tensor, unpack
from autograder.core.engine import StudentError
from autograder.testkit.shapes import seq_dims
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml


REF = {"RNN": torch.nn.RNN, "GRU": torch.nn.GRU, "LSTM": torch.nn.LSTM}
DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
CONFIGS = [(1, False), (1, True), (2, True), (3, False), (2, False), (3, True)]


def _dims(rng, N=None, T=None):
    """(N, T, D, H) with D != H and D != 2H (the input of a layer above a bidirectional one is 2H wide)."""
    return seq_dims(rng, N, T, n_max=3, size_max=5, avoid_2h=True)


def _cfg(L, bi):
    return f"num_layers={L}, bidirectional={bi}"


def _ref(kind, D, H, L, bi, dtype=np.float64, seed=0):
    torch.manual_seed(seed)
    m = REF[kind](D, H, num_layers=L, bidirectional=bi, batch_first=True).to(DTYPE[dtype])
    with torch.no_grad():  # weights a bit larger than the default, so that mistakes show
        for p in m.parameters():
            p.mul_(1.5)
    return m


def _student(sub, kind, D, H, L, bi, dtype=np.float64):
    """The student's module, checked against torch.nn's parameter names and shapes, weights copied."""
    m = sub.new(kind, D, H, num_layers=L, bidirectional=bi)
    ref = _ref(kind, D, H, L, bi, dtype)
    _check_state_dict(sub, m, ref, kind, D, H, L, bi)
    if dtype == np.float64:
        sub.method(m, "double")
    sd = {k: tensor(v.detach().numpy().copy()) for k, v in ref.state_dict().items()}
    sub.method(m, "load_state_dict", sd)
    return m, ref


def _check_state_dict(sub, m, ref, kind, D, H, L, bi):
    got = sub.method(m, "state_dict")
    if not isinstance(got, dict):
        raise Fail(f"{kind}(...).state_dict() did not return a dict")
    want = {name: tuple(p.shape) for name, p in ref.state_dict().items()}
    what = f"{kind}({D}, {H}, {_cfg(L, bi)}).state_dict()"
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        raise Fail(f"{what}: keys differ from PyTorch's: missing {missing[:6]}, unexpected {extra[:6]} "
                   "(names weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, plus the suffix "
                   "_reverse for the reverse direction)")
    for k, shape in want.items():
        v = got[k]
        s = tuple(v.shape) if isinstance(v, RemoteTensor) else None
        if s != shape:
            hint = ""
            if k.startswith("weight_ih_l") and not k.startswith("weight_ih_l0"):
                hint = (f"; layer k > 0 reads the previous layer's output, of size "
                        f"{'2H' if bi else 'H'} = {shape[1]}" + (" (the concatenation [forward, reverse])" if bi else ""))
            raise Fail(f"{what}: {k} has shape {s}, expected {shape}{hint}")


def _finals(kind, hn):
    """[h_n] or [h_n, c_n] from what forward returned as its second item."""
    if kind == "LSTM":
        if not isinstance(hn, (tuple, list)) or len(hn) != 2:
            raise Fail("LSTM.forward should return (output, (h_n, c_n))")
        return list(hn)
    return [hn]


def _forward(sub, m, kind, x, hx, requires_grad=False):
    """Call the student's module; returns (output, [h_n(, c_n)], the argument tensors afterwards)."""
    args = [tensor(x, requires_grad)]
    if hx is not None:
        args.append(tuple(tensor(h, requires_grad) for h in hx) if kind == "LSTM" else tensor(hx[0], requires_grad))
    got, back, _ = sub.invoke_with_args(m, *args)
    out, hn = unpack(got, 2, f"{kind}.forward")
    check_type(out, RemoteTensor, f"{kind}.forward output")
    finals = _finals(kind, hn)
    for f in finals:
        check_type(f, RemoteTensor, f"{kind}.forward final state")
    return out, finals, back


def _torch_forward(ref, kind, x, hx, requires_grad=False):
    xt = torch.tensor(x, requires_grad=requires_grad)
    hts = [torch.tensor(h, requires_grad=requires_grad) for h in hx] if hx is not None else None
    if hts is None:
        out, hn = ref(xt)
    else:
        out, hn = ref(xt, tuple(hts) if kind == "LSTM" else hts[0])
    finals = list(hn) if kind == "LSTM" else [hn]
    return out, finals, xt, hts


def _diagnose(kind, out, finals, e_out, e_finals, L, bi, H, what, e_zero=None):
    """Shapes first, then named diagnoses of the classic mistakes, then plain comparisons."""
    K = 2 if bi else 1
    N, T = e_out.shape[:2]
    if tuple(out.shape) != e_out.shape:
        raise Fail(f"{what}: output has shape {tuple(out.shape)}, expected (N, T, {'2H' if bi else 'H'}) = "
                   f"{e_out.shape}: the last layer's states, [forward, reverse] at every position")
    names = ["h_n", "c_n"]
    for i, (f, e) in enumerate(zip(finals, e_finals)):
        if tuple(f.shape) != e.shape:
            raise Fail(f"{what}: {names[i]} has shape {tuple(f.shape)}, expected (num_layers * num_directions, "
                       f"N, H) = {e.shape}: one final state per layer and direction, in the order layer 0 "
                       "forward, layer 0 reverse, layer 1 forward, ...")
    close = lambda a, b: np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-4, atol=1e-6)
    o = out.array
    hn, ehn = finals[0].array, e_finals[0]
    if bi and not close(o, e_out):
        if close(o[..., :H], e_out[..., :H]) and close(o[..., H:], e_out[:, ::-1, H:]) and T > 1:
            raise Fail(f"{what}: output[..., H:] (the reverse direction) is in reversed time order; store "
                       "the reverse direction's state at the position t of the input it has just read")
        if close(o[..., :H], e_out[..., H:]) and close(o[..., H:], e_out[..., :H]):
            raise Fail(f"{what}: the two halves of output are swapped; output[..., :H] is the forward direction")
    if not close(hn, ehn):
        order = [k * K + d for d in range(K) for k in range(L)]  # all forward layers, then all reverse
        if K == 2 and L > 1 and close(hn, ehn[order]):
            raise Fail(f"{what}: h_n holds the right states in the wrong order; PyTorch's order is layer 0 "
                       "forward, layer 0 reverse, layer 1 forward, layer 1 reverse, ...")
        if K == 2 and T > 1:
            rev = [k * K + 1 for k in range(L)]
            ok_fw = close(hn[[k * K for k in range(L)]], ehn[[k * K for k in range(L)]])
            if ok_fw and close(o, e_out) and not close(hn[rev], ehn[rev]):
                raise Fail(f"{what}: h_n of the reverse direction is wrong while output is right; the reverse "
                           "direction's final state is its state at position 0 (after reading x[:, 0])")
        rows_ok = [close(hn[j], ehn[j]) for j in range(L * K)]
        if L > 1 and all(rows_ok[:K]) and not all(rows_ok):
            raise Fail(f"{what}: layer 0 is right (its rows of h_n match) but layer 1 is not: layer k > 0 "
                       "reads the previous layer's output at every position" +
                       (", the concatenation [forward, reverse] of size 2H" if bi else "") +
                       ", and starts from its own rows of hx" +
                       ("; check too that layer 0's reverse states are stored at their input positions" if bi else ""))
    if e_zero is not None and not close(o, e_out) and close(o, e_zero):
        raise Fail(f"{what}: output is what zero initial states give; use hx when it is given")
    check_array(out, e_out, f"{what}: output")
    for i, (f, e) in enumerate(zip(finals, e_finals)):
        check_array(f, e, f"{what}: {names[i]}")


def _hx(rng, kind, L, bi, N, H, dtype):
    K = 2 if bi else 1
    n = 2 if kind == "LSTM" else 1
    return [(0.8 * rng.standard_normal((L * K, N, H))).astype(dtype) for _ in range(n)]


def _parity(sub, rng, kind, configs, dtype=np.float64, with_hx=True, edge=True):
    for j, (L, bi) in enumerate(configs):
        N, T = (1, None) if edge and j == 1 else ((None, 1) if edge and j == 2 else (None, None))
        N, T, D, H = _dims(rng, N, T)
        m, ref = _student(sub, kind, D, H, L, bi, dtype)
        x = rng.standard_normal((N, T, D)).astype(dtype)
        hx = _hx(rng, kind, L, bi, N, H, dtype) if with_hx else None
        what = (f"{kind}({D}, {H}, {_cfg(L, bi)}) on x of shape {(N, T, D)} ({np.dtype(dtype).name}"
                f"{'' if with_hx else ', hx=None'})")
        try:
            out, finals, _ = _forward(sub, m, kind, x, hx)
        except StudentError as e:
            if with_hx:
                raise
            raise Fail(f"{what}: your code raised {e}; with hx=None, make zero initial states of x's dtype "
                       "and device (x.new_zeros(...))") from None
        with torch.no_grad():
            e_out, e_fin, _, _ = _torch_forward(ref, kind, x, hx)
            e_zero = _torch_forward(ref, kind, x, None)[0].numpy() if with_hx else None
        _diagnose(kind, out, finals, e_out.numpy(), [f.numpy() for f in e_fin], L, bi, H, what, e_zero)
        want = str(DTYPE[dtype])
        if out.dtype != want:
            raise Fail(f"{what}: output dtype {out.dtype}, expected {want} (keep the dtype of x)")


def _backward(sub, rng, kind, L, bi, dtype=np.float64, dims=None):
    N, T, D, H = dims or _dims(rng)
    m, ref = _student(sub, kind, D, H, L, bi, dtype)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    hx = _hx(rng, kind, L, bi, N, H, dtype)
    out, finals, back = _forward(sub, m, kind, x, hx, requires_grad=True)
    e_out, e_fin, xt, hts = _torch_forward(ref, kind, x, hx, requires_grad=True)
    what = f"{kind}({D}, {H}, {_cfg(L, bi)}) on x of shape {(N, T, D)} ({np.dtype(dtype).name})"
    _diagnose(kind, out, finals, e_out.detach().numpy(), [f.detach().numpy() for f in e_fin], L, bi, H, what)
    if not out.requires_grad:
        raise Fail(f"{what}: output does not require grad; build it from the parameters with torch operations "
                   "(no .detach(), .data, numpy or torch.tensor(...) on the way)")
    grads = [rng.standard_normal(e.shape).astype(dtype) for e in [e_out, *e_fin]]
    sub.backward([out, *finals], grads)
    torch.autograd.backward([e_out, *e_fin], [torch.tensor(g) for g in grads])
    got_x = sub.getattr(back[0], "grad")
    if got_x is None:
        raise Fail(f"{what}: no gradient reached x")
    check_array(got_x, xt.grad.numpy(), f"{what}: gradient of x")
    got_h = back[1]
    got_h = list(got_h) if kind == "LSTM" else [got_h]
    for i, (gh, eh) in enumerate(zip(got_h, hts)):
        name = ["hx[0] (h0)", "hx[1] (c0)"][i] if kind == "LSTM" else "hx"
        g = sub.getattr(gh, "grad")
        if g is None:
            raise Fail(f"{what}: no gradient reached {name}: use the given initial states")
        check_array(g, eh.grad.numpy(), f"{what}: gradient of {name}")
    pg = sub.param_grads(m)
    for k, p in ref.named_parameters():
        g = pg.get(k)
        if g is None:
            raise Fail(f"{what}: no gradient reached the parameter {k}")
        hint = " (the reverse direction's gradients flow through its states in reversed time)" \
            if k.endswith("_reverse") else ""
        check_array(g, p.grad.numpy(), f"{what}: gradient of {k}{hint}")


# -------------------------------------------------------------------- the tests, per class
# --------------------------------------------- checks shared by the three modules (kind: RNN, GRU, LSTM)
def _state_dict(sub, rng, kind):
    for L, bi in [(1, False), (1, True), (2, True), (3, False), (3, True)]:
        N, T, D, H = _dims(rng)
        m = sub.new(kind, D, H, num_layers=L, bidirectional=bi)
        _check_state_dict(sub, m, _ref(kind, D, H, L, bi), kind, D, H, L, bi)
    m = sub.new(kind, 3, 4)
    _check_state_dict(sub, m, _ref(kind, 3, 4, 1, False), kind, 3, 4, 1, False)


def _forward_parity(sub, rng, kind):
    _parity(sub, rng, kind, CONFIGS)


def _default_state(sub, rng, kind):
    _parity(sub, rng, kind, [(2, True), (1, False)], with_hx=False, edge=False)


def _float32(sub, rng, kind):
    _parity(sub, rng, kind, [(2, True), (1, False)], dtype=np.float32, edge=False)
    _parity(sub, rng, kind, [(1, True)], dtype=np.float32, with_hx=False, edge=False)


def _backward_parity(sub, rng, kind):
    _backward(sub, rng, kind, 2, True)
    _backward(sub, rng, kind, 1, True, dims=(1, 3, 4, 2))
    _backward(sub, rng, kind, 3, False)


def _backward_edge(sub, rng, kind):
    _backward(sub, rng, kind, 2, True, dims=(2, 1, 3, 5))
    _backward(sub, rng, kind, 2, True, dtype=np.float32)


def _from_scratch(sub, rng, kind):
    m = sub.new(kind, 3, 4, num_layers=2, bidirectional=True)
    types = sub.module_types(m)
    bad = [t for t in types if isinstance(t, str) and t.startswith("torch.nn.modules.rnn.")]
    if bad:
        raise Fail(f"{kind} must be written from scratch; it contains {', '.join(sorted(set(bad)))}")


def _inputs_unmodified(sub, rng, kind):
    L, bi = 2, True
    N, T, D, H = _dims(rng)
    m, _ = _student(sub, kind, D, H, L, bi)
    x = rng.standard_normal((N, T, D))
    hx = _hx(rng, kind, L, bi, N, H, np.float64)
    _, _, back = _forward(sub, m, kind, x, hx)
    args = back
    if not np.array_equal(args[0].array, x):
        raise Fail(f"{kind}.forward modified its input x in place; work on new tensors instead")
    hs = list(args[1]) if kind == "LSTM" else [args[1]]
    for h, e in zip(hs, hx):
        if not np.array_equal(h.array, e):
            raise Fail(f"{kind}.forward modified its input hx in place; work on new tensors instead")


def _init(sub, rng, kind):
    # torch.nn initialises every weight and bias of RNN/GRU/LSTM uniformly in [-1/sqrt(H), 1/sqrt(H)]
    H = 25
    m = sub.new(kind, 3, H, num_layers=2, bidirectional=True)
    sd = sub.method(m, "state_dict")
    if not isinstance(sd, dict) or not sd:
        raise Fail(f"{kind}(...).state_dict() did not return a dict of tensors")
    k = 1 / np.sqrt(H)
    for name, t in sd.items():
        a = getattr(t, "array", None)
        if a is None or a.size == 0:
            raise Fail(f"{kind}: state_dict entry {name} is not a tensor")
        if np.abs(a).max() > k * (1 + 1e-6) or np.abs(a).max() < 0.5 * k or np.std(a) < 0.2 * k:
            raise Fail(f"{kind}: {name} should start uniform in [-1/sqrt(H), 1/sqrt(H)] = [-{k:.3f}, {k:.3f}] "
                       f"as in torch.nn; its values lie in [{a.min():.3f}, {a.max():.3f}]")


# ------------------------------------------------------------------ the tests, per module

# RNN
@graded("RNN", points=1)
def test_RNN_state_dict(sub, rng):
    _state_dict(sub, rng, "RNN")


@graded("RNN", points=1)
def test_RNN_init(sub, rng):
    _init(sub, rng, "RNN")


@graded("RNN", points=3)
def test_RNN_forward_parity(sub, rng):
    _forward_parity(sub, rng, "RNN")


@graded("RNN", points=1)
def test_RNN_default_state(sub, rng):
    _default_state(sub, rng, "RNN")


@graded("RNN", points=1)
def test_RNN_float32(sub, rng):
    _float32(sub, rng, "RNN")


@graded("RNN", points=3)
def test_RNN_backward_parity(sub, rng):
    _backward_parity(sub, rng, "RNN")


@graded("RNN", points=1)
def test_RNN_backward_edge(sub, rng):
    _backward_edge(sub, rng, "RNN")


@graded("RNN", points=1)
def test_RNN_from_scratch(sub, rng):
    _from_scratch(sub, rng, "RNN")


@graded("RNN", points=1)
def test_RNN_inputs_unmodified(sub, rng):
    _inputs_unmodified(sub, rng, "RNN")


# GRU
@graded("GRU", points=1)
def test_GRU_state_dict(sub, rng):
    _state_dict(sub, rng, "GRU")


@graded("GRU", points=1)
def test_GRU_init(sub, rng):
    _init(sub, rng, "GRU")


@graded("GRU", points=3)
def test_GRU_forward_parity(sub, rng):
    _forward_parity(sub, rng, "GRU")


@graded("GRU", points=1)
def test_GRU_default_state(sub, rng):
    _default_state(sub, rng, "GRU")


@graded("GRU", points=1)
def test_GRU_float32(sub, rng):
    _float32(sub, rng, "GRU")


@graded("GRU", points=3)
def test_GRU_backward_parity(sub, rng):
    _backward_parity(sub, rng, "GRU")


@graded("GRU", points=1)
def test_GRU_backward_edge(sub, rng):
    _backward_edge(sub, rng, "GRU")


@graded("GRU", points=1)
def test_GRU_from_scratch(sub, rng):
    _from_scratch(sub, rng, "GRU")


@graded("GRU", points=1)
def test_GRU_inputs_unmodified(sub, rng):
    _inputs_unmodified(sub, rng, "GRU")


# LSTM
@graded("LSTM", points=1)
def test_LSTM_state_dict(sub, rng):
    _state_dict(sub, rng, "LSTM")


@graded("LSTM", points=1)
def test_LSTM_init(sub, rng):
    _init(sub, rng, "LSTM")


@graded("LSTM", points=3)
def test_LSTM_forward_parity(sub, rng):
    _forward_parity(sub, rng, "LSTM")


@graded("LSTM", points=1)
def test_LSTM_default_state(sub, rng):
    _default_state(sub, rng, "LSTM")


@graded("LSTM", points=1)
def test_LSTM_float32(sub, rng):
    _float32(sub, rng, "LSTM")


@graded("LSTM", points=3)
def test_LSTM_backward_parity(sub, rng):
    _backward_parity(sub, rng, "LSTM")


@graded("LSTM", points=1)
def test_LSTM_backward_edge(sub, rng):
    _backward_edge(sub, rng, "LSTM")


@graded("LSTM", points=1)
def test_LSTM_from_scratch(sub, rng):
    _from_scratch(sub, rng, "LSTM")


@graded("LSTM", points=1)
def test_LSTM_inputs_unmodified(sub, rng):
    _inputs_unmodified(sub, rng, "LSTM")
