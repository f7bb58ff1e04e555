"""A torch module judged over a one-edit correction of the student's own building block (issue 20;
``autograder/testkit/corrected_modules.py``, the op ``bind`` of ``autograder/sandbox/variants.py``):
a correct LSTM over a cell that raises keeps its points, a wrong one still loses them, a constant cell
under a constant LSTM earns nothing, the binding never outlives its test, and correct code or a
released stub never asks for it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO, load_results, run_grader
from tools.course import answer_cells, make_class, student_copy

CH, NB = "ch04_lstm", "lstm_torch"
CHUNK = ("gates.chunk(4, dim=-1)", "gates.chunk(5, dim=-1)")  # raises for most H (5 chunks, 4 names)
DROP_T = ("h @ weight_hh.T + bias_hh", "h @ weight_hh + bias_hh")  # raises whenever N != H or H != 4H
PRODUCT_LOST = ("h @ weight_hh.T + bias_hh", "h + bias_hh")  # a product lost from the sum: put back
X_DROPPED = ("gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh", "gates = h @ weight_hh.T + bias_hh")
STATE_NOT_CARRIED = ("h, c = lstm_cell(layer_in[:, t], h, c, *w)\n                    hs[t] = h",
                     "hs[t], c = lstm_cell(layer_in[:, t], h, c, *w)")
ZERO_CELL = ("return h_next, c_next", "return h_next * 0, c_next * 0")
ZERO_LSTM = ("return layer_in, (torch.stack(h_n), torch.stack(c_n))",
             "return layer_in * 0, (torch.stack(h_n) * 0, torch.stack(c_n) * 0)")


# ------------------------------------------------------------------ the student's side, in-process
def _child_with(src: str):
    from autograder.sandbox.child import _Child

    c = _Child(None)
    c.set_up = True
    c.handle_request({"op": "run_cell", "i": 0, "src": src}, [])
    return c


SRC = '''
class Base:
    def __init__(self, n):
        self.n = n
class Cell(Base):
    def __init__(self, n):
        super().__init__(n + 1)
    def forward(self, x):
        return helper(x) * self.n
def helper(x):
    return x - 1
'''


def test_bind_puts_one_edit_in_place_of_the_function_it_edits_and_restore_undoes_it():
    c = _child_with(SRC)
    cls, helper, init = c.ns["Cell"], c.ns["helper"], vars(c.ns["Cell"])["__init__"]
    n = c.handle_request({"op": "variant", "name": "Cell.forward", "k": None}, [])
    seen = set()
    for k in range(n):
        c.handle_request({"op": "bind", "name": "Cell.forward", "k": k}, [])
        try:
            seen.add(cls(5).forward(10))
        except TypeError:  # an edit that raises (* -> @ on ints)
            pass
    assert 66 in seen  # helper's x - 1 turned into x + 1, bound in place of helper: Cell sees it
    c.handle_request({"op": "bind", "name": "Cell.forward", "k": None}, [])
    assert c.ns["helper"] is helper and vars(cls)["forward"].__name__ == "forward" and cls(5).forward(10) == 54
    # a method that calls super(): varied in its class's closure (6 -> 5 or 7 through n + 1)
    got = set()
    for k in range(c.handle_request({"op": "variant", "name": "Cell.__init__", "k": None}, [])):
        c.handle_request({"op": "bind", "name": "Cell.__init__", "k": k}, [])
        got.add(cls(5).n)
    assert {5, 7} <= got
    # the next test's first request (it carries the seed) undoes a binding whatever the trusted side did
    c.handle_request({"op": "exists", "names": ["Cell"]}, [])  # a request of the same test: still bound
    assert vars(cls)["__init__"] is not init
    c.handle_request({"op": "exists", "names": ["Cell"], "seed": 7}, [])
    assert vars(cls)["__init__"] is init and cls(5).n == 6
    for bad in ("Cell.missing", "Base.x.y", "np", "nothing"):
        assert c.handle_request({"op": "variant", "name": bad, "k": None}, []) == 0
        with pytest.raises((LookupError, IndexError)):
            c.handle_request({"op": "bind", "name": bad, "k": 0}, [])
    assert c.ns["helper"] is helper and vars(cls)["__init__"] is init


class _Sub:
    """corrected_modules' requests answered in-process: 'variants' are values the block takes."""

    def __init__(self, n, good):
        self._nb, self.n, self.good, self.bound, self.sent = object(), n, good, None, []

    def variant(self, name, k=None):
        self.sent.append(("variant", name, k))
        return self.n

    def _req(self, msg, args, kwargs, what):
        self.sent.append((msg["op"], msg["name"], msg["k"]))
        self.bound = msg["k"]


def test_the_trusted_side_always_unbinds_and_only_a_passing_variant_is_used():
    from autograder.testkit import corrected_modules as cm
    from autograder.testkit.checks import Fail

    def block_ok(sub):
        if sub.bound != sub.good:
            raise Fail("wrong")

    first = Fail("the module's own failure")
    ran = []
    sub = _Sub(5, 3)
    cm.judge_corrected(sub, first, "k", ["Cell.forward"], "Cell", lambda: block_ok(sub), lambda note: ran.append(note))
    assert ran and "corrected copy of your Cell" in ran[0] and sub.bound is None  # judged bound, then unbound
    assert all(isinstance(k, (int, type(None))) for _, _, k in sub.sent)  # names and numbers only
    # a check that fails with the binding in place: its failure, and still unbound afterwards
    sub = _Sub(5, 3)

    def fails(note):
        raise Fail("wrong loop" + note)

    with pytest.raises(Fail, match="wrong loop"):
        cm.judge_corrected(sub, first, "k", ["Cell.forward"], "Cell", lambda: block_ok(sub), fails)
    assert sub.bound is None
    # no variant passes: the first failure as it was; a released stub or a right block: no search at all
    sub = _Sub(5, None)
    with pytest.raises(Fail, match="own failure"):
        cm.judge_corrected(sub, first, "k", ["Cell.forward"], "Cell", lambda: block_ok(sub), ran.append)
    for err, sub in ((Fail("your code raised NotImplementedError: x"), _Sub(5, 3)), (first, _Sub(5, None))):
        with pytest.raises(Fail):
            cm.judge_corrected(sub, err, "k", ["Cell.forward"], "Cell", lambda: None if err is first else 1 / 0,
                               ran.append)
        assert not any(op == "variant" for op, _, _ in sub.sent)


def test_a_constant_cell_composes_to_nothing(monkeypatch):
    """No marks without work: ``composed_run`` gives no expected values over a cell whose outputs are
    the same for every row and step of random inputs (a zero cell), and does over one that varies."""
    import torch

    from autograder.testkit import modules, remote

    class Remote:
        def __init__(self, a):
            self.array, self.shape = a, a.shape

    class Sub:
        def __init__(self, cell):
            self.cell = cell

        def new(self, *a):
            return object()

        def method(self, *a):
            return None

        def invoke(self, cell, x, hc):
            return self.cell(x, hc)

    monkeypatch.setattr(modules, "RemoteTensor", Remote)
    monkeypatch.setattr(remote, "remote_tensors", lambda sub, *ts: [Remote(t.array) for t in ts])
    ref = modules.ref_module("lstm", "seq", 4, 3)
    rng = np.random.default_rng(0)
    x, hx = rng.standard_normal((2, 5, 4)), [rng.standard_normal((1, 2, 3)) for _ in range(2)]
    zero = Remote(np.zeros((2, 3)))
    assert modules.composed_run(Sub(lambda x, hc: (zero, zero)), "lstm", ref, x, hx, torch.float64) is None
    ones = Remote(np.ones((2, 3)))
    assert modules.composed_run(Sub(lambda x, hc: (ones, ones)), "lstm", ref, x, hx, torch.float64) is None
    moving = Sub(lambda x, hc: (Remote(np.tanh(hc[0].array + 0.1)), Remote(hc[1].array)))
    assert modules.composed_run(moving, "lstm", ref, x, hx, torch.float64) is not None
    # a wrong cell that keeps a zero state at zero (c_next = sigmoid(f) * c) is not constant: on random
    # states its rows differ, so a zero initial state's composition (all zeros) still counts
    keeps_c = Sub(lambda x, hc: (Remote(np.tanh(hc[1].array)), Remote(0.5 * hc[1].array)))
    zeros = [np.zeros((1, 2, 3)) for _ in range(2)]
    assert modules.composed_run(keeps_c, "lstm", ref, x, zeros, torch.float64) is not None
    assert modules.composed_run(Sub(lambda x, hc: (zero, zero)), "lstm", ref, x, zeros, torch.float64) is None


# -------------------------------------------------------------------------------- graded
def _nb(*edits):
    nb = student_copy(CH, NB)
    cells = answer_cells(nb)
    for old, new in edits:
        i = next(i for i in cells.values() if old in nb["cells"][i]["source"])
        nb["cells"][i]["source"] = nb["cells"][i]["source"].replace(old, new)
    return nb


def _grade(tmp_path, name, students):
    import os

    sub, out = tmp_path / name / "submitted", tmp_path / name / "out"
    make_class(sub, {sid: {CH: nb if isinstance(nb, dict) else nb} for sid, nb in students.items()})
    env = dict(os.environ, AUTOGRADER_AUDIT=str(tmp_path / name / "requests.jsonl"))
    r = run_grader(sub, out, "--assignment", CH, "--workers", "1", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    reqs = [json.loads(l) for l in (tmp_path / name / "requests.jsonl").read_text().splitlines()]
    return out, reqs


def _points(out, sid):
    doc = load_results(out, sid, CH)
    by = {}
    for t in doc["tests"]:
        by[t["function"]] = by.get(t["function"], 0) + t["points"]
    return by, {t["name"]: t for t in doc["tests"]}


def _normalised(out, sid):
    folder = out / sid / CH
    return tuple((folder / f).read_text().replace(sid, "<student>") for f in ("results.json", "feedback.md"))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("modvar")
    base, base_reqs = _grade(tmp, "base", {"z~honest": {NB: _nb()}, "stub": REPO / "exercises" / CH})
    students = {"a~chunk": _nb(CHUNK), "b~dropT": _nb(DROP_T), "c~loop": _nb(DROP_T, STATE_NOT_CARRIED),
                "d~zero": _nb(ZERO_CELL, ZERO_LSTM), "e~xdropped": _nb(X_DROPPED), "f~product": _nb(PRODUCT_LOST), "z~honest": _nb()}
    out, reqs = _grade(tmp, "mutants", {s: {NB: nb} for s, nb in students.items()})
    return base, base_reqs, out, reqs


def test_correct_code_and_the_stub_never_ask_for_a_corrected_copy(graded):
    base, base_reqs, _, _ = graded
    ops = [r["op"] for r in base_reqs]
    assert "call" in ops and "variant" not in ops and "bind" not in ops
    by, _ = _points(base, "z~honest")
    assert by["LSTMCell"] == 8 and by["LSTM"] == 8
    assert sum(_points(base, "stub")[0].values()) == 0


def test_a_correct_lstm_over_a_broken_cell_keeps_its_points_and_a_wrong_one_loses_them(graded):
    _, _, out, reqs = graded
    for sid in ("a~chunk", "b~dropT", "e~xdropped", "f~product"):  # raising cells (one edit fixes), an ignored x
        by, tests = _points(out, sid)
        assert by["LSTM"] == 8, (sid, [(n, t["message"]) for n, t in tests.items() if t["status"] != "passed"])
        assert by["LSTMCell"] < 8, sid  # the cell's own mistake costs the cell
    by, tests = _points(out, "c~loop")  # the state not carried, over the same raising cell: still wrong
    lost = [t for t in tests.values() if t["function"] == "LSTM" and t["status"] != "passed"]
    assert by["LSTM"] <= 1 and lost and all("corrected copy of your LSTMCell" in t["message"] for t in lost[:1]), lost
    # the edit is never named, and the op carried a name and a number
    for sid in ("a~chunk", "b~dropT", "c~loop"):
        for t in _points(out, sid)[1].values():
            assert "_grader_variant_" not in t.get("message", "") and "<variant>" not in t.get("message", "")
    bind = [r for r in reqs if r["op"] == "bind"]
    assert bind and all(set(r["keys"]) <= {"op", "id", "name", "k", "args", "kwargs", "seed"} for r in bind)


def test_a_constant_cell_under_a_constant_lstm_earns_nothing_on_lstm(graded):
    _, _, out, _ = graded
    by, tests = _points(out, "d~zero")
    assert by["LSTM"] == 1  # its state_dict and initialisation only: none of the parity tests
    assert all(t["status"] != "passed" for n, t in tests.items() if t["function"] == "LSTM" and "state_dict" not in n)


def test_the_binding_does_not_outlive_its_test(graded):
    """The whole chain (graded after the LSTM's tests, torch.nn alone) still meets the broken cell; and
    the honest student graded after all of them on the same worker is byte-identical to a run alone."""
    base, _, out, _ = graded
    tests = _points(out, "b~dropT")[1]
    chain = tests["test_lstm_torch_together"]
    assert chain["status"] != "passed" and "weight_hh + bias_hh" in chain["message"], chain
    assert _normalised(out, "z~honest") == _normalised(base, "z~honest")
