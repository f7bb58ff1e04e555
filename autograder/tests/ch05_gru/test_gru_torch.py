"""Hidden tests for solutions/ch05_gru/gru_torch.ipynb (book: ch05_gru)."""
import numpy as np

from autograder.api import graded
from autograder.tests.ch04_lstm._common import TORCH_FORBIDDEN
from autograder.tests.ch04_lstm._torch_common import device_check, forward_check, init_check

FORBIDDEN = {"GRUCell": TORCH_FORBIDDEN, "GRU": TORCH_FORBIDDEN}


def _shape(rng, N=None, T=None):
    N = N or int(rng.integers(2, 5))
    D = int(rng.integers(2, 7))
    H = int(rng.integers(2, 7))
    while H == D:
        H = int(rng.integers(2, 8))
    return N, T or int(rng.integers(2, 6)), D, H


# ------------------------------------------------------------------------------ GRUCell
@graded("GRUCell", points=1)
def test_GRUCell_state_dict_and_init(sub, rng):
    init_check(sub, rng, "gru", "cell")


@graded("GRUCell", points=3)
def test_GRUCell_parity(sub, rng):
    for N in (None, None, 1):
        forward_check(sub, rng, "gru", "cell", _shape(rng, N))


@graded("GRUCell", points=2)
def test_GRUCell_backward(sub, rng):
    for N in (None, 1):
        forward_check(sub, rng, "gru", "cell", _shape(rng, N), backward=True)


@graded("GRUCell", points=1)
def test_GRUCell_float32(sub, rng):
    forward_check(sub, rng, "gru", "cell", _shape(rng), dtype=np.float32, backward=True)


@graded("GRUCell", points=1)
def test_GRUCell_default_state_device(sub, rng):
    device_check(sub, rng, "gru", "cell")


# ---------------------------------------------------------------------------------- GRU
@graded("GRU", points=1)
def test_GRU_state_dict_and_init(sub, rng):
    init_check(sub, rng, "gru", "seq")


@graded("GRU", points=3)
def test_GRU_parity(sub, rng):
    for N, T in ((None, None), (None, None), (1, None), (None, 1)):
        forward_check(sub, rng, "gru", "seq", _shape(rng, N, T))


@graded("GRU", points=2)
def test_GRU_backward(sub, rng):
    for N, T in ((None, None), (1, 1)):
        forward_check(sub, rng, "gru", "seq", _shape(rng, N, T), backward=True)


@graded("GRU", points=1)
def test_GRU_float32(sub, rng):
    forward_check(sub, rng, "gru", "seq", _shape(rng), dtype=np.float32, backward=True)


@graded("GRU", points=1)
def test_GRU_default_state_device(sub, rng):
    device_check(sub, rng, "gru", "seq")
