"""Trusted references for hidden tests: PyTorch in float64, computed in the grader's own process.

``vjp`` and ``value_and_grads`` differentiate any torch expression; ``cell_ref`` and ``seq_ref`` run
torch.nn.LSTMCell / GRUCell and LSTM / GRU (batch first) with copied weights.
"""
from __future__ import annotations

import numpy as np
import torch


torch.set_num_threads(1)
F64 = torch.float64


def vjp(fn, inputs, dout):
    """Run ``fn(*tensors)`` in float64 autograd; return (out as numpy, [d sum(out*dout)/d input])."""
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in inputs]
    out = fn(*ts)
    out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def value_and_grads(fn, inputs: dict):
    """Scalar ``fn(**tensors)`` in float64: (value, {name: gradient})."""
    ts = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in inputs.items()}
    out = fn(**ts)
    out.backward()
    return float(out.item()), {k: t.grad.numpy() for k, t in ts.items()}


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
