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


def outputs_equal(mine: dict, refs: dict) -> bool:
    """Whether a forward's outputs ({reference name: value}) equal the reference's; values that are not
    arrays of the right shape are not equal."""
    try:
        return all(np.allclose(np.asarray(v, np.float64), refs[n], rtol=1e-4, atol=1e-6) for n, v in mine.items())
    except Exception:  # noqa: BLE001 - not arrays of the right shape: not equal
        return False


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


# ----------------------------------------------------------- a cache in the layout of a probe's
def layout(leaves, probe_refs: dict, test_refs: dict):
    """[(path, reference name)] for EVERY float leaf of a probe's cache, or None (fail closed).

    ``probe_refs``: the correct forward's intermediates on the probe's inputs; ``test_refs``: on the
    test's inputs (same names). A leaf equal to one or more probe intermediates is that intermediate
    (several names only when their values agree on the test's inputs too: h_prev of step t is h_next of
    step t-1; names the test's inputs do not have are dropped, none left: None); a leaf equal to none is paired as ``plan`` pairs it (the one unmatched intermediate of
    its kind that lies clearly closest). An int leaf (a size kept in the cache) must equal one of the
    inputs' sizes that ``probe_refs`` name as ints (N, T, D, H), and be the same size on the test's
    inputs whichever of them it is. Ambiguous, unmatched, or a name the test's inputs do not have: None."""
    pairs, matched, unmatched = [], set(), []
    for path, val in leaves:
        if type(val) is int:  # a size kept in the cache: one of the inputs' sizes (N, T, D, H), exactly
            hits = [n for n, r in probe_refs.items() if type(r) is int and r == val]
            if not hits or any(n not in test_refs or test_refs[n] != test_refs[hits[0]] for n in hits):
                return None
            pairs.append((path, hits[0]))
            continue
        if _kind(val) is None:
            continue
        hits = [n for n, r in probe_refs.items() if _same(val, r)]
        if hits:
            # names the test's inputs lack are dropped (the probe's last h_next is its step T's h_prev)
            known = [n for n in hits if n in test_refs]
            if not known or not all(_kind(test_refs[n]) == _kind(test_refs[known[0]])
                                    and _same(test_refs[n], test_refs[known[0]]) for n in known[1:]):
                return None
            matched.update(hits)
            pairs.append((path, known[0]))
        else:
            unmatched.append((path, val))
    for path, val in unmatched:
        cands = sorted((_distance(val, r), n) for n, r in probe_refs.items()
                       if n not in matched and _kind(r) == _kind(val) and n in test_refs)
        if not cands or (len(cands) > 1 and cands[0][0] > AMBIGUOUS * cands[1][0]):
            return None
        pairs.append((path, cands[0][1]))
    return pairs or None


def probe_caches(sub, forward: str, keep: int, probes, refs_of, test_args, n_out: int):
    """Caches for a test's inputs in the layout of the student's own ``forward``, learned on ``probes``
    (a generator: one per probe whose every float leaf is matched; none: fail closed). Used when that
    forward cannot give a usable cache on the test's inputs (it raises there, or its backward raises on
    its cache): the forward is called on other inputs (e.g. N == H, D == H, one more step, the other
    float dtype) where it does not raise, its cache's float leaves are matched to the correct forward's
    intermediates on the probe's inputs (``layout``), and the test's intermediates of the same names
    are put at those paths of the probe's cache, kept in their process (``put_leaves``: plain data, of
    the test's shapes and dtype). ``refs_of(*args)``: the correct forward's intermediates; ``keep``:
    the cache's index in what the forward returns (``n_out`` items). Only plain data crosses."""
    from autograder.core.api import Remote
    from autograder.core.engine import Missing, StudentError
    from autograder.sandbox.wire import ProtocolError

    want = refs_of(*test_args)
    dtype = next((a.dtype for a in test_args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), np.float64)
    for args in probes:
        try:
            got = sub.call_keep(forward, (keep,), *args)
        except (Missing, StudentError, ProtocolError):
            continue
        if not isinstance(got, (tuple, list)) or len(got) != n_out or not isinstance(got[keep], Remote):
            continue
        cache = got[keep]
        try:
            leaves = [(list(p), v) for p, v in sub.leaves(cache)]
            pairs = layout(leaves, refs_of(*args), want)
        except (TypeError, ValueError):
            continue
        if pairs is None:
            continue
        values = [want[n] if type(want[n]) in (float, int) else np.asarray(want[n]).astype(dtype) for _, n in pairs]
        try:
            sub.put_leaves(cache, [p for p, _ in pairs], values)
        except (StudentError, ProtocolError):
            continue
        yield cache


def worth_probing(error) -> bool:
    """Whether a failure may be explained by the inputs: not when the code is not written yet (the
    released stub raises NotImplementedError on every input: probing it only costs calls). The student's
    process reports ``NotImplementedError: ... (in f, cell C line L: ...)``; the runner's wording is
    ``your code raised NotImplementedError``."""
    text = str(error)
    return not (text.startswith("NotImplementedError") or "raised NotImplementedError" in text)


def probe_note(forward: str) -> str:
    """The sentence a failing backward's message carries when its cache was built from a probe's."""
    return (f" [your {forward} raised or left an unusable cache on these inputs, so the cache your backward ran on "
            f"was built in your {forward}'s own layout (learned on other inputs) with the correct values: this "
            "failure is the backward's own]")


def run_backward(sub, forward: str, keep: int, n_out: int, fwd_args, call_backward, refs_of, probes,
                 outputs=None, repair_values=True) -> tuple:
    """(what ``call_backward(cache)`` returned, note): a backward run on the cache of the student's own
    ``forward`` on ``fwd_args`` (kept in their process). When that forward is wrong there (its outputs,
    named by ``outputs`` = {index in what it returns: reference name}, differ from ``refs_of(*fwd_args)``),
    the cache's values are repaired first (``repair``); when the forward raises there, or is wrong and the
    backward raises on its cache, the backward runs on a cache built in the forward's own layout learned
    on ``probes`` (``probe_caches``, one after the other until the backward runs). A failure that no probe
    explains is raised as it was."""
    from autograder.core.api import unpack
    from autograder.core.engine import StudentError

    from . import corrected

    outputs = outputs or {}
    refs = refs_of(*fwd_args)

    def on_probes(first):
        if not worth_probing(first):
            raise first
        for rebuilt in probe_caches(sub, forward, keep, probes, refs_of, fwd_args, n_out):
            try:
                return call_backward(rebuilt), probe_note(forward)
            except StudentError:
                continue
        fixed = fixed_cache() if outputs else None
        if fixed is not None:
            return call_backward(fixed), corrected.note(forward)
        raise first

    def fixed_cache():  # the last resort: a one-edit correction of their forward lays the cache out
        return corrected.corrected_cache(sub, forward, keep, n_out, fwd_args, refs_of, outputs, list(probes))

    try:
        got = sub.call_keep(forward, (keep,), *fwd_args)
    except StudentError as e:
        return on_probes(e)
    got = unpack(got, n_out, forward)
    cache = got[keep]
    mine = {name: got[i] for i, name in outputs.items()}
    right = outputs_equal(mine, refs)
    if not right and repair_values:
        fixed = fixed_cache()
        if fixed is not None:
            return call_backward(fixed), corrected.note(forward)
    msg = "" if right or not repair_values else note(repair(sub, cache, refs, mine), forward)
    try:
        return call_backward(cache), msg
    except StudentError as e:
        if right:
            raise
        return on_probes(e)
