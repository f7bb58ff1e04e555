# ch02 rnn_numpy in another style: caches as dicts holding the params; rnn_backward reads the params
# back out of the step caches and loops with its own state handling. Each MUTANT below replaces one
# graded function's source with a classic mistake; its points must be lost on that function only.
STYLE = {
    "rnn_step_forward": '''
def rnn_step_forward(x, h_prev, params):
    a = x @ params["weight_ih"].T + h_prev @ params["weight_hh"].T + params["bias_ih"] + params["bias_hh"]
    h_next = np.tanh(a)
    return h_next, {"x": x, "h_prev": h_prev, "a": a, "h_next": h_next, "params": params}
''',
    "rnn_step_backward": '''
def rnn_step_backward(dh_next, cache):
    p = cache["params"]
    da = dh_next * (1 - cache["h_next"] ** 2)
    grads = {"weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h_prev"],
             "bias_ih": da.sum(0), "bias_hh": da.sum(0)}
    return da @ p["weight_ih"], da @ p["weight_hh"], grads
''',
    "rnn_forward": '''
def rnn_forward(x, h0, params):
    hs, caches, h = [], [], h0
    for t in range(x.shape[1]):
        h, c = rnn_step_forward(x[:, t], h, params)
        hs.append(h)
        caches.append(c)
    return np.stack(hs, 1), caches
''',
    "rnn_backward": '''
def rnn_backward(dh, cache):
    params = cache[0]["params"]
    N, T, H = dh.shape
    dx = np.zeros((N, T, params["weight_ih"].shape[1]), dtype=dh.dtype)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    carry = np.zeros((N, H), dtype=dh.dtype)
    for t in range(T - 1, -1, -1):
        dx[:, t], carry, g = rnn_step_backward(dh[:, t] + carry, cache[t])
        for k in grads:
            grads[k] = grads[k] + g[k]
    return dx, carry, grads
''',
}

MUTANTS = {
    "tanh' on the pre-activation (1 - a**2)": ("rnn_step_backward", ('(1 - cache["h_next"] ** 2)', '(1 - cache["a"] ** 2)')),
    "tanh' on the output unsquared (1 - h_next)": ("rnn_step_backward", ('(1 - cache["h_next"] ** 2)', '(1 - cache["h_next"])')),
    "bias gradient not summed over the batch": ("rnn_step_backward", ('"bias_ih": da.sum(0)', '"bias_ih": da[0]')),
    "step forward raises": ("rnn_step_forward", ("    h_next = np.tanh(a)", "    raise NotImplementedError")),
    "step backward raises": ("rnn_step_backward", ("    p = cache", "    raise NotImplementedError\n    p = cache")),
    "step forward without bias_hh": ("rnn_step_forward", (' + params["bias_hh"]', '')),
    "gradient not carried from step t+1": ("rnn_backward", ("dh[:, t] + carry", "dh[:, t]")),
    "weight gradients not accumulated": ("rnn_backward", ("grads[k] = grads[k] + g[k]", "grads[k] = g[k]")),
    "forward returns h0 first": ("rnn_forward", ("hs, caches, h = [], [], h0", "hs, caches, h = [h0], [], h0")),
}

# (mistake's function, function that loses with it): coupled by design, with the reason.
COUPLED = {
    ("rnn_step_forward", "rnn_step_backward"): "a step backward is run on its own step forward's cache",
    # this style's rnn_backward reads the params out of ITS step caches (dicts): when a step raises there
    # is no cache of that layout, and the trusted steps' caches are tuples (the fallback cannot help)
    ("rnn_step_forward", "rnn_backward"): "rnn_backward reads its own step caches' layout",
    ("rnn_step_backward", "rnn_backward"): "rnn_backward reads its own step caches' layout",
}
