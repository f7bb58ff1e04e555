"""Trusted CTC references for chapter 10's hidden tests (instructor-only, run in the grader's process).

- ``torch_ctc``: loss per sequence and gradient on the logits, from ``torch.nn.functional.ctc_loss``
  in float64 (the authority).
- ``alpha``: log alpha per sequence, a plain loop over one sequence at a time (written independently
  of the exercise's vectorised form), with switches that reproduce the classic mistakes, so that a
  hint is given only when the student's answer equals the mistaken one.
- ``numeric_logit_grad``: central differences of ``torch_ctc``'s loss on the logits.
- ``label_logprob`` and ``exhaustive_best``: log p(label | x) of a label string, and the most
  probable label string found by enumerating every string up to length T (tiny vocabularies only).
- ``collapse``: CTC's rule (merge repeats, then drop blanks) on one path.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

NEG = -np.inf


def log_softmax(logits):
    z = np.asarray(logits, np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def torch_ctc(logits, targets, input_lengths, target_lengths, blank=0, dloss=None):
    """logits (N, T, C) -> (loss (N,), dlogits (N, T, C) for ``dloss`` (N,) or None). float64;
    an impossible sequence has loss inf and a zero gradient."""
    z = torch.tensor(np.asarray(logits, np.float64), requires_grad=True)
    lp = z.log_softmax(-1).transpose(0, 1)  # (T, N, C), torch's layout
    tg = torch.tensor(np.asarray(targets, np.int64)).reshape(len(target_lengths), -1)
    il = torch.tensor(np.asarray(input_lengths, np.int64))
    tl = torch.tensor(np.asarray(target_lengths, np.int64))
    with torch.no_grad():
        loss = F.ctc_loss(lp, tg, il, tl, blank=blank, reduction="none", zero_infinity=False).numpy()
    if dloss is None:
        return loss, None
    l2 = F.ctc_loss(lp, tg, il, tl, blank=blank, reduction="none", zero_infinity=True)
    (g,) = torch.autograd.grad(l2, z, torch.tensor(np.asarray(dloss, np.float64)))
    return loss, g.numpy()


def _lse(*xs, naive=False):
    xs = np.array(xs, np.float64)
    if naive:
        with np.errstate(divide="ignore", under="ignore"):
            return float(np.log(np.sum(np.exp(xs))))
    m = xs.max()
    if m == NEG:
        return NEG
    return float(m + np.log(np.sum(np.exp(xs - m))))


def extend(label, blank=0):
    ext = [blank]
    for c in label:
        ext += [int(c), blank]
    return ext


def alpha_one(lp, label, blank=0, skip_repeats=False, naive=False):
    """log alpha (T, 2U+1) of one sequence; lp (T, C) log-probabilities. ``skip_repeats``: the mistake
    of allowing the skip s-2 -> s between two equal labels; ``naive``: log-sum-exp without max shift."""
    ext = extend(label, blank)
    T, L = lp.shape[0], len(ext)
    a = np.full((T, L), NEG)
    a[0, 0] = lp[0, ext[0]]
    if L > 1:
        a[0, 1] = lp[0, ext[1]]
    for t in range(1, T):
        for s in range(L):
            terms = [a[t - 1, s]]
            if s >= 1:
                terms.append(a[t - 1, s - 1])
            if s >= 2 and ext[s] != blank and (skip_repeats or ext[s] != ext[s - 2]):
                terms.append(a[t - 1, s - 2])
            a[t, s] = _lse(*terms, naive=naive) + lp[t, ext[s]]
    return a


def loss_one(a, ends="both"):
    """-log p from log alpha (T, L): ``ends`` 'both' (right), 'blank' or 'label' (one end state only)."""
    L = a.shape[1]
    last = a[-1]
    if ends == "blank" or L == 1:
        return -last[L - 1]
    if ends == "label":
        return -last[L - 2]
    return -_lse(last[L - 1], last[L - 2])


def alpha(logits, targets, input_lengths, target_lengths, blank=0, **mistake):
    """[log alpha (T_n, 2U_n+1) for each n] and the loss (N,), from logits (N, T, C)."""
    lp = log_softmax(logits)
    out, loss = [], []
    ends = mistake.pop("ends", "both")
    full_T = mistake.pop("full_T", False)
    for n in range(lp.shape[0]):
        T_n = lp.shape[1] if full_T else int(input_lengths[n])
        lab = [int(c) for c in np.asarray(targets[n])[: int(target_lengths[n])]]
        a = alpha_one(lp[n, :T_n], lab, blank, **mistake)
        out.append(a)
        loss.append(loss_one(a, ends))
    return out, np.array(loss)


def intermediates(logits, targets, input_lengths, target_lengths, blank=0) -> dict:
    """The correct forward's values a ctc_forward cache may hold (cache repair, testkit/repair.py):
    logits, log-probabilities, their gather on the extended labels, log alpha (N, T, 2S + 1; -inf
    outside each sequence) and the loss."""
    z = np.asarray(logits, np.float64)
    N, T, _ = z.shape
    S = np.asarray(targets).reshape(N, -1).shape[1]
    L = 2 * S + 1
    lp = log_softmax(z)
    ext = np.full((N, L), blank, dtype=np.int64)
    ext[:, 1::2] = np.asarray(targets).reshape(N, -1)
    lp_ext = np.take_along_axis(lp, np.broadcast_to(ext[:, None, :], (N, T, L)), axis=2)
    alphas, loss = alpha(z, targets, input_lengths, target_lengths, blank)
    la = np.full((N, T, L), NEG)
    for n, a in enumerate(alphas):
        la[n, :a.shape[0], :a.shape[1]] = a
    return {"logits": z, "log_probs": lp, "lp_ext": lp_ext, "log_alpha": la, "loss": loss}


def numeric_logit_grad(logits, targets, input_lengths, target_lengths, dloss, blank=0, eps=1e-5):
    z = np.array(logits, np.float64)
    g = np.zeros_like(z)
    it = np.nditer(z, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = z[i]
        z[i] = old + eps
        lp_ = torch_ctc(z, targets, input_lengths, target_lengths, blank)[0]
        z[i] = old - eps
        lm_ = torch_ctc(z, targets, input_lengths, target_lengths, blank)[0]
        z[i] = old
        d = np.where(np.isfinite(lp_) & np.isfinite(lm_), lp_ - lm_, 0.0)
        g[i] = float(np.dot(dloss, d)) / (2 * eps)
    return g


def collapse(path, blank=0):
    out, prev = [], None
    for c in path:
        c = int(c)
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return out


def label_logprob(lp, label, blank=0):
    """log p(label | x) for one sequence, lp (T, C) log-probabilities."""
    if len(label) == 0:
        return float(np.sum(lp[:, blank]))
    a = alpha_one(np.asarray(lp, np.float64), list(label), blank)
    return _lse(a[-1, -1], a[-1, -2])


def exhaustive_best(lp, blank=0):
    """[(label tuple, log p)] of every label string reachable in T steps, most probable first."""
    T, C = lp.shape
    labels = [c for c in range(C) if c != blank]
    scores = {}
    for k in range(T + 1):
        for lab in itertools.product(labels, repeat=k):
            need = k + sum(1 for i in range(1, k) if lab[i] == lab[i - 1])
            if need <= T:
                scores[lab] = label_logprob(lp, lab, blank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def greedy(logits, input_lengths, blank=0):
    z = np.asarray(logits)
    return [collapse(z[n, : int(input_lengths[n])].argmax(-1), blank) for n in range(z.shape[0])]


def prefix_beam(lp, beam_width, blank=0):
    """Trusted prefix beam search on one sequence (T, C): [(prefix tuple, log p)], best first."""
    T, C = lp.shape
    beams = [((), 0.0, NEG)]
    for t in range(T):
        cand = {}
        for prefix, pb, pnb in beams:
            tot = np.logaddexp(pb, pnb)
            b, nb = cand.get(prefix, (NEG, NEG))
            b = np.logaddexp(b, tot + lp[t, blank])
            if prefix:
                nb = np.logaddexp(nb, pnb + lp[t, prefix[-1]])
            cand[prefix] = (b, nb)
            for c in range(C):
                if c == blank:
                    continue
                new = prefix + (c,)
                src = pb if prefix and prefix[-1] == c else tot
                b2, nb2 = cand.get(new, (NEG, NEG))
                cand[new] = (b2, np.logaddexp(nb2, src + lp[t, c]))
        order = sorted(cand.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam_width]
        beams = [(p, b, nb) for p, (b, nb) in order]
    return [(p, float(np.logaddexp(b, nb))) for p, b, nb in beams]


# ---------------------------------------------------------------------------- mistake hints
def _same(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return False
    fin = np.isfinite(ref)
    return bool(np.array_equal(np.isfinite(got), fin) and np.allclose(got[fin], ref[fin], rtol=1e-4, atol=1e-6)
                and np.all((got[~fin] == ref[~fin]) | (np.isnan(got[~fin]) & np.isnan(ref[~fin]))))


def hint_ctc_loss(logits, targets, input_lengths, target_lengths, got, blank=0):
    """A sentence naming the classic mistake that ``got`` (the student's loss (N,)) reproduces, or ''."""
    got = np.asarray(got, np.float64)
    _, right = alpha(logits, targets, input_lengths, target_lengths, blank)
    if _same(got, right):
        return ""
    S = np.asarray(targets).shape[1]
    cases = [
        ({"skip_repeats": True}, " (Hint: your loss is the one where a path may skip the blank between two "
         "equal labels; the skip s-2 -> s is allowed only when l'[s] != l'[s-2], so that '1-1' is needed "
         "to read '11'.)"),
        ({"ends": "blank"}, " (Hint: your loss counts only the final blank state; p(l|x) adds the two end "
         "states, the last label and the blank after it.)"),
        ({"ends": "label"}, " (Hint: your loss counts only the last label's state; p(l|x) adds the two end "
         "states, the last label and the blank after it.)"),
        ({"full_T": True}, " (Hint: your loss reads alpha at the last step T - 1 for every sequence; sequence "
         "n ends at step input_lengths[n] - 1.)"),
    ]
    for kw, text in cases:
        if _same(got, alpha(logits, targets, input_lengths, target_lengths, blank, **kw)[1]):
            return text
    if _same(got, alpha(logits, targets, input_lengths, np.full(len(target_lengths), S), blank)[1]):
        return " (Hint: only the first target_lengths[n] labels of row n count; the rest is padding.)"
    bad = ~np.isfinite(got) & np.isfinite(right)
    if bad.any():
        naive = alpha(logits, targets, input_lengths, target_lengths, blank, naive=True)[1]
        if not np.all(np.isfinite(naive[bad])):
            return (" (Hint: the probabilities of a long sequence underflow: a log-sum-exp without the max "
                    "shift gives -inf there; compute m + log(sum(exp(a - m))) with m the largest term.)")
    return ""
