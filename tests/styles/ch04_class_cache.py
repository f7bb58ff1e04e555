# ch04 lstm_numpy in another style: the step cache is a small class holding the params; lstm_backward
# reads the params back out of the step caches and walks the steps with a while loop.
STYLE = {
    "lstm_step_forward": '''
class _StepCache:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def lstm_step_forward(x, h_prev, c_prev, params):
    H = h_prev.shape[1]
    a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T + params["bias_hh"]
    sig = lambda v: 1 / (1 + np.exp(-v))
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    c_next = f * c_prev + i * g
    tc = np.tanh(c_next)
    return o * tc, c_next, _StepCache(x=x, h_prev=h_prev, c_prev=c_prev, i=i, f=f, g=g, o=o, tc=tc, params=params)
''',
    "lstm_step_backward": '''
def lstm_step_backward(dh_next, dc_next, cache):
    k = cache
    dc = dc_next + dh_next * k.o * (1 - k.tc ** 2)
    da = np.concatenate([dc * k.g * k.i * (1 - k.i), dc * k.c_prev * k.f * (1 - k.f),
                         dc * k.i * (1 - k.g ** 2), dh_next * k.tc * k.o * (1 - k.o)], axis=1)
    grads = {"weight_ih": da.T @ k.x, "weight_hh": da.T @ k.h_prev, "bias_ih": da.sum(0), "bias_hh": da.sum(0)}
    return da @ k.params["weight_ih"], da @ k.params["weight_hh"], dc * k.f, grads
''',
    "lstm_forward": '''
def lstm_forward(x, h0, c0, params):
    hs, caches, h, c = [], [], h0, c0
    for t in range(x.shape[1]):
        h, c, k = lstm_step_forward(x[:, t], h, c, params)
        hs.append(h)
        caches.append(k)
    return np.stack(hs, 1), caches
''',
    "lstm_backward": '''
def lstm_backward(dh, cache):
    params = cache[0].params
    N, T, H = dh.shape
    dx = np.zeros((N, T, params["weight_ih"].shape[1]), dtype=dh.dtype)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_c, dc_c = np.zeros((N, H), dh.dtype), np.zeros((N, H), dh.dtype)
    t = T - 1
    while t >= 0:
        dx[:, t], dh_c, dc_c, g = lstm_step_backward(dh[:, t] + dh_c, dc_c, cache[t])
        for k in grads:
            grads[k] = grads[k] + g[k]
        t -= 1
    return dx, dh_c, dc_c, grads
''',
}

MUTANTS = {
    "gates in CS231n's order (i, f, o, g)": ("lstm_step_forward", ("np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])",
                                                                    "np.tanh(a[:, 3 * H:]), sig(a[:, 2 * H:3 * H])")),
    "tanh' of the cell written 1 - tc": ("lstm_step_backward", ("(1 - k.tc ** 2)", "(1 - k.tc)")),
    "bias gradient not summed over the batch": ("lstm_step_backward", ('"bias_ih": da.sum(0)', '"bias_ih": da[0]')),
    "dc_prev without the forget gate": ("lstm_step_backward", ("dc * k.f, grads", "dc, grads")),
    "h gradient not carried": ("lstm_backward", ("dh[:, t] + dh_c", "dh[:, t]")),
    "c gradient not carried": ("lstm_backward", ("dh_c, dc_c, cache[t]", "dh_c, 0 * dc_c, cache[t]")),
    "weight gradients not accumulated": ("lstm_backward", ("grads[k] = grads[k] + g[k]", "grads[k] = g[k]")),
    "forward keeps c instead of h": ("lstm_forward", ("hs.append(h)", "hs.append(c)")),
}

COUPLED = {
    ("lstm_step_forward", "lstm_step_backward"): "a step backward is run on its own step forward's cache",
}
