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


def probe_inputs(kind, x, states, p):
    """Other inputs of the same kind as a step's (x (N, D)) or a sequence's (x (N, T, D)) test inputs, on
    which a forward that raises on the test's may run (cache repair learns the cache's layout there,
    testkit/repair.py): N == H, D == H, N == D == H, N == 1, one more step (a sequence), the other float
    dtype. Sizes that need not be equal are kept apart (so that a size kept in a cache says which it
    is). Drawn with a fixed seed: every student gets the same probes. [(x, *states, params)]"""
    rng = np.random.default_rng(20)
    seq = x.ndim == 3
    N, D, H = x.shape[0], x.shape[-1], states[0].shape[1]
    T = x.shape[1] if seq else None
    dt = x.dtype
    other = np.float32 if dt == np.float64 else np.float64

    base = {"N": N, "T": T, "D": D, "H": H}
    names = ("N", "T", "D", "H") if seq else ("N", "D", "H")

    def sizes(want: dict, tied=()):
        """(N, T, D, H): the varied sizes as wanted (``tied`` ones equal to H), every other moved apart
        from all the rest, so that a size kept in a cache says which one it is."""
        used, out = set(), {}
        for name in sorted(names, key=lambda k: want[k] == base[k]):  # the varied sizes first
            v = want[name]
            if name not in tied and not (name == "H" and tied):
                while v in used:
                    v += 1
            used.add(v)
            out[name] = v
        return out["N"], out.get("T"), out["D"], out["H"]

    def make(n, t, d, h, dtype):
        xs = (n, t, d) if seq else (n, d)
        return (arr(rng, *xs, dtype=dtype), *[arr(rng, n, h, dtype=dtype) for _ in states],
                params(rng, kind, d, h, dtype))

    variants = [sizes({**base, "N": H}, ("N",)) + (dt,), sizes({**base, "D": H}, ("D",)) + (dt,),
                sizes({**base, "N": H, "D": H}, ("N", "D")) + (dt,), sizes({**base, "N": 1}) + (dt,)]
    if seq:
        variants.append(sizes({**base, "T": T + 1}) + (dt,))
    variants.append(sizes(base) + (other,))
    out, seen = [], {(N, T, D, H, dt)}
    for v in variants:
        if v not in seen:
            seen.add(v)
            out.append(make(*v))
    return out
