# ch01 gradients_numpy as the reference writes it: two_layer_net calls the student's layers; a mistake
# in a layer costs points on that layer only (two_layer_net is judged against the composition of the
# student's own layers), one in two_layer_net on two_layer_net only.
STYLE = {}

MUTANTS = {
    "tanh' written 1 - out": ("tanh_backward", ("dout * (1 - out ** 2)", "dout * (1 - out)")),
    "bias gradient not summed over the batch": ("affine_backward", ("db = dout.sum(axis=0)", "db = dout[0]")),
    "affine forward without its bias": ("affine_forward", ("out = x @ W.T + b", "out = x @ W.T")),
    "sigmoid for x < 0 mirrored": ("sigmoid_forward", ("z / (1 + z)", "1 / (1 + z)")),
    "loss gradient not divided by N": ("two_layer_net", ("dscores = diff / N", "dscores = diff")),
}

COUPLED = {
    ("affine_forward", "affine_backward"): "a layer's backward runs on its own forward's cache",
}
