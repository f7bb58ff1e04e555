"""The one generator of random shapes for hidden tests, and random arrays and parameters.

Every shape has D != H, so that a transposed weight cannot pass by accident; ``avoid_2h`` also
keeps D != 2H (the input of a bidirectional layer above the first has 2H features).
"""
from __future__ import annotations

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def dims(rng, N: int | None = None, n_max: int = 5, size_max: int = 6, avoid_2h: bool = False):
    """Random (N, D, H) with 2 <= N <= n_max (or the given N), 2 <= D, H <= size_max and D != H."""
    N = N or int(rng.integers(2, n_max + 1))
    D = int(rng.integers(2, size_max + 1))
    H = int(rng.integers(2, size_max + 1))
    while H == D or (avoid_2h and 2 * H == D):
        H = int(rng.integers(2, size_max + 2))
    return N, D, H


def seq_dims(rng, N: int | None = None, T: int | None = None, n_max: int = 4, t_max: int = 5,
             size_max: int = 6, avoid_2h: bool = False):
    """Random (N, T, D, H): ``dims`` and then 2 <= T <= t_max (or the given T)."""
    N, D, H = dims(rng, N, n_max, size_max, avoid_2h)
    return N, T or int(rng.integers(2, t_max + 1)), D, H


def shapes(rng, n_max=5, distinct=True):
    """(N, D, M) with D != M: ``dims`` under the name chapters 1 and 2 use."""
    if not distinct:
        return int(rng.integers(2, n_max + 1)), int(rng.integers(2, 7)), int(rng.integers(2, 7))
    return dims(rng, n_max=n_max)


def arr(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def params(rng, kind, D, H, dtype=np.float64, scale=0.6):
    """A parameter dict in PyTorch's names and layout: weight_ih (G*H, D), ..., bias_hh (G*H,)."""
    G = GATES[kind]
    return {"weight_ih": (scale * rng.standard_normal((G * H, D))).astype(dtype),
            "weight_hh": (scale * rng.standard_normal((G * H, H))).astype(dtype),
            "bias_ih": (scale * rng.standard_normal(G * H)).astype(dtype),
            "bias_hh": (scale * rng.standard_normal(G * H)).astype(dtype)}


def copy_params(p):
    return {k: v.copy() for k, v in p.items()}
