"""Numerical gradients (central differences) through a forward pass, compared with a backward pass."""
from __future__ import annotations

import numpy as np

from .checks import Fail, unpack
from .shapes import copy_params

# ------------------------------------------------------- numerical gradient of the student's forward
def remote_numgrad(sub, name, args, target, douts, pick, n_out, rng, h=1e-6, max_entries=6):
    """Central differences of sum_k <pick(out)[k], douts[k]> through the student's own ``name``.

    ``target``: index of an array argument, or (index, key) for a params entry. Probes at most
    ``max_entries`` entries (chosen with ``rng``); returns (indices, numerical values)."""
    base = args[target[0]][target[1]] if isinstance(target, tuple) else args[target]
    flat = list(np.ndindex(base.shape))
    if len(flat) > max_entries:
        flat = [flat[i] for i in sorted(rng.choice(len(flat), max_entries, replace=False))]
    vals = []
    for ix in flat:
        fs = []
        for sign in (1, -1):
            a = [copy_params(v) if isinstance(v, dict) else v.copy() for v in args]
            target_arr = a[target[0]][target[1]] if isinstance(target, tuple) else a[target]
            target_arr[ix] += sign * h
            outs = pick(unpack(sub.call(name, *a), n_out, name))
            fs.append(sum(float(np.sum(np.asarray(getattr(o, "array", o), np.float64) * d))
                          for o, d in zip(outs, douts)))
        vals.append((fs[0] - fs[1]) / (2 * h))
    return flat, np.array(vals)


def check_numgrad(got, flat, num, what):
    got = np.asarray(getattr(got, "array", got), np.float64)
    for ix, v in zip(flat, num):
        g = got[ix]
        if abs(g - v) > 1e-6 + 1e-4 * (abs(g) + abs(v)):
            raise Fail(f"{what}: entry {ix} is {g:.6g}, but the numerical gradient of your own forward pass "
                       f"gives {v:.6g}; the backward pass does not match the forward pass")
