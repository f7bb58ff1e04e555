"""Hidden tests for solutions/ch04_lstm/lstm_torch.ipynb (book: ch04_lstm).

LSTMCell and LSTM from scratch against torch.nn.LSTMCell / torch.nn.LSTM(batch_first=True) with
copied weights; the tests themselves are shared with chapter 5 (``_torch_common``).
"""
from ._common import TORCH_FORBIDDEN
from ._torch_common import register_module_tests

FORBIDDEN = {"LSTMCell": TORCH_FORBIDDEN, "LSTM": TORCH_FORBIDDEN}

register_module_tests(globals(), "lstm")
