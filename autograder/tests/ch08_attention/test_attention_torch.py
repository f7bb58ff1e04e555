"""Hidden tests for solutions/ch08_attention/attention_torch.ipynb (book: ch08_attention).

BahdanauAttention and AttentionDecoderStep against references written with torch.nn.functional in the
grader's process (``autograder.testkit.reference.attention``), SelfAttention against
torch.nn.MultiheadAttention(E, 1, batch_first=True), each with the weights copied into the student's
module. Gradients enter through every output; they are compared on every input and parameter.
"""
import numpy as np
import torch

from autograder.core.api import Fail, RemoteTensor, check_array, graded, tensor, unpack
from autograder.core.records import StudentError
from autograder.testkit.corrected_modules import judge_corrected
from autograder.testkit.modules import same_answers
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference.attention import (bahdanau_ref, decoder_step_ref, self_attention_ref,
                                                    self_attention_variants, which_variant)

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

TDTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _new(sub, name, *args):
    m = sub.new(name, *args)
    bad = [t for t in sub.module_types(m) if "MultiheadAttention" in t or t.startswith("torch.nn.modules.transformer")]
    if bad:
        raise Fail(f"{name} must be written from scratch; it contains {', '.join(sorted(set(bad)))}")
    return m


def _load(sub, m, name, want: dict, dtype):
    """Check the student's state_dict keys and shapes, cast the module, load ``want`` (numpy arrays)."""
    sd = sub.method(m, "state_dict")
    if not isinstance(sd, dict):
        raise Fail(f"{name}.state_dict() should be a dict of tensors")
    got = {k: tuple(getattr(v, "shape", ())) for k, v in sd.items()}
    shapes = {k: tuple(v.shape) for k, v in want.items()}
    if sorted(got) != sorted(shapes):
        raise Fail(f"{name}.state_dict() keys are {sorted(got)}, expected {sorted(shapes)}")
    for k in shapes:
        if got[k] != shapes[k]:
            raise Fail(f"{name}.state_dict()[{k!r}] has shape {got[k]}, expected {shapes[k]}")
    sub.method(m, "double" if dtype == np.float64 else "float")
    sub.method(m, "load_state_dict", {k: tensor(v.astype(dtype)) for k, v in want.items()})


def _outs(got, n, name, names):
    outs = list(unpack(got, n, f"{name} forward (it returns ({', '.join(names)}))"))
    for o, on in zip(outs, names):
        if not isinstance(o, RemoteTensor):
            raise Fail(f"{name} forward: {on} should be a torch.Tensor, got {type(o).__name__}")
    return outs


def _compare(outs, vals, names, where, dtype):
    for o, v, on in zip(outs, vals, names):
        if tuple(o.shape) != v.shape:
            raise Fail(f"{where}: {on} has shape {tuple(o.shape)}, expected {v.shape}")
        if o.dtype != str(TDTYPE[dtype]):
            raise Fail(f"{where}: {on} has dtype {o.dtype}, expected {TDTYPE[dtype]} (the parameters' dtype)")
        if not np.all(np.isfinite(o.array)):
            raise Fail(f"{where}: {on} has NaN or inf entries (a query that may attend to nothing gets "
                       "weights 0, not a softmax of -inf)")
        check_array(o, v.astype(dtype), f"{where} {on}")


def _backward(sub, m, outs, names, douts, sent, sent_names, ref_in, ref_params, where):
    for o, on in zip(outs, names):
        if not o.requires_grad:
            raise Fail(f"{where}: {on} does not require grad although the inputs do: it is cut from the "
                       "autograd graph (detach, .data, torch.no_grad or a copy through numpy?)")
    sub.backward(outs, douts)
    for t, lab, g in zip(sent, sent_names, ref_in):
        got = sub.getattr(t, "grad")
        if got is None:
            raise Fail(f"{where}: no gradient reached {lab}; is the computation connected to it?")
        check_array(got, g.astype(douts[0].dtype), f"{where}: gradient on {lab}")
    pg = sub.param_grads(m)
    for k, g in ref_params.items():
        if pg.get(k) is None:
            raise Fail(f"{where}: parameter {k} received no gradient")
        check_array(pg[k], g.astype(douts[0].dtype), f"{where}: gradient on parameter {k}")


# -------------------------------------------------------------------- BahdanauAttention
def _bahdanau_weights(rng, Dq, Dk, A):
    return {"W_q.weight": 0.6 * rng.standard_normal((A, Dq)), "W_k.weight": 0.6 * rng.standard_normal((A, Dk)),
            "w_v.weight": rng.standard_normal((1, A))}


def _bahdanau_dims(rng, N=None, T=None):
    N, T = N or int(rng.integers(2, 5)), T or int(rng.integers(2, 7))
    Dq, Dk, Dv, A = (int(x) for x in rng.choice(np.arange(2, 10), 4, replace=False))
    return N, T, Dq, Dk, Dv, A


def _bahdanau_mask(rng, kind, N, T):
    if kind == "none":
        return None
    m = rng.random((N, T)) < 0.6
    m[np.arange(N), rng.integers(0, T, size=N)] = True
    if kind == "empty":
        m[0] = False
    return m


def _bahdanau_check(sub, rng, N=None, T=None, mask_kind="none", dtype=np.float64, backward=False):
    N, T, Dq, Dk, Dv, A = _bahdanau_dims(rng, N, T)
    m = _new(sub, "BahdanauAttention", Dq, Dk, A)
    w = _bahdanau_weights(rng, Dq, Dk, A)
    _load(sub, m, "BahdanauAttention", w, dtype)
    query, keys, values = (rng.standard_normal(s).astype(dtype) for s in ((N, Dq), (N, T, Dk), (N, T, Dv)))
    mask = _bahdanau_mask(rng, mask_kind, N, T)
    args = [tensor(query, backward), tensor(keys, backward), tensor(values, backward)]
    if mask is not None:
        args.append(tensor(mask))
    got, sent, _ = sub.invoke_with_args(m, *args)
    names = ["context", "weights"]
    outs = _outs(got, 2, "BahdanauAttention", names)
    where = (f"BahdanauAttention (N={N}, T={T}, Dq={Dq}, Dk={Dk}, Dv={Dv}, A={A}, "
             f"{'no mask' if mask is None else 'mask (N, T)'}{', a row with no key' if mask_kind == 'empty' else ''}, "
             f"{np.dtype(dtype).name})")
    vals = bahdanau_ref(w, query, keys, values, mask)
    _compare(outs, vals, names, where, dtype)
    if backward:
        douts = [rng.standard_normal(v.shape).astype(dtype) for v in vals]
        _, (rin, rpar) = bahdanau_ref(w, query, keys, values, mask, douts)
        _backward(sub, m, outs, names, douts, sent[:3], ["query", "keys", "values"], rin, rpar, where)


@graded("BahdanauAttention", points=1)
def test_BahdanauAttention_state_dict(sub, rng):
    Dq, Dk, A = 3, 5, 4
    m = _new(sub, "BahdanauAttention", Dq, Dk, A)
    sd = sub.method(m, "state_dict")
    want = {"W_q.weight": (A, Dq), "W_k.weight": (A, Dk), "w_v.weight": (1, A)}
    got = {k: tuple(getattr(v, "shape", ())) for k, v in sd.items()} if isinstance(sd, dict) else sd
    if got != want:
        raise Fail(f"BahdanauAttention(3, 5, 4).state_dict() shapes are {got}, expected {want} "
                   "(nn.Linear(..., bias=False) layers named W_q, W_k, w_v)")


@graded("BahdanauAttention", points=2)
def test_BahdanauAttention_parity(sub, rng):
    for N, T, kind in ((None, None, "none"), (None, None, "mask"), (1, None, "mask"), (None, 1, "none")):
        _bahdanau_check(sub, rng, N, T, kind)


@graded("BahdanauAttention", points=2)
def test_BahdanauAttention_backward(sub, rng):
    for N, kind in ((None, "none"), (None, "mask")):
        _bahdanau_check(sub, rng, N, None, kind, backward=True)


@graded("BahdanauAttention", points=1)
def test_BahdanauAttention_all_masked_row(sub, rng):
    _bahdanau_check(sub, rng, None, None, "empty", backward=True)


@graded("BahdanauAttention", points=1)
def test_BahdanauAttention_float32(sub, rng):
    _bahdanau_check(sub, rng, None, None, "mask", dtype=np.float32, backward=True)


# ----------------------------------------------------------------- AttentionDecoderStep
def _decoder_weights(rng, V, Em, H, E, A):
    s = 0.5
    return {"embed.weight": rng.standard_normal((V, Em)),
            "attention.W_q.weight": s * rng.standard_normal((A, H)),
            "attention.W_k.weight": s * rng.standard_normal((A, E)),
            "attention.w_v.weight": rng.standard_normal((1, A)),
            "cell.weight_ih": s * rng.standard_normal((3 * H, Em + E)),
            "cell.weight_hh": s * rng.standard_normal((3 * H, H)),
            "cell.bias_ih": s * rng.standard_normal(3 * H), "cell.bias_hh": s * rng.standard_normal(3 * H),
            "out.weight": s * rng.standard_normal((V, H + E)), "out.bias": s * rng.standard_normal(V)}


def _decoder_check(sub, rng, N=None, T=None, mask_kind="none", dtype=np.float64, backward=False):
    """The student's AttentionDecoderStep against the reference, or (when their BahdanauAttention is
    wrong) against the course's decoder step over their OWN BahdanauAttention (``_decoder_composed``):
    a mistake in the attention then costs points on BahdanauAttention only. When their attention
    raises (no composition) or is wrong, and a one-edit correction of it (its ``forward`` or
    ``__init__``) makes it pass its own check, the step is judged against the reference with that
    correction bound (``testkit/corrected_modules.py``)."""
    state = rng.bit_generator.state
    try:
        _decoder_run(sub, rng, N, T, mask_kind, dtype, backward, True, "")
    except (Fail, StudentError) as first:
        rng.bit_generator.state = state  # the same weights and inputs again
        _corrected(sub, first, mask_kind, dtype,
                   lambda note: _decoder_run(sub, rng, N, T, mask_kind, dtype, backward, False, note))


def _corrected(sub, first, mask_kind, dtype, again):
    """``again(note)`` with a one-edit correction of their BahdanauAttention bound, when it is wrong on its
    own and such a correction passes its checks (state_dict, values and gradients, the test's mask and an
    all-masked row); else ``first`` raised as it was."""
    def attention_ok():
        test_BahdanauAttention_state_dict(sub, None)
        for i, kind in enumerate((mask_kind, "empty")):
            _bahdanau_check(sub, np.random.default_rng(i), None, None, kind, dtype, backward=True)

    judge_corrected(sub, first, "BahdanauAttention", ["BahdanauAttention.forward", "BahdanauAttention.__init__"],
                    "BahdanauAttention", attention_ok, again)


def _decoder_run(sub, rng, N, T, mask_kind, dtype, backward, compose, note):
    N, T = N or int(rng.integers(2, 5)), T or int(rng.integers(2, 7))
    V, Em, H, E, A = (int(x) for x in rng.choice(np.arange(2, 12), 5, replace=False))
    m = _new(sub, "AttentionDecoderStep", V, Em, H, E, A)
    w = _decoder_weights(rng, V, Em, H, E, A)
    _load(sub, m, "AttentionDecoderStep", w, dtype)
    token = rng.integers(0, V, size=N).astype(np.int64)
    h, memory = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, T, E)).astype(dtype)
    mask = _bahdanau_mask(rng, mask_kind, N, T)
    args = [tensor(token), tensor(h, backward), tensor(memory, backward)] + ([tensor(mask)] if mask is not None else [])
    got, sent, _ = sub.invoke_with_args(m, *args)
    names = ["logits", "h_next", "weights"]
    outs = _outs(got, 3, "AttentionDecoderStep", names)
    where = (f"AttentionDecoderStep (N={N}, T={T}, V={V}, emb={Em}, H={H}, E={E}, A={A}, "
             f"{'no mask' if mask is None else 'mask (N, T)'}, {np.dtype(dtype).name}; attention from the previous "
             f"state h, GRUCell on cat[embed(token), context], out on cat[h_next, context]{note})")
    vals = decoder_step_ref(w, token, h, memory, mask)
    for o, v, on in zip(outs, vals, names):  # shapes first: a backward needs them
        if tuple(o.shape) != v.shape:
            raise Fail(f"{where}: {on} has shape {tuple(o.shape)}, expected {v.shape}")
    douts = [rng.standard_normal(v.shape).astype(dtype) for v in vals] if backward else None
    ref = (vals, decoder_step_ref(w, token, h, memory, mask, douts)[1] if backward else None)
    got_grads = None
    if backward:
        for o, on in zip(outs, names):
            if not o.requires_grad:
                raise Fail(f"{where}: {on} does not require grad although the inputs do: it is cut from the "
                           "autograd graph (detach, .data, torch.no_grad or a copy through numpy?)")
        sub.backward(outs, douts)
        got_grads = [sub.getattr(t, "grad") for t in sent[1:3]], sub.param_grads(m)

    def judge(expected, note):
        vals_, grads_ = expected
        _compare(outs, vals_, names, where + note, dtype)
        if grads_ is None:
            return
        (ref_in, ref_params), (got_in, pg) = grads_, got_grads
        for got_g, lab, g in zip(got_in, ["h", "memory"], ref_in):
            if got_g is None:
                raise Fail(f"{where}: no gradient reached {lab}; is the computation connected to it?")
            check_array(got_g, g.astype(dtype), f"{where}: gradient on {lab}{note}")
        for k, g in ref_params.items():
            if pg.get(k) is None:
                raise Fail(f"{where}: parameter {k} received no gradient")
            check_array(pg[k], g.astype(dtype), f"{where}: gradient on parameter {k}{note}")

    try:
        judge(ref, "")
    except Fail:
        if not compose:
            raise
        comp = _decoder_composed(sub, w, token, h, memory, mask, dtype, douts)
        if comp is None or same_answers(comp, ref):
            raise
        judge(comp, " (expected: the decoder step over your BahdanauAttention)")


def _decoder_composed(sub, w, token, h, memory, mask, dtype, douts=None):
    """(values, grads) of the course's decoder step over the student's OWN BahdanauAttention: their class,
    loaded with the decoder's attention weights, called in their process on (h, memory, memory, mask);
    the rest (embedding, GRU cell, output layer) is trusted code here, fed their context as plain data.
    The gradients: the rest's by torch autograd here; through their attention by autograd in their
    process (the rest's gradient on the context sent back as plain data). None when their attention
    cannot be built or run (then only the reference judges)."""
    from autograder.core.engine import Missing, StudentError
    from autograder.sandbox.wire import ProtocolError
    from autograder.testkit.remote import remote_tensors

    f = torch.nn.functional
    g = douts is not None
    N, H = h.shape
    E, A = memory.shape[2], w["attention.W_q.weight"].shape[0]
    try:
        att = sub.new("BahdanauAttention", H, E, A)
        sub.method(att, "double" if dtype == np.float64 else "float")
        sub.method(att, "load_state_dict", {k[len("attention."):]: tensor(v.astype(dtype)) for k, v in w.items()
                                            if k.startswith("attention.")})
        ht, mt = remote_tensors(sub, tensor(h, g), tensor(memory, g))
        ctx, wts = unpack(sub.invoke(att, ht, mt, mt, *([tensor(mask)] if mask is not None else [])), 2,
                          "BahdanauAttention")
        if not (isinstance(ctx, RemoteTensor) and isinstance(wts, RemoteTensor) and tuple(ctx.shape) == (N, E)
                and tuple(wts.shape) == memory.shape[:2]):
            return None
    except (Missing, StudentError, ProtocolError, Fail):
        return None
    pt = {n: torch.tensor(np.asarray(a, np.float64), requires_grad=g) for n, a in w.items()
          if not n.startswith("attention.")}
    c = torch.tensor(ctx.array.astype(np.float64), requires_grad=g)
    h64 = torch.tensor(h.astype(np.float64), requires_grad=g)
    x = torch.cat([f.embedding(torch.as_tensor(token), pt["embed.weight"]), c], dim=1)
    gi, gh = f.linear(x, pt["cell.weight_ih"], pt["cell.bias_ih"]), f.linear(h64, pt["cell.weight_hh"], pt["cell.bias_hh"])
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    h_next = (1 - z) * n + z * h64
    logits = f.linear(torch.cat([h_next, c], dim=1), pt["out.weight"], pt["out.bias"])
    vals = [logits.detach().numpy(), h_next.detach().numpy(), wts.array.astype(np.float64)]
    if not g:
        return vals, None
    torch.autograd.backward([logits, h_next], [torch.tensor(np.asarray(d, np.float64)) for d in douts[:2]])
    try:
        sub.backward([ctx, wts], [c.grad.numpy().astype(dtype), np.asarray(douts[2], dtype)])
        gh_att, gm_att = sub.getattr(ht, "grad"), sub.getattr(mt, "grad")
        pg = sub.param_grads(att)
    except (StudentError, ProtocolError):
        return None
    # what their attention does not read gets no gradient through it (their decoder's, over it, neither)
    d_h = h64.grad.numpy() + (gh_att.array if gh_att is not None else 0)
    d_m = gm_att.array if gm_att is not None else np.zeros(memory.shape)
    grads = {n: t.grad.numpy() for n, t in pt.items()}
    grads.update({f"attention.{k}": v.array for k, v in pg.items() if v is not None})
    return vals, ([d_h, d_m], grads)


@graded("AttentionDecoderStep", points=1)
def test_AttentionDecoderStep_state_dict(sub, rng):
    V, Em, H, E, A = 7, 3, 5, 4, 6
    want = {k: tuple(v.shape) for k, v in _decoder_weights(rng, V, Em, H, E, A).items()}

    def check(note):
        m = _new(sub, "AttentionDecoderStep", V, Em, H, E, A)
        sd = sub.method(m, "state_dict")
        got = {k: tuple(getattr(v, "shape", ())) for k, v in sd.items()} if isinstance(sd, dict) else sd
        if got != want:
            raise Fail(f"AttentionDecoderStep(7, 3, 5, 4, 6).state_dict() shapes are {got}, expected {want}{note}")

    try:
        check("")
    except (Fail, StudentError) as first:  # over a wrong BahdanauAttention: with a corrected copy of it
        _corrected(sub, first, "mask", np.float64, lambda note: check(f" ({note[2:]})"))


@graded("AttentionDecoderStep", points=3)
def test_AttentionDecoderStep_parity(sub, rng):
    for N, T, kind in ((None, None, "none"), (None, None, "mask"), (1, 1, "none")):
        _decoder_check(sub, rng, N, T, kind)


@graded("AttentionDecoderStep", points=2)
def test_AttentionDecoderStep_backward(sub, rng):
    for N, kind in ((None, "none"), (None, "mask")):
        _decoder_check(sub, rng, N, None, kind, backward=True)


@graded("AttentionDecoderStep", points=1)
def test_AttentionDecoderStep_float32(sub, rng):
    _decoder_check(sub, rng, None, None, "mask", dtype=np.float32, backward=True)


# ----------------------------------------------------------------------- SelfAttention
def _mha(rng, E, dtype):
    torch.manual_seed(int(rng.integers(1 << 30)))
    ref = torch.nn.MultiheadAttention(E, 1, batch_first=True, dtype=TDTYPE[dtype])
    with torch.no_grad():  # non-zero biases, so that a forgotten bias shows
        ref.in_proj_bias.normal_(0, 0.5)
        ref.out_proj.bias.normal_(0, 0.5)
    return ref


def _self_attention_check(sub, rng, N=None, T=None, mask_kind="none", dtype=np.float64, backward=False):
    N, T = N or int(rng.integers(2, 5)), T or int(rng.integers(2, 7))
    E = int(rng.integers(2, 9))
    while E == T:
        E = int(rng.integers(2, 9))
    ref = _mha(rng, E, dtype)
    w = {k: v.detach().numpy().astype(np.float64) for k, v in ref.state_dict().items()}
    m = _new(sub, "SelfAttention", E)
    _load(sub, m, "SelfAttention", w, dtype)
    x = rng.standard_normal((N, T, E)).astype(dtype)
    mask = None
    if mask_kind == "causal":
        mask = np.tril(np.ones((T, T), dtype=bool))
    elif mask_kind == "full":
        mask = rng.random((N, T, T)) < 0.6
        mask[:, np.arange(T), np.arange(T)] = True  # every position sees itself
    args = [tensor(x, backward)] + ([tensor(mask)] if mask is not None else [])
    got, sent, _ = sub.invoke_with_args(m, *args)
    names = ["out", "weights"]
    outs = _outs(got, 2, "SelfAttention", names)
    where = (f"SelfAttention (N={N}, T={T}, E={E}, {'no' if mask is None else mask_kind} mask, "
             f"{np.dtype(dtype).name}; compared with torch.nn.MultiheadAttention(E, 1, batch_first=True))")
    xt = torch.tensor(x, requires_grad=True)
    am = None if mask is None else torch.tensor(~mask if mask.ndim == 2 else ~mask)
    ref.zero_grad()
    r_out, r_w = ref(xt, xt, xt, attn_mask=am, need_weights=True, average_attn_weights=True)
    try:
        _compare(outs, [r_out.detach().numpy(), r_w.detach().numpy()], names, where, dtype)
    except Fail as e:
        hint = ""
        if dtype == np.float64 and not backward:
            try:
                hint = which_variant(outs[0], self_attention_variants(w, x, mask))
            except Exception:  # a hint is optional: never let it break grading
                hint = ""
        raise Fail(str(e) + hint) from None
    if backward:
        douts = [rng.standard_normal(tuple(o.shape)).astype(dtype) for o in (r_out, r_w)]
        torch.autograd.backward([r_out, r_w], [torch.tensor(d) for d in douts])
        rpar = {k: p.grad.numpy() for k, p in ref.named_parameters()}
        _backward(sub, m, outs, names, douts, sent[:1], ["x"], [xt.grad.numpy()], rpar, where)


@graded("SelfAttention", points=1)
def test_SelfAttention_state_dict(sub, rng):
    E = 6
    m = _new(sub, "SelfAttention", E)
    want = {k: tuple(v.shape) for k, v in torch.nn.MultiheadAttention(E, 1, batch_first=True).state_dict().items()}
    sd = sub.method(m, "state_dict")
    got = {k: tuple(getattr(v, "shape", ())) for k, v in sd.items()} if isinstance(sd, dict) else sd
    if got != want:
        raise Fail(f"SelfAttention(6).state_dict() shapes are {got}, expected {want} "
                   "(torch.nn.MultiheadAttention(6, 1)'s)")


@graded("SelfAttention", points=3)
def test_SelfAttention_parity(sub, rng):
    for N, T, kind in ((None, None, "none"), (None, None, "causal"), (None, None, "full"), (1, 1, "none")):
        _self_attention_check(sub, rng, N, T, kind)


@graded("SelfAttention", points=2)
def test_SelfAttention_backward(sub, rng):
    for N, kind in ((None, "none"), (None, "causal")):
        _self_attention_check(sub, rng, N, None, kind, backward=True)


@graded("SelfAttention", points=1)
def test_SelfAttention_float32(sub, rng):
    _self_attention_check(sub, rng, None, None, "causal", dtype=np.float32, backward=True)


@graded("SelfAttention", points=1)
def test_SelfAttention_all_masked_rows(sub, rng):
    N, T, E = 3, 5, 4
    ref = _mha(rng, E, np.float64)
    w = {k: v.detach().numpy().astype(np.float64) for k, v in ref.state_dict().items()}
    m = _new(sub, "SelfAttention", E)
    _load(sub, m, "SelfAttention", w, np.float64)
    x = rng.standard_normal((N, T, E))
    mask = rng.random((N, T, T)) < 0.6
    mask[:, np.arange(T), np.arange(T)] = True
    mask[0, 2] = False  # position 2 of sequence 0 may attend to nothing
    mask[2, 4] = False
    got = sub.invoke(m, tensor(x), tensor(mask))
    names = ["out", "weights"]
    outs = _outs(got, 2, "SelfAttention", names)
    _compare(outs, self_attention_ref(w, x, mask), names,
             f"SelfAttention (N={N}, T={T}, E={E}, mask (N, T, T) with rows that are all False: their weights "
             "are 0 and their attention output 0, so their out is out_proj's bias)", np.float64)
