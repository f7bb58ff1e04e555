"""Hidden tests for solutions/ch05_gru/gru_torch.ipynb (book: ch05_gru).

GRUCell and GRU from scratch against torch.nn.GRUCell / torch.nn.GRU(batch_first=True) with copied
weights. The checks (``autograder.testkit.modules``) are shared with the LSTM chapter; the tests,
their names and points are here. The gradient enters through the output and every final state: a
state cut from the graph, or one not carried through time, shows up in the gradients on x, the initial
states and the weights.
"""
import numpy as np

from autograder.core.api import graded
from autograder.testkit.modules import device_check, forward_check, init_check, random_shape
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

KIND = "gru"


# ------------------------------------------------------------------------------ GRUCell
@graded("GRUCell", points=1)
def test_GRUCell_state_dict_and_init(sub, rng):
    init_check(sub, rng, KIND, "cell")


@graded("GRUCell", points=3)
def test_GRUCell_parity(sub, rng):
    for N in (None, None, 1):
        forward_check(sub, rng, KIND, "cell", random_shape(rng, N))


@graded("GRUCell", points=2)
def test_GRUCell_backward(sub, rng):
    for N in (None, 1):
        forward_check(sub, rng, KIND, "cell", random_shape(rng, N), backward=True)


@graded("GRUCell", points=1)
def test_GRUCell_float32(sub, rng):
    forward_check(sub, rng, KIND, "cell", random_shape(rng), dtype=np.float32, backward=True)


@graded("GRUCell", points=1)
def test_GRUCell_default_state_device(sub, rng):
    device_check(sub, rng, KIND, "cell")


# ------------------------------------------------------------------------------- GRU
@graded("GRU", points=1)
def test_GRU_state_dict_and_init(sub, rng):
    init_check(sub, rng, KIND, "seq")


@graded("GRU", points=3)
def test_GRU_parity(sub, rng):
    for N, T in ((None, None), (None, None), (1, None), (None, 1)):
        forward_check(sub, rng, KIND, "seq", random_shape(rng, N, T))


@graded("GRU", points=2)
def test_GRU_backward(sub, rng):
    for N, T in ((None, None), (1, 1)):
        forward_check(sub, rng, KIND, "seq", random_shape(rng, N, T), backward=True)


@graded("GRU", points=1)
def test_GRU_float32(sub, rng):
    forward_check(sub, rng, KIND, "seq", random_shape(rng), dtype=np.float32, backward=True)


@graded("GRU", points=1)
def test_GRU_default_state_device(sub, rng):
    device_check(sub, rng, KIND, "seq")


# ------------------------------------------------------------- the whole chain (issue 20, item 3)
@graded("gru_torch:together", points=1)
def test_gru_torch_together(sub, rng):
    """The whole chain as training runs it: the student's GRU (built on their GRUCell) forward and
    backward against torch.nn.GRU alone, with no composition over their cell. Its own graded name (1
    point, no answer cell): a cell mistake shows here, not as a loss booked on a GRU that is right."""
    forward_check(sub, rng, KIND, "seq", random_shape(rng), backward=True, label="; the whole chain against "
                  "torch.nn.GRU", compose=False)
