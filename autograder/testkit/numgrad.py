"""Numerical gradients (central differences) through a trusted forward pass, compared with a
student's backward pass. The forward is always the grader's own (torch.nn in float64), never the
student's: a backward that matches a wrong forward, or zeros that match a constant forward, earn
nothing here."""
from __future__ import annotations

import numpy as np

from .checks import Fail
from .shapes import copy_params


def numgrad(fn, args, target, douts, rng, h=1e-6, max_entries=6):
    """Central differences of sum_k <fn(*args)[k], douts[k]> with respect to one argument.

    ``fn``: a trusted forward returning a list of arrays; ``target``: index of an array argument, or
    (index, key) for a params entry. Probes at most ``max_entries`` entries (chosen with ``rng``);
    returns (indices, numerical values)."""
    base = args[target[0]][target[1]] if isinstance(target, tuple) else args[target]
    flat = list(np.ndindex(base.shape))
    if len(flat) > max_entries:
        flat = [flat[i] for i in sorted(rng.choice(len(flat), max_entries, replace=False))]
    vals = []
    for ix in flat:
        fs = []
        for sign in (1, -1):
            a = [copy_params(v) if isinstance(v, dict) else np.array(v, dtype=np.float64) for v in args]
            target_arr = a[target[0]][target[1]] if isinstance(target, tuple) else a[target]
            target_arr[ix] += sign * h
            fs.append(sum(float(np.sum(np.asarray(o, np.float64) * d)) for o, d in zip(fn(*a), douts)))
        vals.append((fs[0] - fs[1]) / (2 * h))
    return flat, np.array(vals)


def check_numgrad(got, flat, num, what):
    got = np.asarray(getattr(got, "array", got), np.float64)
    if got.ndim == 0 or max(len(ix) for ix in flat) != got.ndim:
        raise Fail(f"{what}: shape {got.shape} does not fit the input it is the gradient of")
    bad = [(ix, got[ix], v) for ix, v in zip(flat, num) if abs(got[ix] - v) > 1e-6 + 1e-4 * (abs(got[ix]) + abs(v))]
    if bad:
        ix, g, v = bad[0]
        raise Fail(f"{what}: {len(bad)} of {len(flat)} probed entries differ from the numerical gradient of "
                   f"the reference forward pass (central differences); e.g. entry {ix} is {g:.6g}, "
                   f"expected {v:.6g}")
