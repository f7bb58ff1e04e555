"""Fair, precise partial credit: classic mistakes graded on purpose.

A mistake costs points on its own graded name only (composition: a sequence function is judged on the
student's own steps, issue 20), answers that are not answers (all zeros) earn nothing, and each message names
the function and what differs without blaming something else."""
import pytest

from conftest import run_grader
from tools.course import answer_cells, load_results_by_name, make_class, student_copy

ZERO_LSTM = '''
import numpy as np
def lstm_step_forward(x, h_prev, c_prev, params):
    return np.zeros_like(h_prev), np.zeros_like(c_prev), (x, h_prev, params)
def lstm_step_backward(dh_next, dc_next, cache):
    x, h, p = cache
    return np.zeros_like(x), np.zeros_like(h), np.zeros_like(h), {k: np.zeros_like(v) for k, v in p.items()}
def lstm_forward(x, h0, c0, params):
    return np.zeros(x.shape[:2] + h0.shape[1:], x.dtype), (x, h0, params)
def lstm_backward(dh, cache):
    x, h0, p = cache
    return np.zeros_like(x), np.zeros_like(h0), np.zeros_like(h0), {k: np.zeros_like(v) for k, v in p.items()}
'''
ZERO_GRU = '''
import numpy as np
def gru_step_forward(x, h_prev, params):
    return np.zeros_like(h_prev), (x, h_prev, params)
def gru_step_backward(dh_next, cache):
    x, h, p = cache
    return np.zeros_like(x), np.zeros_like(h), {k: np.zeros_like(v) for k, v in p.items()}
def gru_forward(x, h0, params):
    return np.zeros(x.shape[:2] + h0.shape[1:], x.dtype), (x, h0, params)
def gru_backward(dh, cache):
    x, h0, p = cache
    return np.zeros_like(x), np.zeros_like(h0), {k: np.zeros_like(v) for k, v in p.items()}
'''


def edit(chapter, nb, name, old, new):
    """The reference notebook with one answer cell changed (``old`` must be in it: fails loudly otherwise)."""
    d = student_copy(chapter, nb)
    src = d["cells"][answer_cells(d)[name]]["source"]
    assert old in src, f"{chapter}/{nb}: {name} no longer contains {old!r}"
    return student_copy(chapter, nb, {name: src.replace(old, new)})


def zeros(chapter, nb, source):
    d = student_copy(chapter, nb)
    names = answer_cells(d)
    return student_copy(chapter, nb, {n: (source if i == 0 else "pass") for i, n in enumerate(names)})


CASES = {
    "tanh_prime": ("ch02_rnn", "rnn_numpy", lambda: edit(
        "ch02_rnn", "rnn_numpy", "rnn_step_backward", "(1 - h_next * h_next)", "(1 - h_prev * h_prev)")),
    "bptt_not_carried": ("ch02_rnn", "rnn_numpy", lambda: edit(
        "ch02_rnn", "rnn_numpy", "rnn_backward", "rnn_step_backward(dh[:, t] + dh_prev, caches[t])",
        "rnn_step_backward(dh[:, t], caches[t])")),
    "step_bias_wrong": ("ch02_rnn", "rnn_numpy", lambda: edit(
        "ch02_rnn", "rnn_numpy", "rnn_step_backward", '"bias_hh": db.copy()', '"bias_hh": 2 * db')),
    "lstm_gate_order": ("ch04_lstm", "lstm_numpy", lambda: _gate_order()),
    "bias_not_summed": ("ch02_rnn", "rnn_numpy", lambda: edit(
        "ch02_rnn", "rnn_numpy", "rnn_step_backward", "db = da.sum(axis=0)", "db = da")),
    "lstm_bias_not_summed": ("ch04_lstm", "lstm_numpy", lambda: edit(
        "ch04_lstm", "lstm_numpy", "lstm_step_backward", "db = da.sum(axis=0)", "db = da")),
    "tanh_unsquared": ("ch02_rnn", "rnn_numpy", lambda: edit(
        "ch02_rnn", "rnn_numpy", "rnn_step_backward", "(1 - h_next * h_next)", "(1 - h_next)")),
    "gru_swapped": ("ch05_gru", "gru_numpy", lambda: edit(
        "ch05_gru", "gru_numpy", "gru_step_forward", "h_next = (1 - z) * n + z * h_prev", "h_next = z * n + (1 - z) * h_prev")),
    "zeros_lstm": ("ch04_lstm", "lstm_numpy", lambda: zeros("ch04_lstm", "lstm_numpy", ZERO_LSTM)),
    "zeros_gru": ("ch05_gru", "gru_numpy", lambda: zeros("ch05_gru", "gru_numpy", ZERO_GRU)),
    "affine_db": ("ch01_gradients", "gradients_torch", lambda: edit(
        "ch01_gradients", "gradients_torch", "AffineFunction", "dout.sum(0)  #", "dout  #")),
    "clip_float64": ("ch03_vanishing", "vanishing_numpy", lambda: edit(
        "ch03_vanishing", "vanishing_numpy", "clip_grad_norm", "{k: g * coef for", "{k: np.float64(coef) * g.astype(np.float64) for")),
    "uses_lstmcell": ("ch04_lstm", "lstm_torch", lambda: edit(
        "ch04_lstm", "lstm_torch", "LSTMCell", "        h, c = hx\n",
        "        h, c = hx\n        return tuple(torch.nn.LSTMCell(self.input_size, self.hidden_size).to(x)(x, (h, c)))\n")),
    "comment_mentions_torch": ("ch04_lstm", "lstm_numpy", lambda: edit(
        "ch04_lstm", "lstm_numpy", "lstm_step_forward", "    H = h_prev.shape[1]", "    # as torch.nn.LSTMCell does\n    H = h_prev.shape[1]")),
    # cache repair (testkit/repair.py): a wrong forward's cache is repaired before the backward runs
    "attention_scale": ("ch08_attention", "attention_numpy", lambda: edit(
        "ch08_attention", "attention_numpy", "attention_forward", "scale = 1.0 / d ** 0.5", "scale = d ** 0.5")),
    "attention_scale_and_dv": ("ch08_attention", "attention_numpy", lambda: _edits(
        "ch08_attention", "attention_numpy", {"attention_forward": ("scale = 1.0 / d ** 0.5", "scale = d ** 0.5"),
                                              "attention_backward": ("dv = alpha.transpose(0, 2, 1) @ dout",
                                                                     "dv = 2 * alpha.transpose(0, 2, 1) @ dout")})),
    "bi_not_reversed": ("ch06_bidirectional", "bidirectional_numpy", lambda: edit(
        "ch06_bidirectional", "bidirectional_numpy", "bidirectional_forward", "x_rev = x[:, ::-1].copy()",
        "x_rev = x.copy()")),
    "ctc_end": ("ch10_ctc", "ctc_numpy", lambda: edit(
        "ch10_ctc", "ctc_numpy", "ctc_forward", "end_blank = last[rows, 2 * U]", "end_blank = last[rows, 2]")),
}


def _edits(chapter, nb, changes):
    d = student_copy(chapter, nb)
    cells = answer_cells(d)
    new = {}
    for name, (old, repl) in changes.items():
        src = d["cells"][cells[name]]["source"]
        assert old in src, f"{chapter}/{nb}: {name} no longer contains {old!r}"
        new[name] = src.replace(old, repl)
    return student_copy(chapter, nb, new)


def _gate_order():
    """Gates taken in CS231n's order i, f, o, g instead of PyTorch's i, f, g, o."""
    d = edit("ch04_lstm", "lstm_numpy", "lstm_step_forward", "g = np.tanh(a[:, 2 * H:3 * H])", "g = np.tanh(a[:, 3 * H:])")
    src = d["cells"][answer_cells(d)["lstm_step_forward"]]["source"]
    old = "o = sigmoid(a[:, 3 * H:])"
    assert old in src
    return student_copy("ch04_lstm", "lstm_numpy", {"lstm_step_forward": src.replace(old, "o = sigmoid(a[:, 2 * H:3 * H])")})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("messages")
    sub = make_class(root / "submitted", {sid: {ch: {nb: build()}} for sid, (ch, nb, build) in CASES.items()})
    r = run_grader(sub, root / "out", "--workers", "2")
    assert r.returncode == 0, r.stderr
    return lambda sid: load_results_by_name(root / "out", sid, CASES[sid][0])


def lost(tests, function):
    return sum(t["max_points"] - t["points"] for t in tests.values() if t["function"] == function)


def test_step_backward_mistake_stays_on_the_step(graded):
    t = graded("tanh_prime")
    assert lost(t, "rnn_step_backward") > 0
    assert lost(t, "rnn_forward") == 0 and lost(t, "rnn_step_forward") == 0
    assert lost(t, "rnn_backward") == 0  # judged on the student's own steps (composition)
    msg = t["test_rnn_step_backward_unmodified"]["message"]
    assert t["test_rnn_step_backward_unmodified"]["status"] == "failed" and "cache" not in msg, msg
    assert "rnn_step_backward dx" in msg
    parity = t["test_rnn_step_backward_parity"]["message"]
    assert "matches a local derivative of tanh written as 1 - h_prev**2" in parity, parity


def test_hints_only_for_the_mistake_they_name(graded):
    t = graded("step_bias_wrong")
    parity = t["test_rnn_step_backward_parity"]["message"]
    assert "grads['bias_hh']" in parity and "tanh" not in parity, parity
    m = graded("bptt_not_carried")["test_rnn_backward_parity"]["message"]
    assert "is not added to dh[:, t]" in m and "tanh" not in m, m


@pytest.mark.parametrize("sid,step,seq", [("lstm_gate_order", "lstm_step_forward", "lstm"),
                                          ("gru_swapped", "gru_step_forward", "gru")])
def test_step_forward_mistake_stays_off_the_sequence_functions(graded, sid, step, seq):
    t = graded(sid)
    assert lost(t, step) == sum(x["max_points"] for x in t.values() if x["function"] == step)
    assert lost(t, f"{seq}_forward") == 0
    assert lost(t, f"{seq}_backward") == 0  # judged on the student's own steps (composition)
    parity = t[f"test_{step}_parity"]["message"]
    assert step in parity and "Your output matches" in parity, parity


@pytest.mark.parametrize("sid,step,seq", [("bias_not_summed", "rnn_step_backward", "rnn"),
                                          ("lstm_bias_not_summed", "lstm_step_backward", "lstm")])
def test_bias_not_summed_is_named_and_stays_on_the_step(graded, sid, step, seq):
    t = graded(sid)
    assert lost(t, step) > 0 and lost(t, f"{seq}_forward") == 0 and lost(t, f"{seq}_backward") == 0
    parity = t[f"test_{step}_parity"]["message"]
    assert "not summed over the batch" in parity, parity


def test_tanh_derivative_on_the_wrong_quantity_is_named(graded):
    t = graded("tanh_unsquared")
    assert lost(t, "rnn_step_backward") > 0 and lost(t, "rnn_backward") == 0 and lost(t, "rnn_forward") == 0
    parity = t["test_rnn_step_backward_parity"]["message"]
    assert "1 - h_next (the output, not squared)" in parity, parity
    # the whole chain's own graded name (issue 20, item 3) shows it, not a loss on a function that is right
    assert lost(t, "rnn_numpy:together") == 1 and "against torch.nn.RNN" in t["test_rnn_numpy_together"]["message"]


@pytest.mark.parametrize("sid", ["zeros_lstm", "zeros_gru"])
def test_all_zeros_earns_nothing(graded, sid):
    t = graded(sid)
    earned = {n: x["points"] for n, x in t.items() if x["points"]}
    assert not earned, f"an answer of zeros earned points: {earned}"


def test_affine_backward_must_sum_db_itself(graded):
    t = graded("affine_db")
    m = t["test_AffineFunction_backward"]["message"]
    assert t["test_AffineFunction_backward"]["status"] == "failed" and "db of shape" in m, m
    assert lost(t, "TanhFunction") == 0 and lost(t, "SigmoidFunction") == 0


def test_float32_clip_label_reads_well(graded):
    m = graded("clip_float64")["test_clip_grad_norm_float32_unmodified"]["message"]
    assert "clip_grad_norm clipped_grads['" in m and "(float32 gradients keep their dtype)" in m, m
    assert ")['" not in m, m


def test_from_scratch_message_names_what_was_used(graded):
    t = graded("uses_lstmcell")
    m = t["test_LSTMCell_parity"]["message"]
    assert t["test_LSTMCell_parity"]["points"] == 0 and "torch.nn.LSTMCell" in m, m
    assert lost(t, "LSTM") == 0


def test_a_comment_is_not_a_use(graded):
    t = {n: x for n, x in graded("comment_mentions_torch").items() if "was not submitted" not in x["message"]}
    assert t and all(x["status"] == "passed" for x in t.values()), {n: x["message"] for n, x in t.items() if x["status"] != "passed"}


@pytest.mark.parametrize("sid,forward,backward", [("attention_scale", "attention_forward", "attention_backward"),
                                                  ("ctc_end", "ctc_forward", "ctc_backward"),
                                                  ("bi_not_reversed", "bidirectional_forward", "bidirectional_backward")])
def test_a_wrong_forward_costs_nothing_on_a_right_backward(graded, sid, forward, backward):
    """The forward's cache is repaired in the student's process (testkit/repair.py) when the forward is
    wrong on the test's inputs: the right backward keeps its points."""
    t = graded(sid)
    assert lost(t, forward) > 0 and lost(t, backward) == 0, {n: x["message"] for n, x in t.items() if x["points"] < x["max_points"]}


def test_a_wrong_backward_on_a_repaired_cache_still_fails_and_says_so(graded):
    t = graded("attention_scale_and_dv")
    assert lost(t, "attention_forward") > 0 and lost(t, "attention_backward") > 0
    m = t["test_attention_backward_parity"]["message"]
    # the scale's mistake is one edit away: the cache came from a corrected copy of the forward (never
    # saying which edit: testkit/corrected.py); a forward no edit corrects is repaired value by value
    assert "dv" in m and "laid out by a corrected copy of your attention_forward" in m, m
    assert "_grader_variant_" not in m and "scale" not in m.split("[")[-1], m
