"""Cache repair's last resort (autograder/testkit/corrected.py, autograder/sandbox/variants.py): a backward
is judged on a cache laid out by a one-edit correction of the student's OWN forward when that forward
raises everywhere. The op takes a name and a number, never source; a variant is bound to no name of the
notebook; a notebook that lies in the variant path earns nothing its backward does not compute; the
edit is never named in a message."""
from __future__ import annotations

import json

import pytest

from conftest import load_results, run_grader
from tools.course import make_class, student_copy

CH, NB = "ch04_lstm", "lstm_numpy"
# The .T dropped on a non-square weight: the forward raises on every input (D != 4H), and only
# a one-edit correction of it can lay its cache out.
BUG = ('x @ params["weight_ih"].T + params["bias_ih"]', 'x @ params["weight_ih"] + params["bias_ih"]')


# ------------------------------------------------------------------ the student's side, in-process
def _child_with(src: str):
    from autograder.sandbox.child import _Child

    c = _Child(None)
    c.set_up = True
    c.handle_request({"op": "run_cell", "i": 0, "src": src}, [])
    return c


def test_a_variant_is_the_notebooks_own_cell_edited_once_and_bound_to_no_name():
    from autograder.sandbox.codec import Kept

    c = _child_with("import numpy as np\ndef f(x, W, b=1.0):\n    return x @ W + b\n")
    before = dict(c.ns)
    n = c.handle_request({"op": "variant", "name": "f", "k": None, "src": "def f(x, W, b): return 0"}, [])
    # the value negated, + -> -, @ -> *, .T on either side of @, then a product lost from the sum put back
    # (b @ x.T, b @ W.T); never the signature's default
    assert n == 7
    import numpy as np

    kept = c.handle_request({"op": "variant", "name": "f", "k": 1, "src": "ignored"}, [])
    assert isinstance(kept, Kept) and kept.v.__name__.startswith("_grader_variant_")
    assert float(kept.v(np.ones((1, 2)), np.ones((2, 1)))[0, 0]) == 1.0  # x @ W - b: the edit, on their code
    assert c.ns.keys() == before.keys() and c.ns["f"] is before["f"]  # the notebook's names untouched
    with pytest.raises(IndexError):
        c.handle_request({"op": "variant", "name": "f", "k": 7}, [])


def test_a_helper_in_the_cell_is_varied_in_a_copy_of_the_notebooks_globals():
    c = _child_with("def h(x):\n    return x - 1\ndef f(x):\n    return 2 * h(x)\n")
    h = c.ns["h"]
    n = c.handle_request({"op": "variant", "name": "f", "k": None}, [])
    got = []
    for k in range(n):
        try:
            got.append(c.handle_request({"op": "variant", "name": "f", "k": k}, []).v(10))
        except TypeError:  # 2 @ h(x): an edit that raises
            pass
    assert 22 in got  # h's x - 1 turned into x + 1, seen by f's copy only
    assert c.ns["h"] is h and c.ns["f"](10) == 18 and h(10) == 9


def test_nothing_to_vary_is_zero_variants():
    c = _child_with("import numpy as np\ndef g(n):\n    while n > 0:\n        n -= 1\n    return n\n"
                    "def outer():\n    y = 1\n    def inner(x):\n        return x + y\n    return inner\n"
                    "h = outer()\nclass K:\n    pass\n")
    for name in ("g", "h", "K", "np", "missing"):  # a while loop (an edit may never end), a closure, ...
        assert c.handle_request({"op": "variant", "name": name, "k": None}, []) == 0, name


def test_the_catalogue_is_capped_and_deterministic():
    import ast

    from autograder.sandbox.variants import MAX_CANDIDATES, edits

    body = "\n".join(f"    a{i} = x + {i} * y - z @ w.T" for i in range(60))
    fdef = ast.parse(f"def f(x, y, z, w):\n{body}\n    return a0\n").body[0]
    got = edits(fdef)
    assert len(got) == MAX_CANDIDATES and got == edits(fdef)


# -------------------------------------------------------------- graded: a correct backward's points
def _grade(tmp_path, students: dict, audit=False):
    sub, out = tmp_path / "submitted", tmp_path / "out"
    make_class(sub, {sid: {CH: {NB: nb}} for sid, nb in students.items()})
    env = None
    if audit:
        import os

        env = dict(os.environ, AUTOGRADER_AUDIT=str(tmp_path / "requests.jsonl"))
    r = run_grader(sub, out, "--assignment", CH, "--workers", "1", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return {sid: load_results(out, sid, CH) for sid in students}


def _step_backward(doc):
    return [t for t in doc["tests"] if t["function"] == "lstm_step_backward"]


def _nb(forward_bug=True, backward=None):
    from tools.course import answer_cells

    nb = student_copy(CH, NB)
    cells = answer_cells(nb)
    if forward_bug:
        i = cells["lstm_step_forward"]
        assert BUG[0] in nb["cells"][i]["source"]
        nb["cells"][i]["source"] = nb["cells"][i]["source"].replace(*BUG)
    if backward:  # a cell of its own at the end of the notebook
        nb["cells"].append({"cell_type": "code", "metadata": {}, "source": backward, "outputs": [],
                            "execution_count": None})
    return nb


WRONG_BACKWARD = '''
_good_backward = lstm_step_backward
def lstm_step_backward(dh_next, dc_next, cache):  # wrong: the cell's gradient is dropped
    dx, dh_prev, dc_prev, grads = _good_backward(dh_next, dc_next, cache)
    return dx, dh_prev, 0 * dc_prev, grads
'''
# A notebook that lies in the variant path: every variant it compiles is its own pick (a correct forward).
LYING = '''
_b = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
_real_compile = _b["compile"]
def _lying_compile(*a, **k):
    return _real_compile("def _v(x, h_prev, c_prev, params):\\n    return _correct(x, h_prev, c_prev, params)\\n",
                         "<variant>", "exec")
_b["compile"] = _lying_compile
def _correct(x, h_prev, c_prev, params):
    H = h_prev.shape[1]
    a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T + params["bias_hh"]
    i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
    g = np.tanh(a[:, 2 * H:3 * H])
    c = f * c_prev + i * g
    return o * np.tanh(c), c, (x, h_prev, c_prev, params, i, f, g, o, np.tanh(c))
''' + WRONG_BACKWARD


def test_a_correct_backward_keeps_its_points_and_a_lying_notebook_earns_nothing(tmp_path):
    docs = _grade(tmp_path, {"fixed": _nb(), "wrong": _nb(backward=WRONG_BACKWARD), "lying": _nb(backward=LYING),
                             "honest": _nb(forward_bug=False)}, audit=True)
    fixed, wrong, lying, honest = (_step_backward(docs[s]) for s in ("fixed", "wrong", "lying", "honest"))
    # the .T dropped costs the forward its points, not the correct backward's
    assert all(t["status"] == "passed" for t in fixed), [(t["name"], t["message"]) for t in fixed]
    assert all(t["status"] == "passed" for t in honest)
    # a wrong backward on the corrected cache is judged against the reference's numbers: it loses them
    lost = [t for t in wrong if t["status"] != "passed"]
    assert lost and all("dc_prev" in t["message"] and "corrected copy" in t["message"] for t in lost), lost
    # one that lies in the variant path (its own compile) earns nothing: not even what "wrong" kept
    assert sum(t["points"] for t in lying) == 0, [(t["name"], t["message"]) for t in lying]
    # the edit is never named: no message of the corrected notebooks quotes a variant or its edit
    for doc in (docs["fixed"], docs["wrong"], docs["lying"]):
        for t in doc["tests"]:
            m = t.get("message", "")
            assert "_grader_variant_" not in m and "<variant>" not in m and "weight_ih\"].T" not in m, m
    # the op carried a name and a number: never source text
    reqs = [json.loads(l) for l in (tmp_path / "requests.jsonl").read_text().splitlines()]
    variant = [r for r in reqs if r["op"] == "variant"]
    assert variant and all(set(r["keys"]) <= {"op", "id", "name", "k", "args", "kwargs", "seed"} for r in variant)
    assert all(r["from"] == "plan" for r in reqs if r["op"] == "run_cell")


# ------------------------------------------------------------------ the trusted side, with a fake process
class _Proc:
    """The requests of corrected.py answered in-process: ``fns`` are the 'variants' of a forward."""

    def __init__(self, fns):
        self.fns, self.kept, self._nb, self.asked = fns, {}, object(), []

    def _keep(self, v):
        from autograder.core.values import Remote

        h = len(self.kept) + 1000
        self.kept[h] = v
        return Remote(h, type(v).__name__)

    def variant(self, name, k=None):
        self.asked.append((name, k))
        return len(self.fns) if k is None else self._keep(self.fns[k])

    def invoke_keep(self, fn, keep, *args):
        out = list(self.kept[fn.handle](*args))
        out[keep[0]] = self._keep(out[keep[0]])
        return tuple(out)

    def leaves(self, r):
        from autograder.sandbox.leaves import leaves
        return leaves(self.kept[r.handle])

    def put_leaves(self, r, paths, values):
        from autograder.sandbox.leaves import put
        for p, v in zip(paths, values):
            self.kept[r.handle] = put(self.kept[r.handle], list(p), v)

    def release(self, *rs):
        pass


def test_a_variant_only_names_leaves_and_must_equal_the_reference_everywhere():
    import numpy as np

    from autograder.testkit import corrected

    rng = np.random.default_rng(3)
    W = rng.standard_normal((4, 3))

    def refs_of(x):
        pre = x @ W.T
        return {"x": x, "pre": pre, "out": np.tanh(pre)}

    def right(x):
        return np.tanh(x @ W.T), (x, x @ W.T)

    def lying(x):  # correct outputs, and a cache of made-up values in a layout of its choosing
        return np.tanh(x @ W.T), (x, 7 * x @ W.T)

    def only_here(x):  # equal on the test's inputs only (its outputs are made up elsewhere)
        return (np.tanh(x @ W.T) if x.shape[0] == 2 else np.zeros((x.shape[0], 4))), (x, x @ W.T)

    x = rng.standard_normal((2, 3))
    probes = [(rng.standard_normal((5, 3)),), (rng.standard_normal((1, 3)),)]
    wrong = lambda x: (x @ W.T, (x,))  # noqa: E731 - wrong outputs: never used
    for fns, want in (([wrong, only_here, right], 2), ([wrong, lying], 1), ([wrong], None)):
        sub = _Proc(fns)
        cache = corrected.corrected_cache(sub, "f", 1, 2, (x,), refs_of, {0: "out"}, probes)
        if want is None:
            assert cache is None
            continue
        got = sub.kept[cache.handle]
        # whatever the variant's cache held, the values in it are the reference's (the lie only named them)
        assert np.allclose(got[0], x) and np.allclose(got[1], x @ W.T), got
        assert all(isinstance(k, (int, type(None))) for _, k in sub.asked)  # a name and a number only
        assert corrected.corrected_cache(sub, "f", 1, 2, (x,), refs_of, {0: "out"}, probes) is not None  # remembered
    # an edit that compensates (equal outputs over a cache that is not) loses to the one that undoes the
    # mistake, even when it comes first
    def compensating(x):
        return np.tanh(x @ W.T), (x, -(x @ W.T))

    sub = _Proc([compensating, right])
    cache = corrected.corrected_cache(sub, "f", 1, 2, (x,), refs_of, {0: "out"}, probes)
    assert np.allclose(sub.kept[cache.handle][1], x @ W.T)
    assert "corrected copy" in corrected.note("f") and "_grader_variant_" not in corrected.note("f")


def test_never_searched_for_correct_code_nor_a_released_stub(tmp_path):
    """The search runs only after a forward failed, and never on NotImplementedError (the stub)."""
    from conftest import REPO

    sub, out = tmp_path / "submitted", tmp_path / "out"
    make_class(sub, {"honest": {CH: {NB: student_copy(CH, NB)}}, "stub": {CH: REPO / "exercises" / CH}})
    import os

    env = dict(os.environ, AUTOGRADER_AUDIT=str(tmp_path / "requests.jsonl"))
    r = run_grader(sub, out, "--assignment", CH, "--workers", "1", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ops = [json.loads(l)["op"] for l in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert "call" in ops and "variant" not in ops
