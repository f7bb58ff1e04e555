"""Known-mistake detectors: which classic mistake reproduces a student's output.

Each detector runs a variant of the trusted computation with one classic mistake and compares it with
the student's output; it returns a sentence naming the mistake, or ''. Variants are never used as
expected values, only to name a likely cause in a failure message.
"""
from __future__ import annotations

import numpy as np
import torch

from .torchref import _module

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
