"""Checks of returned values. Each failure names the function, what differs (which output, shape,
dtype, how many entries, the largest error) and nothing else; known-mistake hints are added by
``with_hint`` only where the check that failed is the one the hint is about.

The basic checks live in ``autograder.core.api`` (below its ``# checks`` banner) and are re-exported here,
so that tests import every check from one place.
"""
from __future__ import annotations

import numpy as np

from autograder.core.api import (Fail, NotPlain, Remote, RemoteTensor, check_array, check_scalar, check_type,
                            check_unmodified, rel_error, unpack)

__all__ = ["Fail", "NotPlain", "Remote", "RemoteTensor", "check_array", "check_scalar", "check_type",
           "check_unmodified", "rel_error", "unpack", "check_grads", "with_hint", "check_strict"]

KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def check_grads(got, ref, what, dtype=True):
    """``got``: the student's grads dict; ``ref``: the trusted one (same keys, PyTorch's names)."""
    if not isinstance(got, dict) or sorted(got) != sorted(ref):
        raise Fail(f"{what}: grads must be a dict with keys {sorted(ref)}, got "
                   f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
    for k in KEYS:
        g, r = got[k], np.asarray(ref[k])
        if k.startswith("bias") and isinstance(g, np.ndarray) and g.ndim == 2 and g.shape[1:] == r.shape:
            raise Fail(f"{what} grads[{k!r}]: shape {g.shape}, expected {r.shape}: the bias gradient is not summed "
                       "over the batch (sum over axis 0)")
        check_array(g, r, f"{what} grads[{k!r}]", dtype=dtype)


def with_hint(fn, hint_fn):
    """Run a check; on failure, append the hint (computed only then, and only for this check)."""
    try:
        fn()
    except Fail as e:
        try:
            hint = hint_fn()
        except Exception:  # a hint is optional: never let it break grading
            hint = ""
        raise Fail(str(e) + hint) from None


def check_strict(got, expected, what: str, rtol=None, atol=None, dtype=True):
    """``check_array`` with tighter float64 tolerances (rtol 1e-8, atol 1e-10): for exact computations
    (a tanh RNN, a clip), where a correct float64 answer matches the reference to about 1e-14 and a
    mistake of 1e-6 must not pass. float32 keeps ``check_array``'s tolerances."""
    if np.asarray(expected).dtype == np.float64:
        rtol = 1e-8 if rtol is None else rtol
        atol = 1e-10 if atol is None else atol
    return check_array(got, expected, what, rtol=rtol, atol=atol, dtype=dtype)
