"""Instructor-only: the fastest NumPy LSTM of the benchmark (feature-major, whole-sequence backward).

NOT course material: like autograder/testkit/reference/lstm_numpy.py it is a full solution of chapter 4's
graded ``lstm_forward`` / ``lstm_backward``, so it lives in benchmarks/ (never released, never built into
the book); the appendix describes its techniques and shows the measured ratios only.

Same conventions as the reference (CONTRACT.md): batch first, ``x (N, T, D)``, ``h0, c0 (N, H)``, torch's
parameter names and layout, gate order i, f, g, o; float32 in, float32 out (float64 likewise); inputs never
modified. What it changes, measured one at a time with benchmarks/bench_models.py (1 thread, N=64, T=100,
D=H=128, float32), against the fused, preallocated reference:

- Feature-major inside: every per-step array is (features, N), C-contiguous, so a gate is a contiguous
  block of rows (in the batch-major (N, 4H) layout each gate is a strided column block, and NumPy's
  elementwise operations on strided blocks ran about twice as slow).
- One product per step for everything that enters the gates: [W_ih | W_hh | b] (4H, D+H+1) times the
  stacked column block [x_t; h_{t-1}; 1] (D+H+1, N); the bias rides in the product as a row of ones.
- Gate rows reordered to o, i, f, g, and the three sigmoid rows of the weights halved once, so that ONE
  tanh over all 4H rows gives tanh(z/2) for o, i, f and tanh(z) for g; sigma(z) = 0.5 tanh(z/2) + 0.5 is
  then two in-place operations on 3H contiguous rows.
- Backward: per step only what the recurrence needs: a few in-place operations on (H, N) blocks and one
  product W_hh^T dA_t, (H, 4H) @ (4H, N). The gate gradients of a chunk of C steps are collected in a
  small buffer (it stays in cache), and per chunk one product (4H, C*N) @ (C*N, D+H+1) adds to
  [dW_ih | dW_hh | db] (the bias gradient through the row of ones) and one product (C*N, 4H) @ (4H, D)
  gives dx of the chunk's steps.
- Every buffer allocated once per call and written with ``out=``; float32 throughout (no upcasts).
"""
from __future__ import annotations

import numpy as np

CHUNK = 20  # steps per product of the weight gradients and of dx


def _perm(H):
    """Row order o, i, f, g (inside) from torch's i, f, g, o."""
    return np.concatenate([np.arange(3 * H, 4 * H), np.arange(0, 3 * H)])


def lstm_forward(x, h0, c0, params):
    """x (N, T, D), h0 (N, H), c0 (N, H) -> h (N, T, H), cache."""
    dt = x.dtype
    N, T, D = x.shape
    H = h0.shape[1]
    K = D + H + 1
    perm = _perm(H)
    W = np.concatenate([params["weight_ih"], params["weight_hh"]], axis=1).astype(dt, copy=False)[perm]  # (4H, D+H)
    b = (params["bias_ih"] + params["bias_hh"]).astype(dt, copy=False)[perm]  # (4H,)
    half = np.ones((4 * H, 1), dt)
    half[: 3 * H] = 0.5  # o, i, f rows: tanh(z / 2)
    W_s = np.concatenate([W, b[:, None]], axis=1) * half  # (4H, K): the bias as a last column
    Z = np.empty((T + 1, K, N), dt)  # Z[t] = [x_t; h_{t-1}; 1], feature-major, one contiguous block per step
    for t in range(T):
        np.copyto(Z[t, :D], x[:, t].T)  # (D, N) block
    Z[T, :D] = 0
    Z[0, D : D + H] = h0.T
    Z[:, D + H] = 1
    G = np.empty((T, 4 * H, N), dt)  # gate activations o, i, f, g, one contiguous block per step
    cs = np.empty((T + 1, H, N), dt)  # cs[t + 1] = c_t^T
    tc = np.empty((T, H, N), dt)  # tanh(c_t)^T
    cs[0] = c0.T
    tmp = np.empty((H, N), dt)
    for t in range(T):
        a = G[t]  # (4H, N)
        np.matmul(W_s, Z[t], out=a)  # (4H, K) @ (K, N): input, recurrence and bias in one product
        np.tanh(a, out=a)  # tanh(z/2) for o, i, f; tanh(z) for g
        s = a[: 3 * H]
        s *= 0.5
        s += 0.5  # sigma(z) = 0.5 tanh(z/2) + 0.5
        o, i, f, g = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]  # (H, N) each
        np.multiply(f, cs[t], out=cs[t + 1])
        np.multiply(i, g, out=tmp)
        cs[t + 1] += tmp  # c_t = f c_{t-1} + i g
        np.tanh(cs[t + 1], out=tc[t])
        np.multiply(o, tc[t], out=Z[t + 1, D : D + H])  # h_t = o tanh(c_t), the next step's input
    h = np.empty((N, T, H), dt)
    for t in range(T):
        np.copyto(h[:, t], Z[t + 1, D : D + H].T)  # (N, H) block
    return h, (Z, G, cs, tc, W, perm)


def lstm_backward(dh, cache):
    """dh (N, T, H) -> dx (N, T, D), dh0 (N, H), dc0 (N, H), grads (dict like params)."""
    Z, G, cs, tc, W, perm = cache
    T, _, N = G.shape
    H = cs.shape[1]
    K = Z.shape[1]
    D = K - H - 1
    dt = G.dtype
    C = CHUNK
    W_hh_T = np.ascontiguousarray(W[:, D:].T)  # (H, 4H)
    W_ih = np.ascontiguousarray(W[:, :D])  # (4H, D)
    dXc = np.empty((C * N, D), dt)
    dAc = np.empty((4 * H, C, N), dt)  # gate gradients of one chunk of steps, feature-major
    Zc = np.empty((K, C, N), dt)  # the inputs [x_t; h_{t-1}; 1] of the same steps
    dW = np.zeros((4 * H, K), dt)  # [dW_ih | dW_hh | db], rows o, i, f, g
    tmpW = np.empty_like(dW)
    dAt = np.empty((4 * H, N), dt)  # gradients on the pre-activations at step t, o, i, f, g
    dhp = np.empty((H, N), dt)  # dh_{t-1} from step t
    SP = np.empty((3, H, N), dt)
    Q = np.empty((3, H, N), dt)  # the factors of dc in da_i, da_f, da_g
    Kc = np.empty((H, N), dt)
    dh_t = np.empty((H, N), dt)
    dc = np.zeros((H, N), dt)
    dx = np.empty((N, dh.shape[1], D), dt)
    for t in range(T - 1, -1, -1):
        a = G[t]
        s = a[: 3 * H].reshape(3, H, N)  # sigma for o, i, f
        o, i, f, g = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        # factors known from the forward pass
        np.subtract(1, s, out=SP)
        SP *= s  # sigma' = s (1 - s)
        SP[0] *= tc[t]  # tanh(c) o (1 - o)
        np.multiply(SP[1], g, out=Q[0])  # g i (1 - i)
        np.multiply(SP[2], cs[t], out=Q[1])  # c_{t-1} f (1 - f)
        np.multiply(g, g, out=Q[2])
        np.subtract(1, Q[2], out=Q[2])
        Q[2] *= i  # i (1 - g^2)
        np.multiply(tc[t], tc[t], out=Kc)
        np.subtract(1, Kc, out=Kc)
        Kc *= o  # o (1 - tanh^2 c)
        # the recurrence
        if t == T - 1:
            np.copyto(dh_t, dh[:, t].T)
        else:
            np.add(dh[:, t].T, dhp, out=dh_t)  # from the loss and from step t + 1
        np.multiply(dh_t, SP[0], out=dAt[:H])  # da_o
        Kc *= dh_t
        dc += Kc  # dc_t
        np.multiply(dc, Q, out=dAt[H:].reshape(3, H, N))  # da_i, da_f, da_g in one operation
        dc *= f  # dc_{t-1}
        np.matmul(W_hh_T, dAt, out=dhp)  # (H, 4H) @ (4H, N)
        np.copyto(dAc[:, t % C], dAt)
        np.copyto(Zc[:, t % C], Z[t])
        if t % C == 0:  # a chunk is complete: steps t .. t + c - 1
            c = min(C, T - t)
            np.matmul(dAc[:, :c].reshape(4 * H, c * N), Zc[:, :c].reshape(K, c * N).T, out=tmpW)  # (4H, K)
            dW += tmpW
            np.matmul(dAc[:, :c].reshape(4 * H, c * N).T, W_ih, out=dXc[: c * N])  # (c*N, D), rows (step, n)
            np.copyto(dx[:, t : t + c], dXc[: c * N].reshape(c, N, D).transpose(1, 0, 2))
    inv = np.argsort(perm)  # o, i, f, g -> i, f, g, o
    db = dW[inv, D + H]
    grads = {"weight_ih": np.ascontiguousarray(dW[inv, :D]),  # (4H, D)
             "weight_hh": np.ascontiguousarray(dW[inv, D : D + H]),  # (4H, H)
             "bias_ih": db, "bias_hh": db.copy()}
    return dx, np.ascontiguousarray(dhp.T), np.ascontiguousarray(dc.T), grads
