# ch02 rnn_torch in another style: RNNCell's cell defines a function rnn_cell that RNN's loop calls, and
# RNN keeps its state in a list; a mistake in the cell costs points on RNNCell only (RNN is judged
# against the loop over the student's own RNNCell), one in RNN's loop on RNN only.
STYLE = {
    "RNNCell": '''
def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


class RNNCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = 1 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-k, k))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size).uniform_(-k, k))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size).uniform_(-k, k))

    def forward(self, x, hx=None):
        if hx is None:
            hx = x.new_zeros(x.shape[0], self.hidden_size)
        return rnn_cell(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
''',
    "RNN": '''
class RNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = 1 / math.sqrt(hidden_size)
        for name, shape in (("weight_ih_l0", (hidden_size, input_size)), ("weight_hh_l0", (hidden_size, hidden_size)),
                            ("bias_ih_l0", (hidden_size,)), ("bias_hh_l0", (hidden_size,))):
            self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-k, k)))

    def forward(self, x, hx=None):
        states = [x.new_zeros(x.shape[0], self.hidden_size) if hx is None else hx[0]]
        for t in range(x.shape[1]):
            states.append(rnn_cell(x[:, t], states[-1], self.weight_ih_l0, self.weight_hh_l0,
                                   self.bias_ih_l0, self.bias_hh_l0))
        return torch.stack(states[1:], dim=1), states[-1][None]
''',
}

MUTANTS = {
    "cell without bias_hh": ("RNNCell", (" + h @ w_hh.T + b_hh)", " + h @ w_hh.T)")),
    "cell with a sigmoid": ("RNNCell", ("return torch.tanh(x @", "return torch.sigmoid(x @")),
    "h0 kept in the output": ("RNN", ("torch.stack(states[1:], dim=1)", "torch.stack(states[:-1], dim=1)")),
}
