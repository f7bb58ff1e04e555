"""Instructor-only: fast NumPy LSTM, forward and backward, for benchmarks/bench_models.py.

NOT course material. This directory is never built into the book, never copied into the sandbox and
never released: it holds full solutions of graded names (chapter 4's ``lstm_forward`` /
``lstm_backward``). The book's appendix describes the techniques and shows measured ratios only.

Conventions are the course contract's (shared/CONTRACT.md): batch first, ``x (N, T, D)``,
``h0, c0 (N, H)``, parameters with torch's names and layout ``weight_ih (4H, D)``,
``weight_hh (4H, H)``, ``bias_ih, bias_hh (4H,)``, gates in the order i, f, g, o; float32 in,
float32 out (float64 likewise); inputs are never modified.

Two implementations of the same maths:

- ``lstm_forward`` / ``lstm_backward``: the fast one. One GEMM for the input projections of all
  steps at once; one fused ``(N, H) @ (H, 4H)`` GEMM per step; time-major, preallocated buffers
  written with ``out=``; the sigmoid as ``0.5 * tanh(0.5 x) + 0.5`` (one transcendental, no
  overflow); the weight gradients as two large GEMMs after the time loop.
- ``lstm_forward_naive`` / ``lstm_backward_naive``: the textbook one, for comparison. Per step, per
  gate, separate products with the input and the state, and fresh arrays everywhere.
"""
from __future__ import annotations

import numpy as np


def _sigmoid_(a):
    """In place: a <- sigmoid(a), via tanh (stable for any |a|)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


# ------------------------------------------------------------------------------ fast version
def lstm_forward(x, h0, c0, params):
    """x (N, T, D), h0 (N, H), c0 (N, H) -> h (N, T, H), cache."""
    dt = x.dtype
    N, T, D = x.shape
    H = h0.shape[1]
    W_ih = params["weight_ih"].astype(dt, copy=False)  # (4H, D)
    W_hh = params["weight_hh"].astype(dt, copy=False)  # (4H, H)
    b = (params["bias_ih"] + params["bias_hh"]).astype(dt, copy=False)  # (4H,)
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, N, D), time-major
    acts = xt.reshape(T * N, D) @ W_ih.T  # (T*N, 4H): input projections of every step in one GEMM
    acts += b
    acts = acts.reshape(T, N, 4 * H)  # becomes the gate activations, step by step
    hs = np.empty((T + 1, N, H), dt)  # hs[0] = h0, hs[t + 1] = h_t
    cs = np.empty((T + 1, N, H), dt)
    tc = np.empty((T, N, H), dt)  # tanh(c_t)
    hs[0], cs[0] = h0, c0
    W_hh_T = np.ascontiguousarray(W_hh.T)  # (H, 4H)
    rec = np.empty((N, 4 * H), dt)
    tmp = np.empty((N, H), dt)
    for t in range(T):
        a = acts[t]  # (N, 4H) view
        np.matmul(hs[t], W_hh_T, out=rec)  # (N, 4H): one fused GEMM for the four gates
        a += rec
        _sigmoid_(a[:, : 2 * H])  # i, f
        np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])  # g
        _sigmoid_(a[:, 3 * H :])  # o
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        np.multiply(f, cs[t], out=cs[t + 1])
        np.multiply(i, g, out=tmp)
        cs[t + 1] += tmp
        np.tanh(cs[t + 1], out=tc[t])
        np.multiply(o, tc[t], out=hs[t + 1])
    h = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))  # (N, T, H)
    return h, (xt, hs, cs, tc, acts, W_ih, W_hh)


def lstm_backward(dh, cache):
    """dh (N, T, H) -> dx (N, T, D), dh0 (N, H), dc0 (N, H), grads (dict like params)."""
    xt, hs, cs, tc, acts, W_ih, W_hh = cache
    T, N, D = xt.shape
    H = hs.shape[2]
    dt = xt.dtype
    dht = dh.transpose(1, 0, 2)  # (T, N, H) view
    dacts = np.empty((T, N, 4 * H), dt)  # gradients on the gate pre-activations
    dh_next = np.zeros((N, H), dt)
    dc = np.zeros((N, H), dt)
    dh_t = np.empty((N, H), dt)
    tmp = np.empty((N, H), dt)
    for t in range(T - 1, -1, -1):
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        d = dacts[t]
        di, df, dg, do = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
        np.add(dht[t], dh_next, out=dh_t)
        # do_pre = dh * tanh(c) * o * (1 - o)
        np.multiply(dh_t, tc[t], out=do)
        np.subtract(1, o, out=tmp)
        tmp *= o
        do *= tmp
        # dc += dh * o * (1 - tanh(c)^2)
        np.multiply(tc[t], tc[t], out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh_t
        dc += tmp
        # di_pre = dc * g * i * (1 - i); df_pre = dc * c_prev * f * (1 - f); dg_pre = dc * i * (1 - g^2)
        np.subtract(1, i, out=tmp)
        tmp *= i
        np.multiply(dc, g, out=di)
        di *= tmp
        np.subtract(1, f, out=tmp)
        tmp *= f
        np.multiply(dc, cs[t], out=df)
        df *= tmp
        np.multiply(g, g, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= i
        np.multiply(dc, tmp, out=dg)
        dc *= f  # dc_prev
        np.matmul(d, W_hh, out=dh_next)  # (N, 4H) @ (4H, H): the fused gate GEMM, transposed
    d2 = dacts.reshape(T * N, 4 * H)
    dx = (d2 @ W_ih).reshape(T, N, D).transpose(1, 0, 2)  # (N, T, D)
    grads = {
        "weight_ih": d2.T @ xt.reshape(T * N, D),  # (4H, D)
        "weight_hh": d2.T @ hs[:-1].reshape(T * N, H),  # (4H, H)
        "bias_ih": d2.sum(axis=0),
    }
    grads["bias_hh"] = grads["bias_ih"].copy()
    return np.ascontiguousarray(dx), dh_next, dc, grads


# ---------------------------------------------------------------------------- naive version
def _sig(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


def lstm_forward_naive(x, h0, c0, params):
    """The textbook loop: per step and per gate, two small products; a fresh array for everything."""
    N, T, D = x.shape
    H = h0.shape[1]
    Wi = [params["weight_ih"][k * H : (k + 1) * H] for k in range(4)]  # (H, D) each
    Wh = [params["weight_hh"][k * H : (k + 1) * H] for k in range(4)]  # (H, H) each
    bs = [params["bias_ih"][k * H : (k + 1) * H] + params["bias_hh"][k * H : (k + 1) * H] for k in range(4)]
    h, c, steps = h0, c0, []
    for t in range(T):
        z = [x[:, t] @ Wi[k].T + h @ Wh[k].T + bs[k] for k in range(4)]
        i, f, g, o = _sig(z[0]), _sig(z[1]), np.tanh(z[2]), _sig(z[3])
        c_new = f * c + i * g
        tch = np.tanh(c_new)
        h_new = o * tch
        steps.append((x[:, t], h, c, i, f, g, o, tch))
        h, c = h_new, c_new
    hs = np.stack([s[1] for s in steps[1:]] + [h], axis=1)  # (N, T, H)
    return hs.astype(x.dtype, copy=False), (steps, Wi, Wh)


def lstm_backward_naive(dh, cache):
    steps, Wi, Wh = cache
    N, T, H = dh.shape
    dWi = [np.zeros_like(w) for w in Wi]
    dWh = [np.zeros_like(w) for w in Wh]
    db = [np.zeros(H, dh.dtype) for _ in range(4)]
    dxs = [None] * T
    dh_next = np.zeros((N, H), dh.dtype)
    dc = np.zeros((N, H), dh.dtype)
    for t in range(T - 1, -1, -1):
        x_t, h_prev, c_prev, i, f, g, o, tch = steps[t]
        dht = dh[:, t] + dh_next
        dc = dc + dht * o * (1 - tch * tch)
        dz = [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g), dht * tch * o * (1 - o)]
        dc = dc * f
        dx_t = np.zeros_like(x_t)
        dh_next = np.zeros_like(h_prev)
        for k in range(4):
            dWi[k] += dz[k].T @ x_t
            dWh[k] += dz[k].T @ h_prev
            db[k] += dz[k].sum(axis=0)
            dx_t = dx_t + dz[k] @ Wi[k]
            dh_next = dh_next + dz[k] @ Wh[k]
        dxs[t] = dx_t
    grads = {"weight_ih": np.concatenate(dWi), "weight_hh": np.concatenate(dWh),
             "bias_ih": np.concatenate(db), "bias_hh": np.concatenate(db)}
    return np.stack(dxs, axis=1), dh_next, dc, grads
