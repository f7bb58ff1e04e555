"""Synthetic sequence tasks for the book's experiments (chapters 3 and 4).

Introduced in chapter 3, "The adding problem". The graded NumPy exercise ``adding_problem`` is yours
to write; the hidden tests refuse an answer that calls this module.
"""
from __future__ import annotations

import torch


def adding_batch(n: int, T: int, generator: torch.Generator | None = None, device="cpu",
                 dtype=torch.float32):
    """The adding problem (Hochreiter and Schmidhuber 1997; the variant of Le et al. 2015).

    Returns ``x (n, T, 2)`` and ``y (n,)``: channel 0 holds values uniform in [0, 1); channel 1 marks
    exactly two steps, one in the first half ``[0, T // 2)`` and one in the second ``[T // 2, T)``;
    the target is the sum of the two marked values. Predicting the mean (1.0) gives MSE 1/6.
    """
    values = torch.rand(n, T, generator=generator, dtype=dtype)  # (n, T)
    idx = torch.stack([torch.randint(0, T // 2, (n,), generator=generator),
                       torch.randint(T // 2, T, (n,), generator=generator)], dim=1)  # (n, 2) marked steps
    marker = torch.zeros(n, T, dtype=dtype).scatter_(1, idx, 1.0)  # (n, T)
    x = torch.stack([values, marker], dim=-1)  # (n, T, 2)
    y = values.gather(1, idx).sum(dim=1)  # (n,)
    return x.to(device), y.to(device)
