"""Trusted references for hidden tests: PyTorch in float64, computed in the grader's own process."""
from __future__ import annotations

import numpy as np
import torch

torch.set_num_threads(1)


def vjp(fn, inputs, dout):
    """Run ``fn(*tensors)`` in float64 autograd; return (out as numpy, [d sum(out*dout)/d input])."""
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in inputs]
    out = fn(*ts)
    out.backward(torch.tensor(np.asarray(dout, dtype=np.float64)))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def value_and_grads(fn, inputs: dict):
    """Scalar ``fn(**tensors)`` in float64: (value, {name: gradient})."""
    ts = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in inputs.items()}
    out = fn(**ts)
    out.backward()
    return float(out.item()), {k: t.grad.numpy() for k, t in ts.items()}


def shapes(rng, n_max=5, distinct=True):
    """Random (N, D, M) with D != M (a transposed weight cannot pass by accident)."""
    N = int(rng.integers(2, n_max + 1))
    D = int(rng.integers(2, 7))
    M = int(rng.integers(2, 7))
    while distinct and M == D:
        M = int(rng.integers(2, 8))
    return N, D, M
