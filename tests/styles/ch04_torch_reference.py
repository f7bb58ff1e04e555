# ch04 lstm_torch as the reference writes it (LSTM calls the lstm_cell function of the LSTMCell cell):
# a mistake in the cell must cost points on LSTMCell only (LSTM is judged against the loop over the
# student's own LSTMCell); a mistake in LSTM's loop costs points on LSTM only.
STYLE = {}

MUTANTS = {
    "gates in CS231n's order (i, f, o, g)": ("LSTMCell", ("i, f, g, o = gates.chunk(4, dim=-1)",
                                                          "i, f, o, g = gates.chunk(4, dim=-1)")),
    "forget gate without its sigmoid": ("LSTMCell", ("torch.sigmoid(f) * c", "f * c")),
}
