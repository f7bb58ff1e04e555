"""Hidden tests for solutions/ch04_lstm/lstm_torch.ipynb (book: ch04_lstm)."""
import numpy as np

from autograder.api import graded

from ._common import TORCH_FORBIDDEN
from ._torch_common import device_check, forward_check, init_check

FORBIDDEN = {"LSTMCell": TORCH_FORBIDDEN, "LSTM": TORCH_FORBIDDEN}


def _shape(rng, N=None, T=None):
    N = N or int(rng.integers(2, 5))
    D = int(rng.integers(2, 7))
    H = int(rng.integers(2, 7))
    while H == D:
        H = int(rng.integers(2, 8))
    return N, T or int(rng.integers(2, 6)), D, H


# ----------------------------------------------------------------------------- LSTMCell
@graded("LSTMCell", points=1)
def test_LSTMCell_state_dict_and_init(sub, rng):
    init_check(sub, rng, "lstm", "cell")


@graded("LSTMCell", points=3)
def test_LSTMCell_parity(sub, rng):
    for N in (None, None, 1):
        forward_check(sub, rng, "lstm", "cell", _shape(rng, N))


@graded("LSTMCell", points=2)
def test_LSTMCell_backward(sub, rng):
    for N in (None, 1):
        forward_check(sub, rng, "lstm", "cell", _shape(rng, N), backward=True)


@graded("LSTMCell", points=1)
def test_LSTMCell_float32(sub, rng):
    forward_check(sub, rng, "lstm", "cell", _shape(rng), dtype=np.float32, backward=True)


@graded("LSTMCell", points=1)
def test_LSTMCell_default_state_device(sub, rng):
    device_check(sub, rng, "lstm", "cell")


# --------------------------------------------------------------------------------- LSTM
@graded("LSTM", points=1)
def test_LSTM_state_dict_and_init(sub, rng):
    init_check(sub, rng, "lstm", "seq")


@graded("LSTM", points=3)
def test_LSTM_parity(sub, rng):
    for N, T in ((None, None), (None, None), (1, None), (None, 1)):
        forward_check(sub, rng, "lstm", "seq", _shape(rng, N, T))


@graded("LSTM", points=2)
def test_LSTM_backward(sub, rng):
    # The gradient enters through output, h_n and c_n: a c_n cut from the graph, or a state not
    # carried through time, shows up in the gradients on x, h0, c0 and the weights.
    for N, T in ((None, None), (1, 1)):
        forward_check(sub, rng, "lstm", "seq", _shape(rng, N, T), backward=True)


@graded("LSTM", points=1)
def test_LSTM_float32(sub, rng):
    forward_check(sub, rng, "lstm", "seq", _shape(rng), dtype=np.float32, backward=True)


@graded("LSTM", points=1)
def test_LSTM_default_state_device(sub, rng):
    device_check(sub, rng, "lstm", "seq")
