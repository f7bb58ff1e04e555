"""Seeding and devices. Introduced in chapter 1, section "Tensors on devices"."""
from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python, NumPy and (if installed) PyTorch; return a fresh ``numpy.random.Generator``."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass
    return np.random.default_rng(seed)


def get_device(prefer: str | None = None):
    """``cuda`` when a GPU is present (or ``RNNLIB_DEVICE`` says so), else ``cpu``."""
    import torch

    want = prefer or os.environ.get("RNNLIB_DEVICE")
    if want:
        return torch.device(want)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
