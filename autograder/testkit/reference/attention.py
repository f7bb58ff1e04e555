"""Trusted references for chapter 8 (attention), computed in the grader's own process in float64.

The course's rule for a query whose mask row is all False: weights 0, output 0, no gradient through
it. torch's softmax gives NaN there, so the references take the softmax of the allowed entries only
(a row with no allowed entry is shifted to 0 and then zeroed) before multiplying by the mask.

Masks are booleans broadcastable to (N, Tq, Tk), True where a query may attend to a key.
Known-mistake variants (``attention_variants``, ``additive_variants``) compute what a classic mistake
gives, for the hints; they are never sent to the student's process.
"""
from __future__ import annotations

import math

import numpy as np
import torch

F64 = torch.float64


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), dtype=F64, requires_grad=grad)


def masked_softmax(scores, mask, axis=-1):
    """Softmax over ``axis`` of the allowed entries; an all-masked row gives zeros (torch, differentiable)."""
    if mask is None:
        return torch.softmax(scores, dim=axis)
    m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), tuple(scores.shape)).copy())
    s = scores.masked_fill(~m, float("-inf"))
    s = s.masked_fill(~m.any(dim=axis, keepdim=True), 0.0)
    return torch.softmax(s, dim=axis) * m


def _weights(scores, mask, axis, mask_after):
    """Attention weights; ``mask_after``: the classic mistake of masking after the softmax."""
    if mask_after:
        m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), tuple(scores.shape)).copy())
        return torch.softmax(scores, dim=axis) * m
    return masked_softmax(scores, mask, axis)


def _sdpa(q, k, v, mask, scale=None, axis=-1, mask_after=False):
    d = q.shape[-1]
    scores = q @ k.transpose(-1, -2) * (1 / math.sqrt(d) if scale is None else scale)  # (N, Tq, Tk)
    return _weights(scores, mask, axis, mask_after) @ v


def attention_ref(q, k, v, mask=None, dout=None):
    """Scaled dot-product attention: out (N, Tq, Dv), and with ``dout`` the gradients [dq, dk, dv]."""
    ts = [_t(a, dout is not None) for a in (q, k, v)]
    out = _sdpa(*ts, mask)
    if dout is None:
        return out.detach().numpy()
    out.backward(_t(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _additive(q, k, v, p, mask, axis=-1, mask_after=False, no_tanh=False):
    z = (q @ p["W_q"].T)[:, :, None, :] + (k @ p["W_k"].T)[:, None, :, :]  # (N, Tq, Tk, A)
    feat = z if no_tanh else torch.tanh(z)
    scores = (feat @ p["w_v"].T)[..., 0]  # (N, Tq, Tk)
    return _weights(scores, mask, axis, mask_after) @ v


def additive_ref(q, k, v, params, mask=None, dout=None):
    """Additive (Bahdanau) attention: out, and with ``dout`` the gradients [dq, dk, dv, {W_q, W_k, w_v}]."""
    g = dout is not None
    ts = [_t(a, g) for a in (q, k, v)]
    pt = {n: _t(a, g) for n, a in params.items()}
    out = _additive(*ts, pt, mask)
    if not g:
        return out.detach().numpy()
    out.backward(_t(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in ts] + [{n: t.grad.numpy() for n, t in pt.items()}]


def attention_intermediates(q, k, v, mask=None) -> dict:
    """The correct forward's values a cache may hold (for cache repair, testkit/repair.py)."""
    q64, k64, v64 = (np.asarray(a, np.float64) for a in (q, k, v))
    scale = 1.0 / math.sqrt(q64.shape[-1])
    scores = q64 @ k64.transpose(0, 2, 1) * scale
    alpha = masked_softmax(_t(scores), mask).numpy()
    return {"q": q64, "k": k64, "v": v64, "scores": scores, "alpha": alpha, "out": alpha @ v64, "scale": scale}


def additive_intermediates(q, k, v, params, mask=None) -> dict:
    """The correct additive forward's values a cache may hold (cache repair)."""
    q64, k64, v64 = (np.asarray(a, np.float64) for a in (q, k, v))
    p = {n: np.asarray(a, np.float64) for n, a in params.items()}
    fq, fk = q64 @ p["W_q"].T, k64 @ p["W_k"].T
    feat = np.tanh(fq[:, :, None, :] + fk[:, None, :, :])
    scores = feat @ p["w_v"][0]
    alpha = masked_softmax(_t(scores), mask).numpy()
    return {"q": q64, "k": k64, "v": v64, **p, "fq": fq, "fk": fk, "feat": feat, "scores": scores,
            "alpha": alpha, "out": alpha @ v64}


def attention_variants(q, k, v, mask):
    """{mistake sentence: out} for the classic mistakes of scaled dot-product attention."""
    ts = [_t(a) for a in (q, k, v)]
    d = q.shape[-1]
    out = {
        "the softmax runs over the queries (axis 1), not over the keys (the last axis)":
            _sdpa(*ts, mask, axis=1),
        "the scores are not divided by sqrt(d)": _sdpa(*ts, mask, scale=1.0),
        "the scores are divided by d instead of sqrt(d)": _sdpa(*ts, mask, scale=1.0 / d),
        "the mask is ignored": _sdpa(*ts, None),
    }
    if mask is not None:
        out["the mask is applied after the softmax (masked weights zeroed, the rest no longer sums to 1): "
            "set masked scores to -inf before it"] = _sdpa(*ts, mask, mask_after=True)
    return {k_: o.detach().numpy() for k_, o in out.items()}


def additive_variants(q, k, v, params, mask):
    ts = [_t(a) for a in (q, k, v)]
    pt = {n: _t(a) for n, a in params.items()}
    out = {
        "the softmax runs over the queries (axis 1), not over the keys (the last axis)":
            _additive(*ts, pt, mask, axis=1),
        "the tanh is missing": _additive(*ts, pt, mask, no_tanh=True),
        "the mask is ignored": _additive(*ts, pt, None),
    }
    if mask is not None:
        out["the mask is applied after the softmax (masked weights zeroed, the rest no longer sums to 1): "
            "set masked scores to -inf before it"] = _additive(*ts, pt, mask, mask_after=True)
    return {k_: o.detach().numpy() for k_, o in out.items()}


def which_variant(got, variants, rtol=1e-6, atol=1e-8) -> str:
    """' (hint: ...)' when ``got`` matches one known mistake, else ''."""
    got = np.asarray(getattr(got, "array", got))
    for sentence, o in variants.items():
        if got.shape == o.shape and np.all(np.isfinite(got)) and np.allclose(got.astype(np.float64), o,
                                                                               rtol=rtol, atol=atol):
            return f" (hint: this is what you get when {sentence})"
    return ""


# ------------------------------------------------------------------ PyTorch modules
def bahdanau_ref(sd, query, keys, values, mask=None, douts=None):
    """BahdanauAttention from torch.nn.functional with the weights ``sd`` (numpy, the state_dict):
    returns [context, weights], and with ``douts`` the gradients ([dquery, dkeys, dvalues], {param: grad})."""
    g = douts is not None
    ts = [_t(a, g) for a in (query, keys, values)]
    pt = {n: _t(a, g) for n, a in sd.items()}
    ctx, w = _bahdanau(pt, *ts, mask)
    if not g:
        return [ctx.detach().numpy(), w.detach().numpy()]
    torch.autograd.backward([ctx, w], [_t(d) for d in douts])
    return [ctx.detach().numpy(), w.detach().numpy()], ([t.grad.numpy() for t in ts],
                                                         {n: t.grad.numpy() for n, t in pt.items()})


def _bahdanau(pt, query, keys, values, mask, prefix=""):
    f = torch.nn.functional
    feat = torch.tanh(f.linear(query, pt[prefix + "W_q.weight"])[:, None, :] + f.linear(keys, pt[prefix + "W_k.weight"]))
    scores = f.linear(feat, pt[prefix + "w_v.weight"])[..., 0]  # (N, T)
    w = masked_softmax(scores, mask, axis=1)
    return torch.einsum("nt,ntd->nd", w, values), w


def decoder_step_ref(sd, token, h, memory, mask=None, douts=None):
    """AttentionDecoderStep from torch.nn.functional (embedding, linear, the GRU cell's equations):
    returns [logits, h_next, weights], and with ``douts`` ([dh, dmemory], {param: grad})."""
    f = torch.nn.functional
    g = douts is not None
    ht, mt = _t(h, g), _t(memory, g)
    pt = {n: _t(a, g) for n, a in sd.items()}
    ctx, w = _bahdanau(pt, ht, mt, mt, mask, prefix="attention.")
    x = torch.cat([f.embedding(torch.as_tensor(np.asarray(token, np.int64)), pt["embed.weight"]), ctx], dim=1)
    gi = f.linear(x, pt["cell.weight_ih"], pt["cell.bias_ih"])
    gh = f.linear(ht, pt["cell.weight_hh"], pt["cell.bias_hh"])
    H = ht.shape[1]
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    h_next = (1 - z) * n + z * ht
    logits = f.linear(torch.cat([h_next, ctx], dim=1), pt["out.weight"], pt["out.bias"])
    outs = [logits, h_next, w]
    vals = [o.detach().numpy() for o in outs]
    if not g:
        return vals
    torch.autograd.backward(outs, [_t(d) for d in douts])
    return vals, ([ht.grad.numpy(), mt.grad.numpy()], {n: t.grad.numpy() for n, t in pt.items()})


def self_attention_ref(sd, x, mask=None):
    """Single-head self-attention with nn.MultiheadAttention(E, 1)'s weights ``sd`` and the course's rule
    for a position that may attend to nothing (weights 0, attention output 0, so out = out_proj.bias):
    returns [out, weights] (float64)."""
    f = torch.nn.functional
    pt = {n: _t(a) for n, a in sd.items()}
    q, k, v = f.linear(_t(x), pt["in_proj_weight"], pt["in_proj_bias"]).chunk(3, dim=-1)
    w = masked_softmax(q @ k.transpose(1, 2) / math.sqrt(x.shape[-1]), mask, axis=-1)
    out = f.linear(w @ v, pt["out_proj.weight"], pt["out_proj.bias"])
    return [out.detach().numpy(), w.detach().numpy()]


def self_attention_variants(sd, x, mask=None):
    """{mistake sentence: out} for SelfAttention's classic mistakes (weights of nn.MultiheadAttention)."""
    f = torch.nn.functional
    pt = {n: _t(a) for n, a in sd.items()}
    q, k, v = f.linear(_t(x), pt["in_proj_weight"], pt["in_proj_bias"]).chunk(3, dim=-1)
    raw = q @ k.transpose(1, 2)
    E = x.shape[-1]

    def out(w):
        return f.linear(w @ v, pt["out_proj.weight"], pt["out_proj.bias"]).detach().numpy()

    found = {"the scores are not divided by sqrt(E)": out(masked_softmax(raw, mask)),
             "the softmax runs over the queries (dim 1), not over the keys (the last dim)":
                 out(masked_softmax(raw / math.sqrt(E), mask, axis=1)),
             "q and k are swapped (the weights are transposed)": out(masked_softmax(raw.transpose(1, 2) / math.sqrt(E), mask))}
    if mask is not None:
        m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), tuple(raw.shape)).copy())
        found["the mask is applied after the softmax (masked weights zeroed, the rest no longer sums to 1): "
              "set masked scores to -inf before it"] = out(torch.softmax(raw / math.sqrt(E), dim=-1) * m)
    return found
