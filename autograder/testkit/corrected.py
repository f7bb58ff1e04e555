"""Cache repair's last resort: a cache laid out by a one-edit correction of the student's OWN forward.

When the student's forward raises on a test's inputs and on every probe (``repair.probe_caches``), or
its cache's values are wrong and ``layout`` cannot name them, a correct backward would lose everything
for a bug that is not its own. Then the student's process is asked for one-edit variants of that
forward (``Submission.variant``: only the function's name and an edit's number cross; the variant is
their own cell's code edited once from a fixed catalogue of classic-mistake inversions, compiled there
as a new function bound to no name of theirs, ``autograder/sandbox/variants.py``). Here:

1. each variant is called on the test's inputs; its OUTPUTS are compared with the reference's; one
   equal there is called on up to ``PROBES`` probes too, and must equal the reference there as well;
   the first such variant whose cache's leaves each equal a reference value wins, else the first such
   variant (an edit that compensates for the mistake gives equal outputs over a cache that is not);
2. its cache on the test's inputs (kept in their process) has its float leaves named by ``layout``
   against the reference intermediates, and the reference's values are put at those paths (plain
   data); when ``layout`` cannot name every leaf (a value of their own, log alpha past a sequence's
   end), the cache stays as the corrected copy computed it: its outputs equal the reference's on the
   test's inputs and the probes, and a wrong backward still fails (the expected values are the
   reference's, never the cache's);
3. the student's real backward runs on it, judged against the reference as always: a repair never
   helps a wrong backward, and a variant that lies can only name leaves of a cache whose values are
   then the reference's.

Which edit it was is never said (the failure note says only that the cache came from a corrected copy
of their forward: the edit is not a hint to hand out). The search runs only when a forward already
failed, never on NotImplementedError (a released stub), at most ``MAX_TRIES`` variants and
``SECONDS`` per forward and notebook; its outcome is remembered per notebook (the edit found is tried
first next time; none found: not searched again).
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from . import repair

MAX_TRIES = 200  # variants called at most per forward and notebook
SECONDS = 10.0  # and time spent searching per forward and notebook (a cap that correct code never meets)
PROBES = 2  # probes a variant equal on the test's inputs must also be equal on
_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # notebook -> {forward: edit or None}


def _memo(sub) -> dict:
    try:
        return _MEMO.setdefault(sub._nb, {})
    except TypeError:  # a notebook object that cannot be weakly referred to: no memory
        return {}


def _equal(got, refs: dict, outputs: dict, n_out: int) -> bool:
    if not isinstance(got, (tuple, list)) or len(got) != n_out:
        return False
    try:
        mine = {n: got[i] for i, n in outputs.items()}
    except Exception:  # noqa: BLE001 - an output index the student's tuple lacks: not equal
        return False
    return repair.outputs_equal(mine, refs)


def _exact(leaves, want: dict) -> bool:
    """Whether every float leaf equals one of the reference's values, and every int one of its sizes."""
    for _, v in leaves:
        if type(v) is int:
            if not any(type(r) is int and r == v for r in want.values()):
                return False
        elif repair._kind(v) is not None and not any(repair._same(v, r) for r in want.values()):
            return False
    return True


def _try(sub, forward, k, keep, n_out, args, refs_of, want, outputs, probes):
    """(cache, exact) for variant ``k``: the cache (a handle) of its call on ``args`` when its outputs equal
    the reference's there and on the probes, and whether every leaf of it equals a reference value; or
    None."""
    from autograder.core.api import Remote
    from autograder.core.engine import Missing, StudentError
    from autograder.sandbox.wire import ProtocolError

    fn, cache = None, None
    try:
        fn = sub.variant(forward, k)
        if not isinstance(fn, Remote):
            return None
        got = sub.invoke_keep(fn, (keep,), *args)
        if not _equal(got, want, outputs, n_out) or not isinstance(got[keep], Remote):
            return None
        cache = got[keep]
        for p in probes[:PROBES]:
            other = sub.invoke_keep(fn, (keep,), *p)
            if isinstance(other, (tuple, list)) and len(other) == n_out:
                sub.release(other[keep])
            if not _equal(other, refs_of(*p), outputs, n_out):
                return None
        exact = _exact([(list(path), v) for path, v in sub.leaves(cache)], want)
        out, cache = cache, None
        return out, exact
    except (Missing, StudentError, ProtocolError, TypeError, ValueError, IndexError, KeyError):
        return None
    finally:
        for r in (fn, cache):
            if r is not None:
                _release(sub, r)


def _release(sub, r) -> None:
    from autograder.core.engine import StudentError
    from autograder.sandbox.wire import ProtocolError

    try:
        sub.release(r)
    except (StudentError, ProtocolError):
        pass


def _laid_out(sub, cache, args, want: dict):
    """The reference's values put at the paths ``layout`` names in ``cache``; when it cannot name every
    leaf (log alpha past a sequence's end, a value of their own), the cache as the corrected copy
    computed it."""
    from autograder.core.engine import StudentError
    from autograder.sandbox.wire import ProtocolError

    try:
        pairs = repair.layout([(list(path), v) for path, v in sub.leaves(cache)], want, want)
        if pairs:
            dtype = next((a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), np.float64)
            values = [want[n] if type(want[n]) in (float, int) else np.asarray(want[n]).astype(dtype) for _, n in pairs]
            sub.put_leaves(cache, [p for p, _ in pairs], values)
    except (StudentError, ProtocolError, TypeError, ValueError):
        pass
    return cache


def corrected_cache(sub, forward: str, keep: int, n_out: int, args, refs_of, outputs: dict, probes=()):
    """A cache for ``args`` in the layout of a one-edit correction of the student's own ``forward`` (a
    handle in their process), or None. ``outputs``: {index in what the forward returns: reference
    name} (the outputs compared); ``refs_of(*args)``: the correct forward's intermediates; ``keep``: the
    cache's index; ``probes``: other inputs (the variant must be equal on the first ``PROBES``).

    The first variant equal on every input whose cache's leaves each equal a reference value wins; when
    none does, the first variant equal on every input (an edit that compensates for the mistake, such as
    a gate negated where a sign was flipped, gives equal outputs over a cache that is not: it loses to the
    edit that undoes the mistake, whichever comes first)."""
    from autograder.core.engine import Missing, StudentError
    from autograder.sandbox.wire import ProtocolError

    memo = _memo(sub)
    want = refs_of(*args)
    if forward in memo:
        k = memo[forward]
        hit = None if k is None else _try(sub, forward, k, keep, n_out, args, refs_of, want, outputs, list(probes))
        return None if hit is None else _laid_out(sub, hit[0], args, want)
    memo[forward] = None
    try:
        n = int(sub.variant(forward))
    except (Missing, StudentError, ProtocolError, TypeError, ValueError):
        return None
    start, first = time.monotonic(), None
    for k in range(min(n, MAX_TRIES)):
        if time.monotonic() - start > SECONDS:
            break
        hit = _try(sub, forward, k, keep, n_out, args, refs_of, want, outputs, list(probes))
        if hit is None:
            continue
        if hit[1]:
            if first is not None:
                _release(sub, first[1])
            memo[forward] = k
            return _laid_out(sub, hit[0], args, want)
        if first is None:
            first = (k, hit[0])
        else:
            _release(sub, hit[0])
    if first is None:
        return None
    memo[forward] = first[0]
    return _laid_out(sub, first[1], args, want)


def note(forward: str) -> str:
    """The sentence a failing backward's message carries when its cache came from a corrected copy."""
    return (f" [your {forward} is wrong on these inputs, so the cache your backward ran on was laid out by a "
            f"corrected copy of your {forward} and holds the correct values: this failure is the backward's own]")
