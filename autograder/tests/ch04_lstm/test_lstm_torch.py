"""Hidden tests for solutions/ch04_lstm/lstm_torch.ipynb (book: ch04_lstm).

LSTMCell and LSTM from scratch against torch.nn.LSTMCell / torch.nn.LSTM(batch_first=True) with copied
weights. The checks (``autograder.testkit.modules``) are shared with the GRU chapter; the tests,
their names and points are here. The gradient enters through the output and every final state: a
state cut from the graph, or one not carried through time, shows up in the gradients on x, the initial
states and the weights.
"""
import numpy as np

from autograder.core.api import graded
from autograder.testkit.modules import device_check, forward_check, init_check, random_shape
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

KIND = "lstm"


# ------------------------------------------------------------------------------ LSTMCell
@graded("LSTMCell", points=1)
def test_LSTMCell_state_dict_and_init(sub, rng):
    init_check(sub, rng, KIND, "cell")


@graded("LSTMCell", points=3)
def test_LSTMCell_parity(sub, rng):
    for N in (None, None, 1):
        forward_check(sub, rng, KIND, "cell", random_shape(rng, N))


@graded("LSTMCell", points=2)
def test_LSTMCell_backward(sub, rng):
    for N in (None, 1):
        forward_check(sub, rng, KIND, "cell", random_shape(rng, N), backward=True)


@graded("LSTMCell", points=1)
def test_LSTMCell_float32(sub, rng):
    forward_check(sub, rng, KIND, "cell", random_shape(rng), dtype=np.float32, backward=True)


@graded("LSTMCell", points=1)
def test_LSTMCell_default_state_device(sub, rng):
    device_check(sub, rng, KIND, "cell")


# ------------------------------------------------------------------------------- LSTM
@graded("LSTM", points=1)
def test_LSTM_state_dict_and_init(sub, rng):
    init_check(sub, rng, KIND, "seq")


@graded("LSTM", points=3)
def test_LSTM_parity(sub, rng):
    for N, T in ((None, None), (None, None), (1, None), (None, 1)):
        forward_check(sub, rng, KIND, "seq", random_shape(rng, N, T))


@graded("LSTM", points=2)
def test_LSTM_backward(sub, rng):
    for N, T in ((None, None), (1, 1)):
        forward_check(sub, rng, KIND, "seq", random_shape(rng, N, T), backward=True)


@graded("LSTM", points=1)
def test_LSTM_float32(sub, rng):
    forward_check(sub, rng, KIND, "seq", random_shape(rng), dtype=np.float32, backward=True)


@graded("LSTM", points=1)
def test_LSTM_default_state_device(sub, rng):
    device_check(sub, rng, KIND, "seq")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("lstm_torch:together", points=1)
def test_lstm_torch_together(sub, rng):
    """The whole chain as training runs it: the student's LSTM (built on their LSTMCell) forward and
    backward against torch.nn.LSTM alone, with no composition over their cell. Its own graded name (1
    point, no answer cell): a cell mistake shows here, not as a loss booked on a LSTM that is right."""
    forward_check(sub, rng, KIND, "seq", random_shape(rng), backward=True, label="; the whole chain against "
                  "torch.nn.LSTM", compose=False)
