"""Hidden tests for solutions/ch05_gru/gru_torch.ipynb (book: ch05_gru).

GRUCell and GRU from scratch against torch.nn.GRUCell / torch.nn.GRU(batch_first=True) with copied
weights; the tests themselves are shared with chapter 4 (``ch04_lstm/_torch_common``).
"""
from autograder.tests.ch04_lstm._common import TORCH_FORBIDDEN
from autograder.tests.ch04_lstm._torch_common import register_module_tests

FORBIDDEN = {"GRUCell": TORCH_FORBIDDEN, "GRU": TORCH_FORBIDDEN}

register_module_tests(globals(), "gru")
