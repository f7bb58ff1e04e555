"""Numerical gradient checks for visible tests. Introduced in chapter 1, "Gradient checking".

These helpers check *array-valued* functions against an analytic backward pass (as CS231n's
``gradient_check.py`` does); chapter 1 asks you to write the scalar version yourself.
"""
from __future__ import annotations

import numpy as np


def numeric_grad_array(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d(sum(f(x) * dout))/dx by central differences. ``x`` is restored after every probe."""
    x = np.asarray(x)
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        plus = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old - h
        minus = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old
        grad[ix] = np.sum((plus - minus) * dout) / (2 * h)
        it.iternext()
    return grad


def norm_rel_error(a, b) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-12): one number for whole arrays (Frobenius norms).

    Chapter 1's exercise ``relative_error`` is the elementwise maximum instead, which is stricter
    about small entries; this one is what the visible tests use.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))
