"""Cache repair: a correct backward earns its points even when the student's forward is wrong.

A backward's test runs on the cache of the student's own forward (its layout is the student's choice,
CONTRACT.md). When that forward is wrong on the test's inputs (its own tests already take its
points), the cache is repaired IN THE STUDENT'S PROCESS before the backward is called:

1. the student's side lists the cache's float leaves (arrays and floats inside tuples, lists, dicts
   and the notebook's own objects) as plain data (``Submission.leaves``: generic plumbing, no course
   logic there);
2. here, each leaf is matched against the reference intermediates that the trusted side computed with
   the correct forward (inputs, weights, scores, weights of attention, gates, outputs; ``refs``), by
   shape and value;
3. a leaf that matches nothing is paired with what the student's forward returned when it equals it
   (their h_next is the cache's h_next), else with the one reference intermediate of its shape (and
   kind: array or float), not an output, that no leaf matched and that lies clearly closest to it
   (sign pattern, correlation); the value is put in at the leaf's path (``Submission.put_leaves``:
   plain data, no code crosses).

Fail closed: a leaf with no candidate, or two candidates about as close, means no repair at all (the
backward then runs on the cache as the forward left it: a declared coupling). A forward that raises
leaves no cache to repair. A repair never helps a wrong backward: the expected values stay the
reference's, and the failure message says that the cache was repaired.
"""
from __future__ import annotations

import numpy as np

AMBIGUOUS = 0.5  # the closest candidate must be at most half as far as the next one


def _kind(v):
    if isinstance(v, np.ndarray):
        return ("arr", v.shape)
    if type(v) is float:
        return ("float", ())
    return None


def _same(a, b) -> bool:
    if _kind(a) != _kind(b):
        return False
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    single = any(np.asarray(x).dtype == np.float32 for x in (a, b))
    rtol, atol = (1e-4, 1e-6) if single else (1e-7, 1e-10)
    return bool(np.allclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True))


def _distance(a, b) -> float:
    """How unlike two same-shape values are, whatever their scale: the share of entries whose sign
    differs (zero, a mask's pattern, counts as a sign), plus (1 - correlation) / 2. A float: relative."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.ndim == 0:
        return float(abs(a64 - b64) / (abs(b64) + 1e-12))
    with np.errstate(all="ignore"):
        a64 = np.nan_to_num(a64, nan=0.0, posinf=1e6, neginf=-1e6).ravel()
        b64 = b64.ravel()
        signs = float(np.mean(np.sign(a64) != np.sign(b64)))
        sa, sb = a64.std(), b64.std()
        corr = float(np.mean((a64 - a64.mean()) * (b64 - b64.mean())) / (sa * sb)) if sa > 0 and sb > 0 else 0.0
    return signs + (1 - corr) / 2


def plan(leaves, refs: dict, outputs: dict | None = None):
    """[(path, reference name)] to put in, [] when every leaf matches, None when ambiguous.
    ``outputs``: {reference name: what the student's forward returned for it}: a leaf equal to one is
    that output (its reference is put in), and a leaf equal to none is not an output."""
    outputs = {n: v for n, v in (outputs or {}).items() if n in refs and _kind(v) is not None}
    matched, unmatched = set(), []
    for path, val in leaves:
        if _kind(val) is None:
            continue
        hits = [n for n, r in refs.items() if _same(val, r)]
        if hits:
            matched.update(hits)
        else:
            unmatched.append((path, val))
    out = []
    for path, val in unmatched:
        same_output = [n for n, v in outputs.items() if _same(val, v)]
        if len(same_output) == 1:
            out.append((path, same_output[0]))
            continue
        cands = sorted((_distance(val, r), n) for n, r in refs.items()
                       if n not in matched and n not in outputs and _kind(r) == _kind(val))
        if not cands or (len(cands) > 1 and cands[0][0] > AMBIGUOUS * cands[1][0]):
            return None
        out.append((path, cands[0][1]))
    return out


def repair(sub, cache, refs: dict, outputs: dict | None = None) -> list[str]:
    """Repair the kept ``cache`` (a handle) with ``refs`` {name: array or float} (the correct
    forward's values on the test's inputs; ``outputs``: see ``plan``); returns the names put in
    ([]: nothing repaired)."""
    got = sub.leaves(cache)
    try:  # what the student's process answered is checked here: anything malformed, no repair
        got = [(list(p), v) for p, v in got]
        leaves = {tuple(map(tuple, p)): v for p, v in got}
        steps = plan(got, refs, outputs)
    except (TypeError, ValueError):
        return []
    if not steps:
        return []
    values = []
    for path, name in steps:
        r = refs[name]
        old = leaves.get(tuple(map(tuple, path)))
        values.append(float(r) if type(r) is float else np.asarray(r).astype(getattr(old, "dtype", np.float64)))
    sub.put_leaves(cache, [p for p, _ in steps], values)
    return sorted({n for _, n in steps})


def note(names: list[str], forward: str) -> str:
    """The sentence a failing backward's message carries after a repair."""
    if not names:
        return ""
    return (f" [your {forward} is wrong on these inputs, so its cache was repaired with the correct "
            f"{', '.join(names)} before your backward ran: this failure is the backward's own]")
