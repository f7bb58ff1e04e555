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


def max_rel_error(a, b) -> float:
    """max over entries of |a - b| / max(1e-8, |a| + |b|)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))) if a.size else 0.0
