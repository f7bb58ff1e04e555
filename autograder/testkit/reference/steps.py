"""Trusted NumPy step functions: the stand-ins of dependency isolation (instructor-only).

A hidden test of a sequence function declares ``@graded("rnn_forward", isolate=RNN_STEPS)``: while
it runs, the student's ``rnn_step_forward`` / ``rnn_step_backward`` are replaced by stand-ins that
send their arguments to the grader, where these functions run; so a mistake in a step costs points on
the step's own tests only. They run in the grader's process, never in the student's: only their
plain-data results (arrays, tuples, str-keyed dicts) are sent back. Each forward's cache is a tuple of
arrays (and the params dict) that the matching backward takes, in the dtype of the inputs.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(a):
    return 0.5 * np.tanh(0.5 * a) + 0.5  # stable for any a


def _params(p, dtype):
    return {k: np.asarray(v, dtype=dtype) for k, v in p.items()}


# ------------------------------------------------------------------------------------ RNN
def rnn_step_forward(x, h_prev, params):
    p = _params(params, x.dtype)
    pre = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    h_next = np.tanh(pre)
    return h_next, (x, h_prev, p, h_next)


def rnn_step_backward(dh_next, cache):
    x, h_prev, p, h_next = cache
    dpre = dh_next * (1 - h_next ** 2)
    dbias = dpre.sum(axis=0)
    grads = {"weight_ih": dpre.T @ x, "weight_hh": dpre.T @ h_prev, "bias_ih": dbias, "bias_hh": dbias.copy()}
    return dpre @ p["weight_ih"], dpre @ p["weight_hh"], grads


# ----------------------------------------------------------------------------------- LSTM
def lstm_step_forward(x, h_prev, c_prev, params):
    p = _params(params, x.dtype)
    H = h_prev.shape[1]
    pre = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    gi, gf = _sigmoid(pre[:, :H]), _sigmoid(pre[:, H:2 * H])
    gg, go = np.tanh(pre[:, 2 * H:3 * H]), _sigmoid(pre[:, 3 * H:])
    c_next = gf * c_prev + gi * gg
    tc = np.tanh(c_next)
    return go * tc, c_next, (x, h_prev, c_prev, p, gi, gf, gg, go, tc)


def lstm_step_backward(dh_next, dc_next, cache):
    x, h_prev, c_prev, p, gi, gf, gg, go, tc = cache
    dc = dc_next + dh_next * go * (1 - tc ** 2)
    dpre = np.concatenate([dc * gg * gi * (1 - gi), dc * c_prev * gf * (1 - gf), dc * gi * (1 - gg ** 2),
                           dh_next * tc * go * (1 - go)], axis=1)
    dbias = dpre.sum(axis=0)
    grads = {"weight_ih": dpre.T @ x, "weight_hh": dpre.T @ h_prev, "bias_ih": dbias, "bias_hh": dbias.copy()}
    return dpre @ p["weight_ih"], dpre @ p["weight_hh"], dc * gf, grads


# ------------------------------------------------------------------------------------ GRU
def gru_step_forward(x, h_prev, params):
    p = _params(params, x.dtype)
    H = h_prev.shape[1]
    si = x @ p["weight_ih"].T + p["bias_ih"]
    sh = h_prev @ p["weight_hh"].T + p["bias_hh"]
    r = _sigmoid(si[:, :H] + sh[:, :H])
    z = _sigmoid(si[:, H:2 * H] + sh[:, H:2 * H])
    hn = sh[:, 2 * H:]
    n = np.tanh(si[:, 2 * H:] + r * hn)
    return (1 - z) * n + z * h_prev, (x, h_prev, p, r, z, n, hn)


def gru_step_backward(dh_next, cache):
    x, h_prev, p, r, z, n, hn = cache
    dn_pre = dh_next * (1 - z) * (1 - n ** 2)
    dr_pre = dn_pre * hn * r * (1 - r)
    dz_pre = dh_next * (h_prev - n) * z * (1 - z)
    d_in = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
    d_hid = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)
    grads = {"weight_ih": d_in.T @ x, "weight_hh": d_hid.T @ h_prev,
             "bias_ih": d_in.sum(axis=0), "bias_hh": d_hid.sum(axis=0)}
    return d_in @ p["weight_ih"], dh_next * z + d_hid @ p["weight_hh"], grads


RNN_STEPS = {"rnn_step_forward": rnn_step_forward, "rnn_step_backward": rnn_step_backward}
LSTM_STEPS = {"lstm_step_forward": lstm_step_forward, "lstm_step_backward": lstm_step_backward}
GRU_STEPS = {"gru_step_forward": gru_step_forward, "gru_step_backward": gru_step_backward}


# ------------------------------------------------------------------ chapter 1's layers
def affine_forward(x, W, b):
    return x @ W.T + b, (x, W)


def affine_backward(dout, cache):
    x, W = cache
    return dout @ W, dout.T @ x, dout.sum(axis=0)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    return dout * (1 - cache ** 2)


def sigmoid_forward(x):
    out = _sigmoid(x)
    return out, out


def sigmoid_backward(dout, cache):
    return dout * cache * (1 - cache)


LAYERS = {"affine_forward": affine_forward, "affine_backward": affine_backward, "tanh_forward": tanh_forward,
          "tanh_backward": tanh_backward, "sigmoid_forward": sigmoid_forward, "sigmoid_backward": sigmoid_backward}


# ------------------------------------------------------- what a step's cache may hold (cache repair)
def _sizes(x, h_prev) -> dict:
    """The sizes a cache may keep (ints): N, D, H."""
    return {"N": int(x.shape[0]), "D": int(x.shape[1]), "H": int(h_prev.shape[1])}


def lstm_step_intermediates(x, h_prev, c_prev, params) -> dict:
    """The correct LSTM step's values, float64, for cache repair (testkit/repair.py)."""
    x, h_prev, c_prev = (np.asarray(a, np.float64) for a in (x, h_prev, c_prev))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    H = h_prev.shape[1]
    pre = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    gi, gf = _sigmoid(pre[:, :H]), _sigmoid(pre[:, H:2 * H])
    gg, go = np.tanh(pre[:, 2 * H:3 * H]), _sigmoid(pre[:, 3 * H:])
    c_next = gf * c_prev + gi * gg
    tc = np.tanh(c_next)
    return {**_sizes(x, h_prev), "x": x, "h_prev": h_prev, "c_prev": c_prev, **p, "pre-activation": pre, "i": gi, "f": gf, "g": gg,
            "o": go, "c_next": c_next, "tanh(c_next)": tc, "h_next": go * tc}


def gru_step_intermediates(x, h_prev, params) -> dict:
    """The correct GRU step's values, float64, for cache repair (testkit/repair.py)."""
    x, h_prev = (np.asarray(a, np.float64) for a in (x, h_prev))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    H = h_prev.shape[1]
    si = x @ p["weight_ih"].T + p["bias_ih"]
    sh = h_prev @ p["weight_hh"].T + p["bias_hh"]
    r = _sigmoid(si[:, :H] + sh[:, :H])
    z = _sigmoid(si[:, H:2 * H] + sh[:, H:2 * H])
    hn = sh[:, 2 * H:]
    n = np.tanh(si[:, 2 * H:] + r * hn)
    return {**_sizes(x, h_prev), "x": x, "h_prev": h_prev, **p, "input side": si, "hidden side": sh, "r": r, "z": z,
            "hidden side of n": hn, "n": n, "h_next": (1 - z) * n + z * h_prev}


def rnn_step_intermediates(x, h_prev, params) -> dict:
    """The correct tanh RNN step's values, float64, for cache repair (testkit/repair.py)."""
    x, h_prev = (np.asarray(a, np.float64) for a in (x, h_prev))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    pre = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    return {**_sizes(x, h_prev), "x": x, "h_prev": h_prev, **p, "pre-activation": pre, "h_next": np.tanh(pre)}


STEP_INTERMEDIATES = {"rnn": (rnn_step_intermediates, 1), "lstm": (lstm_step_intermediates, 2),
                      "gru": (gru_step_intermediates, 1)}


def seq_intermediates(kind, x, *args) -> dict:
    """The correct sequence forward's values (``args``: the initial states, then params), float64: every
    step's intermediates named ``NAME@t`` (the weights once, without a step), the inputs and the stacked
    states ``h`` (and ``c``), and the sizes N, T, D, H as ints, for cache repair of a sequence forward's cache (testkit/repair.py)."""
    step, S = STEP_INTERMEDIATES[kind]
    states, params = [np.asarray(s, np.float64) for s in args[:S]], args[S]
    x = np.asarray(x, np.float64)
    N, T, D = (int(n) for n in x.shape)
    out = {"N": N, "T": T, "D": D, "H": int(states[0].shape[1]),  # sizes a cache may keep (ints)
           "x": x, "h0": states[0], **({"c0": states[1]} if S == 2 else {}),
           **{k: np.asarray(v, np.float64) for k, v in params.items()}}
    hs, cs = [], []
    for t in range(x.shape[1]):
        r = step(x[:, t], *states, params)
        out.update({f"{n}@{t}": v for n, v in r.items() if n not in params and type(v) is not int})
        states = [r["h_next"]] + ([r["c_next"]] if S == 2 else [])
        hs.append(r["h_next"])
        cs.append(r.get("c_next"))
    out["h"] = np.stack(hs, axis=1)
    if S == 2:
        out["c"] = np.stack(cs, axis=1)
    return out
