"""Hidden tests for solutions/ch02_rnn/rnn_torch.ipynb (book: ch02_rnn).

The student's RNNCell and RNN are loaded with the state_dict of a torch.nn.RNNCell / torch.nn.RNN
(batch_first=True) and compared with it in outputs and gradients (float32 and float64). Only
num_layers=1, bidirectional=False is graded here (chapter 6 grades the rest).
"""
import numpy as np
import torch

from autograder.testkit.shapes import shapes
from autograder.core.api import Fail, RemoteTensor, check_array, check_type, graded, tensor, unpack
from autograder.testkit.manifest import forbidden
from autograder.testkit.modules import composed_run, same_answers
from autograder.testkit.remote import mro_modules, remote_tensors

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

CELL_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# Subclassing torch.nn.RNN also counts as using it: the module's class MRO is read attribute by
# attribute (testkit.remote.mro_modules); submodules' own types come from module_types.


def _dims(rng):
    """Random (N, D, H) with D != H (the course's shared helper)."""
    return shapes(rng, n_max=4)


def _make(sub, cls, *args):
    """A student's module, refused when a torch.nn recurrent module hides inside it."""
    m = sub.new(cls, *args)
    types = sub.module_types(m)
    if not isinstance(types, (list, tuple)):
        raise Fail(f"{cls}(...) should be an nn.Module")
    bad = [t for t in types if str(t).startswith("torch.nn.modules.rnn")]
    bad = bad or [c for c in mro_modules(sub, m) if c.startswith("torch.nn.modules.rnn")]
    if bad:
        raise Fail(f"{cls} must be written from scratch; it contains or extends {bad[0]}")
    return m


def _ref(cls, D, H, dtype=torch.float32):
    torch.manual_seed(0)
    m = torch.nn.RNNCell(D, H) if cls == "RNNCell" else torch.nn.RNN(D, H, batch_first=True)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-1.5 / np.sqrt(H), 1.5 / np.sqrt(H))
    return m.to(dtype)


def _load(sub, m, ref):
    sd = ref.state_dict()
    sub.method(m, "load_state_dict", {k: tensor(v.detach().numpy()) for k, v in sd.items()})


def _check_state_dict(sub, m, ref, cls):
    sd = sub.method(m, "state_dict")
    if not isinstance(sd, dict):
        raise Fail(f"{cls}.state_dict() should be a dict of tensors")
    want = {name: tuple(t.shape) for name, t in ref.state_dict().items()}  # the torch.nn module's layout
    if sorted(sd) != sorted(want):
        raise Fail(f"{cls}.state_dict() keys {sorted(sd)}, expected {sorted(want)} (the names of torch.nn.{cls}"
                   + (", batch_first=True" if cls == "RNN" else "") + ")")
    for k, shape in want.items():
        got = sd[k]
        if not isinstance(got, RemoteTensor) or tuple(got.shape) != shape:
            raise Fail(f"{cls}.state_dict()[{k!r}] has shape {getattr(got, 'shape', None)}, expected {shape}")
    grads = sub.param_grads(m)
    if sorted(grads) != sorted(want):
        raise Fail(f"{cls}.named_parameters() gives {sorted(grads)}; register each tensor as an nn.Parameter")


def _run(sub, m, ref, x, h, dtype):
    """Forward and backward in both modules; returns (student outputs, grads) and the reference's."""
    args = [tensor(x, requires_grad=True)] + ([tensor(h, requires_grad=True)] if h is not None else [])
    remote_args = remote_tensors(sub, *args)
    out = sub.invoke(m, *remote_args)
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(h, requires_grad=True) if h is not None else None
    rout = ref(xt, ht) if ht is not None else ref(xt)
    return remote_args, out, (xt, ht), rout


def _grad_of(sub, t, what):
    g = sub.getattr(t, "grad")
    if g is None:
        raise Fail(f"no gradient reached {what}: is every operation differentiable (no .detach(), no numpy)?")
    return g


def _dtype_name(dtype):
    return "torch.float64" if dtype == np.float64 else "torch.float32"


# ------------------------------------------------------------------------------ RNNCell
def _cell_case(sub, rng, N, D, H, dtype, with_h=True, backward=True):
    m = _make(sub, "RNNCell", D, H)
    ref = _ref("RNNCell", D, H, torch.float64 if dtype == np.float64 else torch.float32)
    if dtype == np.float64:
        m = sub.method(m, "double")
    _load(sub, m, ref)
    x = rng.standard_normal((N, D)).astype(dtype)
    h = rng.standard_normal((N, H)).astype(dtype) if with_h else None
    (remote_args, out, (xt, ht), rout) = _run(sub, m, ref, x, h, dtype)
    check_type(out, RemoteTensor, "RNNCell(x, hx)")
    what = f"RNNCell(D={D}, H={H}) output for N={N}" + ("" if with_h else " and hx=None (zeros)")
    check_array(out, rout.detach().numpy(), what)
    if out.dtype != _dtype_name(dtype):
        raise Fail(f"{what}: dtype {out.dtype}, expected {_dtype_name(dtype)}")
    if not backward:
        return
    dout = rng.standard_normal(out.shape).astype(dtype)
    sub.backward([out], [dout])
    rout.backward(torch.tensor(dout))
    check_array(_grad_of(sub, remote_args[0], "x"), xt.grad.numpy(), "RNNCell: gradient on x")
    if with_h:
        check_array(_grad_of(sub, remote_args[1], "hx"), ht.grad.numpy(), "RNNCell: gradient on hx")
    grads = sub.param_grads(m)
    for k in CELL_KEYS:
        if grads.get(k) is None:
            raise Fail(f"RNNCell: no gradient on the parameter {k}")
        check_array(grads[k], getattr(ref, k).grad.numpy(), f"RNNCell: gradient on {k}")


@graded("RNNCell", points=1)
def test_RNNCell_state_dict(sub, rng):
    _, D, H = _dims(rng)
    m = _make(sub, "RNNCell", D, H)
    _check_state_dict(sub, m, torch.nn.RNNCell(D, H), "RNNCell")


def _check_init(sub, cls, names):
    D, H = 40, 50
    m = _make(sub, cls, D, H)
    sd = sub.method(m, "state_dict")
    k = 1 / np.sqrt(H)
    for name in names:
        v = sd.get(name) if isinstance(sd, dict) else None
        if not isinstance(v, RemoteTensor):
            raise Fail(f"{cls}.state_dict() has no tensor {name!r}")
        a = v.array.astype(np.float64)
        if np.abs(a).max() > k + 1e-6 or a.std() < 0.4 * k / np.sqrt(3):
            raise Fail(f"{cls} {name}: initialise uniformly in [-1/sqrt(H), 1/sqrt(H)] like torch.nn.{cls} "
                       f"(got values in [{a.min():.3g}, {a.max():.3g}], std {a.std():.3g}, for H={H})")


@graded("RNNCell", points=1)
def test_RNNCell_init(sub, rng):
    _check_init(sub, "RNNCell", CELL_KEYS)


@graded("RNNCell", points=2)
def test_RNNCell_forward_parity(sub, rng):
    for N in (None, 1):
        n, D, H = _dims(rng)
        _cell_case(sub, rng, N or n, D, H, np.float32, with_h=True, backward=False)
    n, D, H = _dims(rng)
    _cell_case(sub, rng, n, D, H, np.float32, with_h=False, backward=False)


@graded("RNNCell", points=2)
def test_RNNCell_backward_parity(sub, rng):
    for N in (None, 1):
        n, D, H = _dims(rng)
        _cell_case(sub, rng, N or n, D, H, np.float32)


@graded("RNNCell", points=1)
def test_RNNCell_float64(sub, rng):
    n, D, H = _dims(rng)
    _cell_case(sub, rng, n, D, H, np.float64)
    _cell_case(sub, rng, n, D, H, np.float64, with_h=False, backward=False)


# ---------------------------------------------------------------------------------- RNN
def _rnn_case(sub, rng, N, T, D, H, dtype, with_h=True, backward=True, compose=True):
    """The student's RNN against torch.nn.RNN with the same weights, or (when their RNNCell is wrong)
    against the loop over their own RNNCell (testkit.modules.composed_run): a cell mistake costs
    points on RNNCell only. ``compose=False``: torch.nn.RNN alone judges (rnn_torch:together)."""
    m = _make(sub, "RNN", D, H)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    ref = _ref("RNN", D, H, tdt)
    if dtype == np.float64:
        m = sub.method(m, "double")
    _load(sub, m, ref)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h = rng.standard_normal((1, N, H)).astype(dtype) if with_h else None
    (remote_args, got, (xt, ht), (rout, rhn)) = _run(sub, m, ref, x, h, dtype)
    out, h_n = unpack(got, 2, "RNN.forward")
    check_type(out, RemoteTensor, "RNN output")
    check_type(h_n, RemoteTensor, "RNN h_n")
    what = f"RNN(D={D}, H={H}) for x of shape {(N, T, D)}" + ("" if with_h else " and hx=None (zeros)")
    if out.dtype != _dtype_name(dtype):
        raise Fail(f"{what}: dtype {out.dtype}, expected {_dtype_name(dtype)}")
    ref_vals = [rout.detach().numpy(), rhn.detach().numpy()]
    douts = ref_grads = got_grads = None
    if backward:
        if out.shape != ref_vals[0].shape or h_n.shape != ref_vals[1].shape:
            check_array(out, ref_vals[0], f"{what}: output (N, T, H)")
            check_array(h_n, ref_vals[1], f"{what}: h_n (num_layers * num_directions, N, H)")
        douts = [rng.standard_normal(out.shape).astype(dtype), rng.standard_normal(h_n.shape).astype(dtype)]
        sub.backward([out, h_n], douts)
        torch.autograd.backward([rout, rhn], [torch.tensor(d) for d in douts])
        ref_grads = [xt.grad.numpy(), ht.grad.numpy() if with_h else None,
                     {k: p.grad.numpy() for k, p in ref.named_parameters()}]
        got_grads = [_grad_of(sub, remote_args[0], "x"), _grad_of(sub, remote_args[1], "hx") if with_h else None,
                     sub.param_grads(m)]

    def compare(vals, grads, note):
        check_array(out, vals[0], f"{what}: output (N, T, H){note}")
        check_array(h_n, vals[1], f"{what}: h_n (num_layers * num_directions, N, H){note}")
        if grads is None:
            return
        check_array(got_grads[0], grads[0], f"{what}: gradient on x{note}")
        if with_h:
            check_array(got_grads[1], grads[1], f"{what}: gradient on hx{note}")
        for k in (n for n, _ in ref.named_parameters()):
            if got_grads[2].get(k) is None:
                if note and grads[2].get(k) is None:  # their own cell leaves it without a gradient too
                    continue
                raise Fail(f"RNN: no gradient on the parameter {k}")
            check_array(got_grads[2][k], grads[2][k], f"{what}: gradient on {k}{note}")

    try:
        compare(ref_vals, ref_grads, "")
    except Fail:
        if not compose:
            raise
        comp = composed_run(sub, "rnn", ref, x, [h if with_h else np.zeros((1, N, H), dtype)], tdt, douts)
        if comp is None or same_answers(comp[0], ref_vals):
            raise
        compare(*comp, " (expected: your RNNCell applied step by step)")


@graded("RNN", points=1)
def test_RNN_state_dict(sub, rng):
    _, D, H = _dims(rng)
    m = _make(sub, "RNN", D, H)
    _check_state_dict(sub, m, torch.nn.RNN(D, H, batch_first=True), "RNN")


@graded("RNN", points=1)
def test_RNN_init(sub, rng):
    _check_init(sub, "RNN", [k + "_l0" for k in CELL_KEYS])


@graded("RNN", points=3)
def test_RNN_forward_parity(sub, rng):
    for N, T in ((None, None), (1, None), (None, 1)):
        n, D, H = _dims(rng)
        _rnn_case(sub, rng, N or n, T or int(rng.integers(3, 7)), D, H, np.float32, backward=False)
    n, D, H = _dims(rng)
    _rnn_case(sub, rng, n, 4, D, H, np.float32, with_h=False, backward=False)


@graded("RNN", points=3)
def test_RNN_backward_parity(sub, rng):
    for N, T in ((None, None), (1, None), (None, 1)):
        n, D, H = _dims(rng)
        _rnn_case(sub, rng, N or n, T or int(rng.integers(3, 7)), D, H, np.float32)


@graded("RNN", points=1)
def test_RNN_float64(sub, rng):
    n, D, H = _dims(rng)
    _rnn_case(sub, rng, n, 5, D, H, np.float64)
    _rnn_case(sub, rng, n, 3, D, H, np.float64, with_h=False, backward=False)


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("rnn_torch:together", points=1)
def test_rnn_torch_together(sub, rng):
    """The whole chain as training runs it: the student's RNN (built on their RNNCell) forward and
    backward against torch.nn.RNN alone, with no composition over their cell. Its own graded name (1
    point, no answer cell): a cell mistake shows here, not as a loss booked on an RNN that is right."""
    n, D, H = _dims(rng)
    _rnn_case(sub, rng, n, 4, D, H, np.float64, compose=False)
