"""Shared by the hidden tests of chapters 4 (LSTM) and 5 (GRU): trusted references and probes.

Expected values come from torch.nn in float64 with copied weights, or from numerical gradients of
the student's own forward pass. The variants below (classic mistakes) only name a likely cause in a
failure message; they are never used as expected values.
"""
from __future__ import annotations

import numpy as np
import torch

from autograder.api import Fail, check_array, unpack

F64 = torch.float64
NUMPY_FORBIDDEN = ["import torch", "from torch", "torch.", "rnnlib.tasks", "__import__", "importlib"]
TORCH_FORBIDDEN = ["nn.LSTM", "nn.GRU", "nn.RNN", "torch.lstm", "torch.gru", "torch.rnn_", "_VF",
                   "torch._C", "nn.modules.rnn", "import LSTM", "import GRU", "import RNN",
                   "clip_grad", "__import__", "importlib"]
GATES = {"lstm": 4, "gru": 3}


# ------------------------------------------------------------------------------ inputs
def dims(rng, kind="random"):
    """(N, D, H) with D != H; kind 'n1' gives N = 1."""
    N = 1 if kind == "n1" else int(rng.integers(2, 6))
    D = int(rng.integers(2, 7))
    H = int(rng.integers(2, 7))
    while H == D:
        H = int(rng.integers(2, 8))
    return N, D, H


def params(rng, kind, D, H, dtype=np.float64, scale=0.6):
    G = GATES[kind]
    return {"weight_ih": (scale * rng.standard_normal((G * H, D))).astype(dtype),
            "weight_hh": (scale * rng.standard_normal((G * H, H))).astype(dtype),
            "bias_ih": (scale * rng.standard_normal(G * H)).astype(dtype),
            "bias_hh": (scale * rng.standard_normal(G * H)).astype(dtype)}


def arr(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def copy_params(p):
    return {k: v.copy() for k, v in p.items()}


def check_grads(got, ref, what, dtype=True):
    if not isinstance(got, dict) or sorted(got) != sorted(ref):
        raise Fail(f"{what}: grads must be a dict with keys {sorted(ref)}, got "
                   f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        check_array(got[k], ref[k], f"{what} grads[{k!r}]", dtype=dtype)


# ------------------------------------------------------------------ torch.nn references
def _module(cls, D, H, p, suffix=""):
    m = cls(D, H, dtype=F64, **({"batch_first": True} if suffix else {}))
    m.load_state_dict({k + suffix: torch.tensor(np.asarray(v, np.float64)) for k, v in p.items()})
    return m


def cell_ref(kind, x, hx, p, douts=None):
    """torch.nn.LSTMCell / GRUCell in float64. hx: [h] or [h, c]. Returns outputs, and with douts
    (one per output) the gradients (dx, dh[, dc], grads)."""
    D, H = p["weight_ih"].shape[1], p["weight_hh"].shape[1]
    m = _module(torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell, D, H, p)
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    hts = [torch.tensor(np.asarray(v, np.float64), requires_grad=True) for v in hx]
    out = m(xt, tuple(hts)) if kind == "lstm" else m(xt, hts[0])
    outs = list(out) if kind == "lstm" else [out]
    vals = [o.detach().numpy() for o in outs]
    if douts is None:
        return vals
    torch.autograd.backward(outs, [torch.tensor(np.asarray(d, np.float64)) for d in douts])
    return vals, [xt.grad.numpy()] + [t.grad.numpy() for t in hts] + [
        {k: v.grad.numpy() for k, v in m.named_parameters()}]


def seq_ref(kind, x, hx, p, dh=None):
    """torch.nn.LSTM / GRU (batch first) in float64 from hx = [h0] or [h0, c0] of shape (N, H).
    Returns h (N, T, H), and with dh the gradients (dx, dh0[, dc0], grads)."""
    D, H = p["weight_ih"].shape[1], p["weight_hh"].shape[1]
    m = _module(torch.nn.LSTM if kind == "lstm" else torch.nn.GRU, D, H, p, suffix="_l0")
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    hts = [torch.tensor(np.asarray(v, np.float64), requires_grad=True) for v in hx]
    states = [t[None] for t in hts]
    out, _ = m(xt, tuple(states) if kind == "lstm" else states[0])
    if dh is None:
        return out.detach().numpy()
    out.backward(torch.tensor(np.asarray(dh, np.float64)))
    grads = {k[:-3]: v.grad.numpy() for k, v in m.named_parameters()}
    return out.detach().numpy(), [xt.grad.numpy()] + [t.grad.numpy() for t in hts] + [grads]


# ------------------------------------------------------------- classic mistakes (hints)
def _t(v):
    return torch.tensor(np.asarray(v, np.float64))


def lstm_variant_step(x, h, c, p, order="ifgo", forget_on_h=False, tanh_c=True, b_ih=True, b_hh=True):
    a = x @ p["weight_ih"].T + h @ p["weight_hh"].T
    a = a + (p["bias_ih"] if b_ih else 0) + (p["bias_hh"] if b_hh else 0)
    blocks = dict(zip(order, a.chunk(4, dim=-1)))
    i, f, o = (torch.sigmoid(blocks[k]) for k in "ifo")
    g = torch.tanh(blocks["g"])
    c1 = f * (h if forget_on_h else c) + i * g
    return o * (torch.tanh(c1) if tanh_c else c1), c1


def gru_variant_step(x, h, p, order="rzn", swapped=False, r_before=False, b_ih=True, b_hh=True,
                     b_hn_outside=False):
    H = h.shape[-1]
    bi = p["bias_ih"] if b_ih else torch.zeros_like(p["bias_ih"])
    bh = p["bias_hh"] if b_hh else torch.zeros_like(p["bias_hh"])
    gi = dict(zip(order, (x @ p["weight_ih"].T + bi).chunk(3, dim=-1)))
    gh_full = h @ p["weight_hh"].T
    gh = dict(zip(order, (gh_full + bh).chunk(3, dim=-1)))
    r = torch.sigmoid(gi["r"] + gh["r"])
    z = torch.sigmoid(gi["z"] + gh["z"])
    W_hn = dict(zip(order, p["weight_hh"].chunk(3, dim=0)))["n"]
    b_hn = dict(zip(order, bh.chunk(3)))["n"]
    if r_before:
        hn = (r * h) @ W_hn.T + b_hn
        n = torch.tanh(gi["n"] + hn)
    elif b_hn_outside:
        n = torch.tanh(gi["n"] + r * (gh["n"] - b_hn) + b_hn)
    else:
        n = torch.tanh(gi["n"] + r * gh["n"])
    del H
    return (z * n + (1 - z) * h) if swapped else ((1 - z) * n + z * h)


LSTM_VARIANTS = {
    "the gates taken in the order i, f, o, g (CS231n's) instead of PyTorch's i, f, g, o": {"order": "ifog"},
    "the gates taken in the order i, g, f, o (TensorFlow's) instead of i, f, g, o": {"order": "igfo"},
    "the forget gate applied to h_prev instead of c_prev": {"forget_on_h": True},
    "h_next = o * c_next, without the tanh on the cell state": {"tanh_c": False},
    "bias_ih left out": {"b_ih": False},
    "bias_hh left out": {"b_hh": False},
}
GRU_VARIANTS = {
    "the update rule swapped: h' = z * n + (1 - z) * h instead of PyTorch's (1 - z) * n + z * h":
        {"swapped": True},
    "the reset gate applied before the matrix product, W_hn (r * h) (the original paper's variant), "
    "instead of PyTorch's r * (W_hn h + b_hn)": {"r_before": True},
    "b_hn outside the reset gate: PyTorch multiplies r by (W_hn h + b_hn)": {"b_hn_outside": True},
    "the gates taken in the order z, r, n instead of PyTorch's r, z, n": {"order": "zrn"},
    "bias_ih left out": {"b_ih": False},
    "bias_hh left out": {"b_hh": False},
}


def _close(a, b):
    a = np.asarray(getattr(a, "array", a))
    return a.shape == b.shape and np.allclose(a.astype(np.float64), b, rtol=1e-4, atol=1e-5)


def lstm_seq_variant(x, h0, c0, p, **kw):
    x, h, c = _t(x), _t(h0), _t(c0)
    p = {k: _t(v) for k, v in p.items()}
    hs, cs = [], []
    for t in range(x.shape[1]):
        h, c = lstm_variant_step(x[:, t], h, c, p, **kw)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1).numpy(), c.numpy()


def gru_seq_variant(x, h0, p, **kw):
    x, h = _t(x), _t(h0)
    p = {k: _t(v) for k, v in p.items()}
    hs = []
    for t in range(x.shape[1]):
        h = gru_variant_step(x[:, t], h, p, **kw)
        hs.append(h)
    return torch.stack(hs, 1).numpy()


def hint_lstm(x, h0, c0, p, got_h, got_c=None, seq=False):
    """A sentence naming the classic mistake that reproduces the student's output, or ''."""
    for what, kw in LSTM_VARIANTS.items():
        if seq:
            vh, vc = lstm_seq_variant(x, h0, c0, p, **kw)
        else:
            vh, vc = lstm_seq_variant(np.asarray(x)[:, None], h0, c0, p, **kw)
            vh = vh[:, 0]
        if _close(got_h, vh) and (got_c is None or _close(got_c, vc)):
            return f" Your output matches {what}."
    return ""


def hint_gru(x, h0, p, got_h, seq=False):
    for what, kw in GRU_VARIANTS.items():
        vh = gru_seq_variant(x if seq else np.asarray(x)[:, None], h0, p, **kw)
        if not seq:
            vh = vh[:, 0]
        if _close(got_h, vh):
            return f" Your output matches {what}."
    return ""


def with_hint(fn, hint_fn):
    """Run a check; on failure, append the hint (computed only then)."""
    try:
        fn()
    except Fail as e:
        try:
            hint = hint_fn()
        except Exception:  # a hint is optional: never let it break grading
            hint = ""
        raise Fail(str(e) + hint) from None


# --------------------------------------------- BPTT mistakes (detach), for backward hints
def bptt_variant(kind, x, hx, p, dh, cut_h=False, cut_c=False):
    """Gradients of sum(h * dh) through the reference cell with the recurrent h (or c) cut between
    steps: what a backward pass gets when it forgets to carry dh (or dc) from step t + 1 to t."""
    D, H = p["weight_ih"].shape[1], p["weight_hh"].shape[1]
    m = _module(torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell, D, H, p)
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    hts = [torch.tensor(np.asarray(v, np.float64), requires_grad=True) for v in hx]
    state = list(hts)
    outs = []
    for t in range(xt.shape[1]):
        if t > 0 and cut_h:
            state[0] = state[0].detach()
        if t > 0 and cut_c and kind == "lstm":
            state[1] = state[1].detach()
        if kind == "lstm":
            state = list(m(xt[:, t], tuple(state)))
        else:
            state = [m(xt[:, t], state[0])]
        outs.append(state[0])
    out = torch.stack(outs, 1)
    out.backward(torch.tensor(np.asarray(dh, np.float64)))
    return xt.grad.numpy(), {k: v.grad.numpy() for k, v in m.named_parameters()}


def hint_bptt(kind, x, hx, p, dh, got_dx, got_grads):
    cases = [("the gradient through h is not carried from step t + 1 back to step t (add the dh_prev "
              "returned by step t + 1 to dh[:, t])", {"cut_h": True})]
    if kind == "lstm":
        cases.insert(0, ("the gradient through the cell state is not carried from step t + 1 back to "
                         "step t (pass the dc_prev of step t + 1 as dc_next of step t)", {"cut_c": True}))
    for what, kw in cases:
        vdx, vg = bptt_variant(kind, x, hx, p, dh, **kw)
        if _close(got_dx, vdx) or (isinstance(got_grads, dict) and "weight_hh" in got_grads
                                   and _close(got_grads["weight_hh"], vg["weight_hh"])):
            return f" It looks like {what}."
    return ""


# ------------------------------------------------------- numerical gradient of the student's forward
def remote_numgrad(sub, name, args, target, douts, pick, n_out, rng, h=1e-6, max_entries=6):
    """Central differences of sum_k <pick(out)[k], douts[k]> through the student's own ``name``.

    ``target``: index of an array argument, or (index, key) for a params entry. Probes at most
    ``max_entries`` entries (chosen with ``rng``); returns (indices, numerical values)."""
    base = args[target[0]][target[1]] if isinstance(target, tuple) else args[target]
    flat = list(np.ndindex(base.shape))
    if len(flat) > max_entries:
        flat = [flat[i] for i in sorted(rng.choice(len(flat), max_entries, replace=False))]
    vals = []
    for ix in flat:
        fs = []
        for sign in (1, -1):
            a = [copy_params(v) if isinstance(v, dict) else v.copy() for v in args]
            target_arr = a[target[0]][target[1]] if isinstance(target, tuple) else a[target]
            target_arr[ix] += sign * h
            outs = pick(unpack(sub.call(name, *a), n_out, name))
            fs.append(sum(float(np.sum(np.asarray(getattr(o, "array", o), np.float64) * d))
                          for o, d in zip(outs, douts)))
        vals.append((fs[0] - fs[1]) / (2 * h))
    return flat, np.array(vals)


def check_numgrad(got, flat, num, what):
    got = np.asarray(getattr(got, "array", got), np.float64)
    for ix, v in zip(flat, num):
        g = got[ix]
        if abs(g - v) > 1e-6 + 1e-4 * (abs(g) + abs(v)):
            raise Fail(f"{what}: entry {ix} is {g:.6g}, but the numerical gradient of your own forward pass "
                       f"gives {v:.6g}; the backward pass does not match the forward pass")
