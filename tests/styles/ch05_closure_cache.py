# ch05 gru_numpy in another style: the step cache is a closure (the step's backward, bound to its
# values); gru_step_backward calls it; gru_backward keeps the params out of the cache (it reads the
# shapes from the closures' results) and walks a reversed list.
STYLE = {
    "gru_step_forward": '''
def gru_step_forward(x, h_prev, params):
    H = h_prev.shape[1]
    Wi, Wh, bi, bh = params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]
    gi = x @ Wi.T + bi
    gh = h_prev @ Wh.T + bh
    sig = lambda v: 1 / (1 + np.exp(-v))
    r = sig(gi[:, :H] + gh[:, :H])
    z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    hn = gh[:, 2 * H:]
    n = np.tanh(gi[:, 2 * H:] + r * hn)
    h_next = (1 - z) * n + z * h_prev

    def back(dh):
        dn = dh * (1 - z) * (1 - n ** 2)
        dz = dh * (h_prev - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        d_in = np.concatenate([dr, dz, dn], axis=1)
        d_hid = np.concatenate([dr, dz, dn * r], axis=1)
        grads = {"weight_ih": d_in.T @ x, "weight_hh": d_hid.T @ h_prev,
                 "bias_ih": d_in.sum(0), "bias_hh": d_hid.sum(0)}
        return d_in @ Wi, dh * z + d_hid @ Wh, grads

    return h_next, back
''',
    "gru_step_backward": '''
def gru_step_backward(dh_next, cache):
    return cache(dh_next)
''',
    "gru_forward": '''
def gru_forward(x, h0, params):
    out = np.empty(x.shape[:2] + h0.shape[1:], dtype=x.dtype)
    caches, h = [], h0
    for t in range(x.shape[1]):
        h, c = gru_step_forward(x[:, t], h, params)
        out[:, t] = h
        caches.append(c)
    return out, caches
''',
    "gru_backward": '''
def gru_backward(dh, cache):
    T = dh.shape[1]
    dxs, grads, carry = [None] * T, None, np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        dxs[t], carry, g = gru_step_backward(dh[:, t] + carry, cache[t])
        grads = g if grads is None else {k: grads[k] + g[k] for k in g}
    return np.stack(dxs, 1), carry, grads
''',
}

MUTANTS = {
    "update rule mirrored (z * n + (1 - z) * h)": ("gru_step_forward", ("h_next = (1 - z) * n + z * h_prev",
                                                                        "h_next = z * n + (1 - z) * h_prev")),
    "reset gate applied after the bias": ("gru_step_forward", ("hn = gh[:, 2 * H:]", "hn = gh[:, 2 * H:] - bh[2 * H:]")),
    "tanh' written 1 - n": ("gru_step_forward", ("dn = dh * (1 - z) * (1 - n ** 2)", "dn = dh * (1 - z) * (1 - n)"), "gru_step_backward"),
    "bias gradient not summed over the batch": ("gru_step_forward", ('"bias_ih": d_in.sum(0)', '"bias_ih": d_in[0]'), "gru_step_backward"),
    "gradient not carried": ("gru_backward", ("dh[:, t] + carry", "dh[:, t]")),
    "weight gradients not accumulated": ("gru_backward", ("{k: grads[k] + g[k] for k in g}", "g")),
    "states shifted by one step": ("gru_forward", ("out[:, t] = h\n", "out[:, t] = h\n        out[:, t] = out[:, t - 1] if t else h\n")),
}

COUPLED = {
    # the backward closure lives in the step forward: its mistakes are the step forward's own code,
    # and the step backward (which only calls it) loses with it
    ("gru_step_forward", "gru_step_backward"): "the step backward is a closure made by the step forward",
}
