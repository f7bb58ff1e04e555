"""Checks for the visible tests in the exercise notebooks: a failure says what is wrong and where.

Introduced in chapter 1's exercises. The hidden tests use stricter checks of their own.
"""
from __future__ import annotations

import numpy as np


def assert_close(got, expected, name: str = "value", rtol: float = 1e-6, atol: float = 1e-8,
                 check_dtype: bool = True) -> None:
    """Assert that ``got`` is an array (or tensor) of ``expected``'s shape and dtype, and close to it."""
    try:
        import torch

        if isinstance(got, torch.Tensor):
            got = got.detach().cpu().numpy()
        if isinstance(expected, torch.Tensor):
            expected = expected.detach().cpu().numpy()
    except ImportError:
        pass
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray), f"{name}: expected a numpy array, got {type(got).__name__}"
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, expected {expected.shape}"
    if check_dtype:
        assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype}, expected {expected.dtype}"
    err = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    bad = err > atol + rtol * np.abs(expected.astype(np.float64))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{name}: {int(bad.sum())} of {bad.size} entries differ; entry {idx} is "
                             f"{got[idx]:.6g}, expected {expected[idx]:.6g} (max abs error {err.max():.3g})")


def assert_grad_close(analytic, numeric, name: str = "gradient", tol: float = 1e-7) -> None:
    """Compare an analytic gradient with a numerical one by relative error (float64 inputs)."""
    from .gradcheck import norm_rel_error

    analytic = np.asarray(analytic)
    assert analytic.shape == np.shape(numeric), f"{name}: shape {analytic.shape}, expected {np.shape(numeric)}"
    e = norm_rel_error(analytic, numeric)
    assert e < tol, (f"{name}: relative error {e:.2e} against the numerical gradient (should be < {tol:.0e}); "
                     "check the local derivative and how the upstream gradient is multiplied in")
