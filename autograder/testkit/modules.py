"""Checks of from-scratch torch cells and sequence modules (LSTM, GRU) against torch.nn.

References are torch.nn modules in the grader's own process, with the student's module loaded with
the same weights. ``kind`` is 'lstm' or 'gru'; ``level`` is 'cell' or 'seq'. A chapter's test file
calls ``init_check``, ``forward_check`` and ``device_check`` from its own ``@graded`` functions.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from autograder.core.api import tensor

from autograder.core.records import StudentError

from .checks import Fail, RemoteTensor, check_array, unpack
from .corrected_modules import judge_corrected
from .mistakes import hint_gru, hint_lstm
from .shapes import seq_dims

TORCH_NN = {("lstm", "cell"): torch.nn.LSTMCell, ("lstm", "seq"): torch.nn.LSTM,
            ("gru", "cell"): torch.nn.GRUCell, ("gru", "seq"): torch.nn.GRU}
CLASS = {("rnn", "cell"): "RNNCell", ("rnn", "seq"): "RNN", ("lstm", "cell"): "LSTMCell", ("lstm", "seq"): "LSTM", ("gru", "cell"): "GRUCell", ("gru", "seq"): "GRU"}
TDTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def ref_module(kind, level, D, H, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    cls = TORCH_NN[(kind, level)]
    return cls(D, H, dtype=dtype, **({"batch_first": True} if level == "seq" else {}))


def check_from_scratch(sub, m, name):
    types = sub.module_types(m)
    bad = [t for t in types if t.startswith("torch.nn.modules.rnn")]
    if bad:
        raise Fail(f"{name} must be written from scratch; it contains {', '.join(sorted(set(bad)))}")


def new(sub, kind, level, D, H):
    name = CLASS[(kind, level)]
    m = sub.new(name, D, H)
    check_from_scratch(sub, m, name)
    return m


def check_state_dict(sub, m, ref, name):
    sd = sub.method(m, "state_dict")
    if not isinstance(sd, dict):
        raise Fail(f"{name}.state_dict() should be a dict of tensors")
    want = {name: tuple(t.shape) for name, t in ref.state_dict().items()}
    got = {k: tuple(getattr(v, "shape", ())) for k, v in sd.items()}
    if sorted(got) != sorted(want):
        raise Fail(f"{name}.state_dict() keys are {sorted(got)}, expected {sorted(want)} (torch.nn's names)")
    for k in want:
        if got[k] != want[k]:
            raise Fail(f"{name}.state_dict()[{k!r}] has shape {got[k]}, expected {want[k]}")
    return sd


def load(sub, m, ref, name, dtype):
    """Cast the student's module to ``dtype`` and load the reference's weights into it."""
    check_state_dict(sub, m, ref, name)
    sub.method(m, "double" if dtype == torch.float64 else "float")
    sub.method(m, "load_state_dict", {k: tensor(v.detach().cpu().numpy()) for k, v in ref.state_dict().items()})


def invoke_with_args(sub, m, *args):
    """m(*args) in the student's process; also returns the arguments (tensors with handles)."""
    value, args, _ = sub.invoke_with_args(m, *args)
    return value, args


def _np_params(ref, suffix=""):
    return {k: ref.state_dict()[k + suffix].detach().cpu().numpy().astype(np.float64)
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def _outputs(kind, level, got, name, K_N_H=None):
    """Flatten the module's return value into a list of RemoteTensors (in torch.nn's order)."""
    if kind == "lstm" and level == "cell":
        outs = list(unpack(got, 2, f"{name} forward (it returns (h', c'))"))
    elif kind == "gru" and level == "cell":
        outs = [got]
    elif kind == "lstm":
        out, hc = unpack(got, 2, f"{name} forward (it returns (output, (h_n, c_n)))")
        outs = [out] + list(unpack(hc, 2, f"{name} forward's second value (h_n, c_n)"))
    else:
        outs = list(unpack(got, 2, f"{name} forward (it returns (output, h_n))"))
    for o in outs:
        if not isinstance(o, RemoteTensor):
            raise Fail(f"{name} forward should return torch.Tensors, got {type(o).__name__}")
    return outs


def out_names(kind, level):
    return {("lstm", "cell"): ["h'", "c'"], ("gru", "cell"): ["h'"], ("lstm", "seq"): ["output", "h_n", "c_n"],
            ("gru", "seq"): ["output", "h_n"]}[(kind, level)]


def make_inputs(rng, kind, level, shape, dtype):
    """x and hx as numpy arrays; hx is a list of 1 (h) or 2 (h, c) states in torch's shapes."""
    N, T, D, H = shape
    x = rng.standard_normal((N, D) if level == "cell" else (N, T, D)).astype(dtype)
    sshape = (N, H) if level == "cell" else (1, N, H)
    hx = [rng.standard_normal(sshape).astype(dtype) for _ in range(2 if kind == "lstm" else 1)]
    return x, hx


def hx_arg(kind, hx, requires_grad=False):
    ts = [tensor(h, requires_grad) for h in hx]
    return tuple(ts) if kind == "lstm" else ts[0]


def ref_run(ref, kind, level, x, hx, douts=None):
    """The reference module's outputs (numpy) and, with douts, gradients (x, *hx, {param: grad})."""
    dt = next(ref.parameters()).dtype
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    hts = [torch.tensor(h, dtype=dt, requires_grad=True) for h in (hx or [])]
    ref.zero_grad()
    got = ref(xt, tuple(hts) if kind == "lstm" else hts[0]) if hx is not None else ref(xt)
    if kind == "lstm" and level == "cell":
        outs = list(got)
    elif kind == "gru" and level == "cell":
        outs = [got]
    elif kind == "lstm":
        outs = [got[0], *got[1]]
    else:
        outs = list(got)
    vals = [o.detach().numpy() for o in outs]
    if douts is None:
        return vals, None
    torch.autograd.backward(outs, [torch.tensor(d, dtype=dt) for d in douts])
    grads = [xt.grad.numpy()] + [h.grad.numpy() for h in hts] + [
        {k: p.grad.numpy() for k, p in ref.named_parameters()}]
    return vals, grads


def _hint(kind, level, ref, x, hx, got_first):
    try:
        return _hint_unsafe(kind, level, ref, x, hx, got_first)
    except Exception:  # a hint is optional: never let it break grading
        return ""


def _hint_unsafe(kind, level, ref, x, hx, got_first):
    p = _np_params(ref, "_l0" if level == "seq" else "")
    x64 = np.asarray(x, np.float64)
    h0 = np.asarray(hx[0], np.float64).reshape(x.shape[0], -1)
    seq = level == "seq"
    if kind == "lstm":
        c0 = np.asarray(hx[1], np.float64).reshape(x.shape[0], -1)
        return hint_lstm(x64, h0, c0, p, got_first.array, seq=seq)
    return hint_gru(x64, h0, p, got_first.array, seq=seq)


def forward_check(sub, rng, kind, level, shape, dtype=np.float64, with_hx=True, backward=False, label="",
                  compose=True, hint=True):
    """Load torch.nn's weights into the student's module, run both, compare outputs (and grads).

    A sequence module is also accepted when it equals the course's loop over the student's OWN cell
    (``composed_run``: their cell class with the same weights, called step by step in their process,
    gradients by autograd there): a mistake in the cell then costs points on the cell only. When their
    cell raises (no composition to judge by) or the composition differs, and a one-edit correction of
    their cell makes it equal torch.nn's, the module is judged against torch.nn with that correction
    bound (``corrected_modules``). ``compose=False``: torch.nn alone judges (the whole chain's own
    graded name, ``<notebook>:together``)."""
    state = rng.bit_generator.state
    try:
        _forward_check(sub, rng, kind, level, shape, dtype, with_hx, backward, label, compose, hint)
    except (Fail, StudentError) as first:
        if level != "seq" or not compose:
            raise
        rng.bit_generator.state = state  # the same weights, inputs and gradients again

        def again(note):
            _forward_check(sub, rng, kind, level, shape, dtype, with_hx, backward, label + note, False, hint)

        _judge_corrected(sub, first, kind, shape, dtype, again)


def _judge_corrected(sub, first, kind, shape, dtype, again):
    cname = CLASS[(kind, "cell")]
    N, T, D, H = shape
    probe = seq_dims(np.random.default_rng(N * 1000 + D * 10 + H))
    while probe[0] == N and probe[2:] == (D, H):
        probe = (N + 1, *probe[1:])

    def cell_ok():  # their cell against torch.nn's, outputs and gradients, on the test's sizes and a probe
        for i, shp in enumerate(((N, T, D, H), probe)):
            forward_check(sub, np.random.default_rng(i), kind, "cell", shp, dtype, backward=True, hint=False)

    judge_corrected(sub, first, (kind, "cell"), [f"{cname}.forward"], cname, cell_ok, again)


def _forward_check(sub, rng, kind, level, shape, dtype, with_hx, backward, label, compose, hint):
    name = CLASS[(kind, level)]
    N, T, D, H = shape
    tdt = TDTYPE[dtype]
    ref = ref_module(kind, level, D, H, tdt, seed=int(rng.integers(1 << 30)))
    m = new(sub, kind, level, D, H)
    load(sub, m, ref, name, tdt)
    x, hx = make_inputs(rng, kind, level, shape, dtype)
    args = (tensor(x, backward), hx_arg(kind, hx, backward)) if with_hx else (tensor(x, backward),)
    got, sent = invoke_with_args(sub, m, *args)
    outs = _outputs(kind, level, got, name)
    vals, _ = ref_run(ref, kind, level, x, hx if with_hx else None)
    where = f"{name} (N={N}, " + (f"T={T}, " if level == "seq" else "") + f"D={D}, H={H}, " \
        f"{np.dtype(dtype).name}{label})"
    for oname, o, v in zip(out_names(kind, level), outs, vals):
        if o.shape != v.shape:
            raise Fail(f"{where}: {oname} has shape {tuple(o.shape)}, expected {tuple(v.shape)}"
                       + (" (num_layers * num_directions, N, H)" if oname in ("h_n", "c_n") else ""))
        if o.dtype != str(tdt):
            raise Fail(f"{where}: {oname} has dtype {o.dtype}, expected {tdt} (the parameters' dtype)")
    douts = grads = None
    got_grads = None
    if backward:
        douts = [rng.standard_normal(v.shape).astype(dtype) for v in vals]
        _, grads = ref_run(ref, kind, level, x, hx if with_hx else None, douts)
        for oname, o in zip(out_names(kind, level), outs):
            if not o.requires_grad:
                raise Fail(f"{where}: {oname} does not require grad although the input does: it is cut from "
                           "the autograd graph (detach, .data, torch.no_grad or a copy through numpy?)")
        sub.backward(outs, douts)
        labels = ["x"] + (["h0", "c0"] if kind == "lstm" else ["h0"])
        inputs = [sent[0]] + (list(sent[1]) if kind == "lstm" else [sent[1]])
        got_grads = [(lab, sub.getattr(t, "grad")) for lab, t in zip(labels, inputs)], sub.param_grads(m)

    def compare(vals, grads, note, hint_ok):
        for oname, o, v in zip(out_names(kind, level), outs, vals):
            try:
                check_array(o, v, f"{where} {oname}{note}")
            except Fail as e:
                hint = _hint(kind, level, ref, x, hx, outs[0]) if hint_ok and with_hx and dtype == np.float64 else ""
                raise Fail(str(e) + hint) from None
        if got_grads is None:
            return
        in_grads, pg = got_grads
        for (lab, got_g), g in zip(in_grads, grads[:-1]):
            if got_g is None and not (note and g is None):  # over their own cell: what it ignores gets none
                raise Fail(f"{where}: no gradient reached {lab}; is the computation connected to it?")
            if got_g is None:
                continue
            g = np.zeros(got_g.shape, dtype) if g is None else g
            check_array(got_g, g.reshape(got_g.shape) if got_g.shape != g.shape and got_g.array.size == g.size
                        else g, f"{where}: gradient on {lab}{note}")
        for k, g in grads[-1].items():
            if pg.get(k) is None:
                raise Fail(f"{where}: parameter {k} received no gradient")
            check_array(pg[k], g, f"{where}: gradient on parameter {k}{note}")
        for k in pg:  # over the student's own cell, a parameter it ignores has no gradient there either
            if note and pg.get(k) is not None and k not in grads[-1]:
                raise Fail(f"{where}: parameter {k} has a gradient; your {CLASS[(kind, 'cell')]} gives it none")

    try:
        compare(vals, grads, "", hint)
    except Fail:
        if level != "seq" or not with_hx or not compose:
            raise
        comp = composed_run(sub, kind, ref, x, hx, tdt, douts)
        if comp is None or same_answers(comp, (vals, grads)):
            raise
        compare(*comp, f" (expected: your {CLASS[(kind, 'cell')]} applied step by step)", False)


def same_answers(a, b) -> bool:
    """Whether two (values, grads) answers agree: their arrays, flattened in order (dicts by key, None
    skipped), are as many and equal (a composition that equals the reference adds nothing to judge)."""
    def flat(v):
        out = []
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, dict):
                out += [item[k] for k in sorted(item)]
            elif isinstance(item, (list, tuple)):
                out += flat(item)
            elif item is not None:
                out.append(item)
        return out
    try:
        fa, fb = flat(a), flat(b)
        return len(fa) == len(fb) and all(
            np.allclose(np.asarray(p, np.float64).ravel(), np.asarray(q, np.float64).ravel(), rtol=1e-6, atol=1e-9)
            for p, q in zip(fa, fb))
    except Exception:  # noqa: BLE001 - shapes that differ: not the same
        return False


def composed_run(sub, kind, ref, x, hx, tdt, douts=None):
    """The course's loop over the student's own cell class, loaded with the sequence's layer-0 weights
    and called step by step in their process: (outputs, grads) as ``ref_run`` gives them, or None when
    their cell cannot be built or run (then only the reference judges).

    A parameter or input their cell ignores has no gradient over it (None here), as over their own
    cell. No marks without work: the composition counts only when its outputs differ between the rows
    and steps of the (random) inputs, or the cell's do on 3 random rows of x and the states (a cell
    returning zeros or constants composes to nothing: a module returning the same earns nothing) and,
    with gradients, when one reaches x, h0 or c0."""
    from autograder.core.engine import Missing, StudentError
    from autograder.sandbox.wire import ProtocolError

    from .remote import remote_tensors

    cname = CLASS[(kind, "cell")]
    N, T, D = x.shape
    rg = douts is not None
    try:
        cell = sub.new(cname, D, ref.hidden_size)
        sub.method(cell, "double" if tdt == torch.float64 else "float")
        sub.method(cell, "load_state_dict", {k[:-3]: tensor(v.detach().cpu().numpy())
                                             for k, v in ref.state_dict().items() if k.endswith("_l0")})
        ins = remote_tensors(sub, *[tensor(np.ascontiguousarray(x[:, t]), rg) for t in range(T)],
                             *[tensor(np.ascontiguousarray(h[0]), rg) for h in hx])
        xs, states = ins[:T], ins[T:]
        hs, state = [], list(states)
        for t in range(T):
            out = sub.invoke(cell, xs[t], tuple(state) if kind == "lstm" else state[0])
            state = list(out) if kind == "lstm" else [out]
            if not all(isinstance(s, RemoteTensor) and tuple(s.shape) == (N, ref.hidden_size) for s in state):
                return None
            hs.append(state[0])
        vals = [np.stack([h.array for h in hs], axis=1), *[s.array[None] for s in state]]
        if N * T > 1 and not _varies(vals[0]) and not _cell_varies(sub, cell, kind, D, ref.hidden_size, tdt):
            return None  # the same output for every row and step, and on random states too: a constant cell
        if douts is None:
            return vals, None
        # every h_t gets output's gradient at t; the last states also get h_n's (and c_n's)
        tens = hs + ([state[1]] if kind == "lstm" else [])
        gs = [douts[0][:, t] + (douts[1][0] if t == T - 1 else 0) for t in range(T)]
        if kind == "lstm":
            gs.append(douts[2][0])
        sub.backward(tens, gs)
        dx = [sub.getattr(t, "grad") for t in xs]
        dh = [sub.getattr(s, "grad") for s in states]
        pg = sub.param_grads(cell)
        if all(g is None for g in dx + dh):
            return None  # no gradient reaches x, h0 or c0: a cell that depends on none of them
        dxs = None if all(g is None for g in dx) else np.stack(
            [np.zeros((N, D), x.dtype) if g is None else g.array for g in dx], axis=1)
        grads = [dxs] + [None if g is None else g.array[None] for g in dh] + [
            {f"{k}_l0": pg[k].array for k in pg if pg[k] is not None}]
        return vals, grads
    except (Missing, StudentError, ProtocolError, Fail):
        return None


def _varies(a) -> bool:
    """Whether the rows (and steps) of an output differ anywhere."""
    return bool(np.ptp(np.asarray(a).reshape(-1, np.shape(a)[-1]), axis=0).any())


def _cell_varies(sub, cell, kind, D, H, tdt) -> bool:
    """Whether the student's cell gives different rows for 3 random rows of x and of the states (a cell
    that ignores a zero state's rows is not constant: sigmoid(f) * c with c = 0, say)."""
    rng = np.random.default_rng(0)
    dt = np.float64 if tdt == torch.float64 else np.float32
    hx = [tensor(rng.standard_normal((3, H)).astype(dt)) for _ in range(2 if kind == "lstm" else 1)]
    out = sub.invoke(cell, tensor(rng.standard_normal((3, D)).astype(dt)), tuple(hx) if kind == "lstm" else hx[0])
    out = out[0] if isinstance(out, (tuple, list)) and out else out
    return isinstance(out, RemoteTensor) and out.array.ndim == 2 and _varies(out.array)


def init_check(sub, rng, kind, level):
    name = CLASS[(kind, level)]
    N, D, H = 1, int(rng.integers(5, 9)), int(rng.integers(10, 14))
    ref = ref_module(kind, level, D, H)
    m = new(sub, kind, level, D, H)
    sd = check_state_dict(sub, m, ref, name)
    bound = 1 / math.sqrt(H)
    for k, v in sd.items():
        a = v.array.astype(np.float64)
        if a.dtype.kind != "f" or np.abs(a).max() > bound * (1 + 1e-6):
            raise Fail(f"{name}: {k} has entries outside [-1/sqrt(H), 1/sqrt(H)] (torch.nn's initialisation)")
        if a.size > 8 and a.std() < bound / 4:
            raise Fail(f"{name}: {k} is not initialised uniformly in [-1/sqrt(H), 1/sqrt(H)] "
                       f"(its standard deviation is {a.std():.3g}, expected about {bound / math.sqrt(3):.3g})")
    del N


def device_check(sub, rng, kind, level):
    """The module follows its parameters: on cuda when the grader has one, and in float64 with hx=None.
    A sequence module over a wrong cell: as ``forward_check``."""
    state = rng.bit_generator.state
    try:
        _device_check(sub, rng, kind, level, "", True)
    except (Fail, StudentError) as first:
        if level != "seq":
            raise
        rng.bit_generator.state = state
        _judge_corrected(sub, first, kind, (2, 4, 3, 5), np.float64,
                         lambda note: _device_check(sub, rng, kind, level, note, False))


def _device_check(sub, rng, kind, level, note, compose):
    name = CLASS[(kind, level)]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    N, D, H = 2, 3, 5
    T = 4
    ref = ref_module(kind, level, D, H)
    m = new(sub, kind, level, D, H)
    load(sub, m, ref, name, torch.float64)
    sub.method(m, "to", dev)
    x = rng.standard_normal((N, D) if level == "cell" else (N, T, D))
    got = sub.invoke(m, tensor(x, device=dev))
    outs = _outputs(kind, level, got, name)
    vals, _ = ref_run(ref, kind, level, x, None)
    for oname, o, v in zip(out_names(kind, level), outs, vals):
        if not o.device.startswith(dev) or o.dtype != "torch.float64":
            raise Fail(f"{name} with hx=None, parameters in float64 on {dev}: {oname} is {o.dtype} on {o.device}; "
                       "create the zero state with the input's dtype and device (x.new_zeros)")
    comp = None
    for i, (oname, o, v) in enumerate(zip(out_names(kind, level), outs, vals)):
        try:
            check_array(o, v, f"{name} {oname} with hx=None (zero initial state{note})")
        except Fail:
            # a sequence module over a wrong cell: judged against the loop over the student's own cell
            if level != "seq" or dev != "cpu" or not compose:
                raise
            if comp is None:
                zeros = [np.zeros((1, N, H)) for _ in range(2 if kind == "lstm" else 1)]
                comp = composed_run(sub, kind, ref, x, zeros, torch.float64) or ([None] * len(vals), None)
            if comp[0][i] is None or same_answers([comp[0][i]], [v]):
                raise
            check_array(o, comp[0][i], f"{name} {oname} with hx=None (zero initial state; expected: your "
                        f"{CLASS[(kind, 'cell')]} applied step by step)")


def random_shape(rng, N=None, T=None):
    """(N, T, D, H) with D != H, so that a transposed weight cannot pass by accident."""
    return seq_dims(rng, N, T)
