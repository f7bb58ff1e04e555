"""What an answer cell may not use (the ``FORBIDDEN`` dict of each hidden-test file).

A hidden-test module's ``FORBIDDEN`` is ``{graded name: [forbidden names]}``; an answer that uses one
of them earns nothing for that graded name, with a message naming the forbidden name it used.
"""
NUMPY_FORBIDDEN = ["import torch", "from torch", "torch.", "rnnlib.tasks", "__import__", "importlib"]
TORCH_FORBIDDEN = ["nn.LSTM", "nn.GRU", "nn.RNN", "torch.lstm", "torch.gru", "torch.rnn_", "_VF",
                   "torch._C", "nn.modules.rnn", "import LSTM", "import GRU", "import RNN",
                   "clip_grad", "__import__", "importlib"]
