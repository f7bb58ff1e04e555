"""Hidden tests for solutions/ch10_ctc/ctc_torch.ipynb (book: ch10_ctc).

The student's CTCLoss runs in their process on log-probabilities sent as tensors; the same inputs go
through torch.nn.CTCLoss here, in float64. Gradients are compared on the logits: the gradient that
reaches log_probs is pushed through log_softmax's backward on the trusted side (torch's kernel returns
y - occupancy on log_probs, the exact derivative is -occupancy; both give the same gradient on the
logits, which is what training sees).
"""
import re

import numpy as np
import torch

from autograder.core.api import Fail, RemoteTensor, check_array, graded, tensor
from autograder.testkit.manifest import forbidden
from autograder.testkit.reference.ctc import log_softmax

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml


def _need(label):
    """The fewest steps that can read ``label``: one per label, one blank between equal neighbours."""
    return max(len(label) + int(np.sum(label[1:] == label[:-1])), 1)


def _batch(rng, N=None, T=None, C=None, S=None, repeats=False, blank=0, impossible=False):
    N = int(rng.integers(2, 5)) if N is None else N
    C = int(rng.integers(3, 7)) if C is None else C
    S = int(rng.integers(2, 5)) if S is None else S
    T = int(rng.integers(2 * S + 2, 2 * S + 6)) if T is None else T
    labels = np.array([c for c in range(C) if c != blank])
    targets = rng.choice(labels, size=(N, S))
    if repeats:
        targets[:, 1] = targets[:, 0]
    tl = rng.integers(0, S + 1, size=N)
    tl[0] = S
    if N > 1:
        tl[-1] = 0
    need = np.array([_need(targets[n, : int(tl[n])]) for n in range(N)])
    il = np.array([int(rng.integers(need[n], T + 1)) for n in range(N)])
    il[0] = T
    if impossible:  # the first sequence: two equal labels in one step too few
        targets[0, :2] = labels[0]
        tl[0] = 2
        il[0] = 2
    lp = log_softmax(2.0 * rng.standard_normal((T, N, C)))  # (T, N, C)
    return lp, targets, il, tl


def _ref(lp, targets, il, tl, blank=0, reduction="none", zero_infinity=False, dout=None):
    """torch.nn.CTCLoss in float64: the loss and the gradient on the logits under log_probs."""
    z = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)(
        z.log_softmax(-1), torch.tensor(targets), torch.tensor(il), torch.tensor(tl))
    if dout is None:
        return loss.detach().numpy(), None
    (g,) = torch.autograd.grad(loss, z, torch.tensor(dout, dtype=torch.float64))
    return loss.detach().numpy(), g.numpy()


def _to_logits(g_lp, lp):
    """log_softmax's backward: the gradient on the logits from the gradient on log_probs."""
    g = np.asarray(g_lp, np.float64)
    return g - np.exp(lp) * g.sum(-1, keepdims=True)


def _where(lp, targets, il, tl, **kw):
    T, N, C = lp.shape
    opts = "".join(f", {k}={v!r}" for k, v in kw.items())
    return (f"CTCLoss(T={T}, N={N}, C={C}, targets {tuple(np.shape(targets))}, input_lengths={list(map(int, il))}, "
            f"target_lengths={list(map(int, tl))}{opts})")


def _run(sub, rng, lp, targets, il, tl, dtype=np.float64, backward=False, blank=0, reduction="mean",
         zero_infinity=False, label=""):
    m = sub.new("CTCLoss", blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    x = lp.astype(dtype)
    out, sent, _ = sub.invoke_with_args(m, tensor(x, requires_grad=backward), tensor(targets), tensor(il), tensor(tl))
    where = _where(lp, targets, il, tl, blank=blank, reduction=reduction, zero_infinity=zero_infinity) + label
    if not isinstance(out, RemoteTensor):
        raise Fail(f"{where}: expected a torch.Tensor, got {type(out).__name__}")
    want, _ = _ref(x.astype(np.float64), targets, il, tl, blank, reduction, zero_infinity)
    want = want.astype(dtype)
    torch_dtype = f"torch.{np.dtype(dtype).name}"
    if out.dtype != torch_dtype:
        raise Fail(f"{where}: loss dtype {out.dtype}, expected {torch_dtype} (the dtype of log_probs)")
    got = out.array
    if got.shape != want.shape:
        raise Fail(f"{where}: loss shape {tuple(got.shape)}, expected {want.shape}"
                   + (" ((N,) for reduction='none', a scalar otherwise)"))
    inf = ~np.isfinite(want)
    if inf.any() and not np.array_equal(np.asarray(got)[inf], want[inf]):
        raise Fail(f"{where}: loss {got}, expected {want} (inf where no path fits, unless zero_infinity=True)")
    check_array(np.where(inf, 0, got).astype(got.dtype), np.where(inf, 0, want).astype(want.dtype), f"{where} loss")
    if not backward:
        return out
    if not out.requires_grad:
        raise Fail(f"{where}: the loss does not require grad although log_probs does (cut from the graph?)")
    dout = rng.standard_normal(want.shape).astype(dtype)
    sub.backward([out], [dout])
    g = sub.getattr(sent[0], "grad")
    if g is None:
        raise Fail(f"{where}: no gradient reached log_probs")
    _, want_g = _ref(x.astype(np.float64), targets, il, tl, blank, reduction, zero_infinity, dout)
    if g.shape != want_g.shape:
        raise Fail(f"{where}: gradient on log_probs has shape {tuple(g.shape)}, expected {want_g.shape}")
    if not np.all(np.isfinite(g.array)):
        raise Fail(f"{where}: NaN or inf in the gradient on log_probs")
    check_array(_to_logits(g.array, x).astype(dtype), want_g.astype(dtype),
                f"{where}: gradient on the logits (your gradient on log_probs pushed through log_softmax's backward)",
                dtype=False)
    return out


# ---------------------------------------------------------------------------- CTCLoss
@graded("CTCLoss", points=3)
def test_CTCLoss_forward_none(sub, rng):
    for kw in ({}, {"repeats": True}, {"N": 1}):
        _run(sub, rng, *_batch(rng, **kw), reduction="none")


@graded("CTCLoss", points=2)
def test_CTCLoss_reductions(sub, rng):
    for reduction in ("mean", "sum"):
        _run(sub, rng, *_batch(rng, repeats=True), reduction=reduction)


@graded("CTCLoss", points=3)
def test_CTCLoss_backward(sub, rng):
    for reduction, kw in (("none", {}), ("mean", {"repeats": True}), ("sum", {"N": 1})):
        _run(sub, rng, *_batch(rng, **kw), backward=True, reduction=reduction)


@graded("CTCLoss", points=1)
def test_CTCLoss_custom_function(sub, rng):
    """The loss comes from a torch.autograd.Function of the student's (its node is '<Name>Backward',
    found within a few steps of the output's grad_fn), not from autograd through the recursion."""
    lp, targets, il, tl = _batch(rng)
    m = sub.new("CTCLoss", reduction="none")
    out = sub.invoke(m, tensor(lp, requires_grad=True), tensor(targets), tensor(il), tensor(tl))
    if not isinstance(out, RemoteTensor):
        raise Fail(f"CTCLoss: expected a torch.Tensor, got {type(out).__name__}")
    frontier, seen = [sub.getattr(out, "grad_fn")], []
    for _ in range(4):
        nxt = []
        for node in frontier:
            if node is None:
                continue
            name = getattr(node, "type", "")
            seen.append(name)
            if re.fullmatch(r"\w+Backward", name) and name != "AccumulateGrad":
                _run(sub, rng, *_batch(rng), backward=True, reduction="none")  # and the values
                return
            for pair in sub.getattr(node, "next_functions") or ():
                if isinstance(pair, (tuple, list)) and pair:
                    nxt.append(pair[0])
        frontier = nxt[:8]
    raise Fail("CTCLoss: the loss should come from your torch.autograd.Function (a node named <YourFunction>"
               f"Backward near the output), found only {sorted(set(seen))[:6]}: write forward and backward yourself")


@graded("CTCLoss", points=2)
def test_CTCLoss_zero_infinity(sub, rng):
    lp, targets, il, tl = _batch(rng, impossible=True)
    _run(sub, rng, lp, targets, il, tl, reduction="none", label="; sequence 0 cannot be read in 2 steps")
    for reduction in ("none", "mean"):
        _run(sub, rng, lp, targets, il, tl, backward=True, reduction=reduction, zero_infinity=True,
             label="; sequence 0 cannot be read in 2 steps")


@graded("CTCLoss", points=1)
def test_CTCLoss_concatenated_targets(sub, rng):
    lp, targets, il, tl = _batch(rng, N=4, repeats=True)
    tl[1], tl[2] = 1, targets.shape[1]
    il[:] = lp.shape[0]  # every sequence possible: T >= 2S + 2
    lp, targets, il, tl = lp[:, ::-1].copy(), targets[::-1].copy(), il[::-1].copy(), tl[::-1].copy()  # 0 first
    flat = np.concatenate([targets[n, : int(tl[n])] for n in range(len(tl))]).astype(np.int64)
    _run(sub, rng, lp, flat, il, tl, backward=True, reduction="sum", label="; targets concatenated (1-D)")


@graded("CTCLoss", points=1)
def test_CTCLoss_float32(sub, rng):
    _run(sub, rng, *_batch(rng), dtype=np.float32, backward=True, reduction="mean")


@graded("CTCLoss", points=1)
def test_CTCLoss_blank_minimum_length(sub, rng):
    C = 5
    lp, targets, il, tl = _batch(rng, C=C, blank=C - 1, repeats=True)
    _run(sub, rng, lp, targets, il, tl, blank=C - 1, backward=True, reduction="none")
    targets = np.array([[1, 1, 2], [3, 3, 3], [2, 1, 2]])
    lp = log_softmax(rng.standard_normal((6, 3, 4)))
    _run(sub, rng, lp, targets, np.array([4, 5, 3]), np.array([3, 3, 3]), backward=True, reduction="none",
         label="; input_lengths = the minimum length of each label")
    lp = log_softmax(rng.standard_normal((1, 3, 4)))  # T = 1: one label, the empty string, impossible
    _run(sub, rng, lp, np.array([[2, 3], [0, 0], [1, 1]]), np.array([1, 1, 1]), np.array([1, 0, 2]),
         reduction="none", label="; T = 1")
    _run(sub, rng, lp, np.array([[2, 3], [0, 0], [1, 1]]), np.array([1, 1, 1]), np.array([1, 0, 2]),
         backward=True, reduction="mean", zero_infinity=True, label="; T = 1")
