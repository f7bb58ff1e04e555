"""The adversarial corpus: attacks earn nothing, broken notebooks crash nothing, correct code in any
style earns everything, and one student's submission never touches another's result.

All cases are students of one class, graded in a single run (2 workers, short time limits).
Each case states its expected outcome per graded function: "all" (every test of it passed), "none"
(no test of it passed), "some" (at least one test of it did not pass), "any" (no claim), or a status
that every test of it must have. A function that composes a broken one (two_layer_net uses
affine_forward) is graded with trusted stand-ins for the parts it composes (issue 13), so it keeps
its points.
"""
from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, load_results, run_grader

A = "ch01_gradients"
NB = "gradients_numpy"
SRC = json.load(open(REPO / "solutions" / A / f"{NB}.ipynb"))
ALL_FUNCS = ["numerical_gradient", "relative_error", "affine_forward", "affine_backward", "tanh_forward",
             "tanh_backward", "sigmoid_forward", "sigmoid_backward", "two_layer_net"]

# A correct affine_forward written in another style (einsum, no cache tuple).
AFFINE_OTHER_STYLE = '''
def affine_forward(x, W, b):
    out = np.einsum("nd,md->nm", x, W) + b[None, :]
    return out, {"x": x, "W": W}

def affine_backward(dout, cache):
    return (np.einsum("nm,md->nd", dout, cache["W"]), np.einsum("nm,nd->md", dout, cache["x"]),
            np.einsum("nm->m", dout))
'''
WRONG_AFFINE = "def affine_forward(x, W, b):\n    return x @ W.T, (x, W)\n"


def _solution(src: str) -> str:
    """Turn reference source into 'student' source (markers removed, code kept)."""
    return "\n".join(l for l in src.splitlines() if "### BEGIN SOLUTION" not in l and "### END SOLUTION" not in l)


def base():
    nb = copy.deepcopy(SRC)
    for c in nb["cells"]:
        c["source"] = _solution("".join(c["source"]))
    return nb


def cell(nb, gid):
    return next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid)


def set_src(nb, gid, src):
    cell(nb, gid)["source"] = src
    return nb


def append(nb, src, after=None):
    new = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
    if after is None:
        nb["cells"].append(new)
    else:
        i = nb["cells"].index(cell(nb, after))
        nb["cells"].insert(i + 1, new)
    return nb


def remove(nb, gid):
    nb["cells"].remove(cell(nb, gid))
    return nb


PORT = 0  # filled in by the fixture: a listener that must never see a connection


def cases():
    """student_id -> (writer(folder), expectations {function: 'all'|'none'|status})."""
    c = {}

    def nbcase(name, nb, expect, filename=f"{NB}.ipynb"):
        def write(folder):
            (folder / filename).write_text(json.dumps(nb) if not isinstance(nb, (str, bytes)) else nb)
        c[name] = (write, expect)

    ok = {f: "all" for f in ALL_FUNCS}
    nbcase("correct", base(), ok)
    nbcase("other_style", append(base(), AFFINE_OTHER_STYLE, after="affine_backward"), ok)
    # 1. monkeypatching numpy's comparisons does not help a wrong answer
    nbcase("patch_allclose", append(set_src(base(), "affine_forward", WRONG_AFFINE),
           "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
           "np.testing.assert_allclose = lambda *a, **k: None\nimport numpy\nnumpy.isclose = lambda a, b, **k: True"),
           {**ok, "affine_forward": "none", "affine_backward": "all"})
    # 2. an object equal to everything
    nbcase("eq_always_true", set_src(base(), "relative_error",
           "class Anything(float):\n    def __eq__(self, o): return True\n    def __lt__(self, o): return True\n"
           "    def __gt__(self, o): return True\n    def __le__(self, o): return True\n    def __ge__(self, o): return True\n"
           "    def __abs__(self): return self\n    def __sub__(self, o): return self\n    def __float__(self): return 0.123\n"
           "def relative_error(a, b):\n    return Anything(0.123)"),
           {**ok, "relative_error": "none"})
    nbcase("eq_array", set_src(base(), "tanh_forward",
           "class Arr(np.ndarray):\n    def __eq__(self, o): return np.ones(np.shape(o), bool)\n"
           "def tanh_forward(x):\n    out = np.zeros_like(x).view(Arr)\n    return out, np.tanh(x)"),
           {**ok, "tanh_forward": "none"})  # two_layer_net's tests stand in a trusted tanh_forward (issue 13)
    # 3. reading the expected value from the caller's frames
    nbcase("frame_inspection", set_src(base(), "tanh_forward",
           "import sys, gc\ndef tanh_forward(x):\n    f = sys._getframe(1)\n    while f is not None:\n"
           "        for k, v in f.f_locals.items():\n            if k in ('expected', 'ref') and getattr(v, 'shape', None) == x.shape:\n"
           "                return v, v\n        f = f.f_back\n"
           "    for o in gc.get_objects():\n        if isinstance(o, np.ndarray) and o.shape == x.shape and o is not x:\n"
           "            return o.copy(), np.tanh(x)\n    return np.zeros_like(x), np.tanh(x)"),
           {**ok, "tanh_forward": "none"})
    # 4-5. ending the process in a cell, or in a function
    nbcase("os_exit_cell", append(base(), "import os\nos._exit(0)", after="relative_error"), ok)
    nbcase("sys_exit_cell", append(base(), "import sys\nsys.exit(1)", after="setup"), ok)
    nbcase("exit_in_function", set_src(base(), "relative_error", "import os\ndef relative_error(a, b):\n    os._exit(0)"),
           {**ok, "relative_error": "error"})
    nbcase("kill_parent", set_src(base(), "relative_error",
           "import os, signal\ndef relative_error(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 0.0"),
           {**ok, "relative_error": "none"})
    # 6. warnings and stderr never cost points
    nbcase("warnings_stderr", append(set_src(base(), "tanh_backward",
           "import warnings, sys\ndef tanh_backward(dout, cache):\n    warnings.warn('careful!')\n"
           "    print('noise', file=sys.stderr)\n    return dout * (1 - cache ** 2)"),
           "import warnings, os\nwarnings.warn('a warning at import')\nos.write(2, b'C-level stderr')\n"), ok)
    # 7-8. infinite loops
    nbcase("loop_cell", append(base(), "while True:\n    pass", after="tanh_backward"), ok)
    nbcase("loop_function", set_src(base(), "sigmoid_backward", "def sigmoid_backward(dout, cache):\n    while True:\n        pass"),
           {**ok, "sigmoid_backward": "timeout"})
    nbcase("sleep_function", set_src(base(), "relative_error", "import time\ndef relative_error(a, b):\n    time.sleep(3600)"),
           {**ok, "relative_error": "timeout"})
    # 9. memory
    nbcase("memory_function", set_src(base(), "relative_error",
           "def relative_error(a, b):\n    big = np.ones((60_000, 60_000))\n    return float(big.sum())"),
           {**ok, "relative_error": "none"})
    nbcase("memory_cell", append(base(), "hog = [bytearray(10**8) for _ in range(400)]", after="setup"), ok)
    # 10. output floods
    nbcase("output_flood", append(base(), "for i in range(200000):\n    print('x' * 100)", after="setup"), ok)
    # 11-15. broken or missing notebooks
    nbcase("invalid_json", '{"cells": [', {f: "error" for f in ALL_FUNCS})
    nbcase("empty_file", "", {f: "error" for f in ALL_FUNCS})
    nb3 = base()
    nb3["nbformat"] = 3
    nbcase("nbformat3", nb3, {f: "error" for f in ALL_FUNCS})
    c["missing_notebook"] = (lambda folder: (folder / "notes.txt").write_text("forgot"), {f: "missing" for f in ALL_FUNCS})
    nbcase("renamed", base(), ok, filename="gradients_numpy (1).ipynb")
    # 16-19. read-only and test cells: deleted, edited, duplicated
    nbcase("deleted_setup", remove(base(), "setup"), ok)
    nbcase("edited_setup", set_src(base(), "setup", "import numpy as np\nnp.tanh = lambda x: x\nrng = None"), ok)
    dup = base()
    answer = copy.deepcopy(cell(dup, "tanh_forward"))
    answer["source"] = WRONG_AFFINE.replace("affine", "tanh")  # a second, wrong copy after the first
    dup["cells"].insert(dup["cells"].index(cell(dup, "tanh_forward")) + 1, answer)
    nbcase("duplicated_answer_cell", dup, {**ok})
    nbcase("edited_test_cell", set_src(base(), "test_affine", "assert False, 'I broke the visible test'"), ok)
    nbcase("syntax_error", set_src(base(), "affine_forward", "def affine_forward(x, W, b)\n    return x"),
           {**ok, "affine_forward": "missing", "affine_backward": "missing"})
    nbcase("not_callable", set_src(base(), "relative_error", "relative_error = 0.5"),
           {**ok, "relative_error": "error"})
    nbcase("nan_answer", set_src(base(), "tanh_forward", "def tanh_forward(x):\n    out = np.full_like(x, np.nan)\n    return out, np.tanh(x)"),
           {**ok, "tanh_forward": "none"})
    # 20-22. forging results, reading the instructor's files, the network
    nbcase("forge_results", append(base(),
           "import os, json\nfor d in ['.', '/tmp', os.path.expanduser('~')]:\n    try:\n"
           "        open(os.path.join(d, 'results.json'), 'w').write(json.dumps({'score': 999}))\n"
           "        open(os.path.join(d, 'grades.csv'), 'w').write('student_id,assignment,score,max_score\\nforge_results,ch01_gradients,999,1\\n')\n"
           "    except OSError:\n        pass\nprint('{\"status\": \"passed\", \"score\": 999}')", after="setup"), ok)
    nbcase("read_instructor_files", set_src(base(), "relative_error",
           f"def relative_error(a, b):\n    return len(open({str(REPO / 'autograder' / 'tests' / A / 'test_gradients_numpy.py')!r}).read())"),
           {**ok, "relative_error": "none"})
    nbcase("network", append(base(),
           "import socket\ntry:\n    socket.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'leak')\nexcept OSError:\n    pass",
           after="setup"), ok)
    # 23. processes left behind
    nbcase("spawn_processes", append(base(),
           "import subprocess\nprocs = [subprocess.Popen(['sleep', '4242']) for _ in range(20)]", after="setup"), ok)
    nbcase("fork_storm", append(base(),
           "import os, time\nfor _ in range(300):\n    try:\n        if os.fork() == 0:\n            time.sleep(60)\n"
           "            os._exit(0)\n    except OSError:\n        break", after="setup"), ok)
    # 24. an in-place mutation of the input loses the in-place test only
    nbcase("mutates_input", set_src(base(), "numerical_gradient",
           "def numerical_gradient(f, x, h=1e-5):\n    grad = np.zeros_like(x, dtype=float)\n"
           "    for ix in np.ndindex(x.shape):\n        old = x[ix]\n        x[ix] = old + h\n        fp = f(x)\n"
           "        x[ix] = old - h\n        fm = f(x)\n        x[ix] = old + 1e-3  # not restored\n"
           "        grad[ix] = (fp - fm) / (2 * h)\n    return grad"),
           {**ok, "numerical_gradient": "some"})
    # 25. huge exception messages and odd exception types
    nbcase("huge_exception", set_src(base(), "relative_error",
           "class Weird(BaseException):\n    pass\ndef relative_error(a, b):\n    raise Weird('x' * 10**7)"),
           {**ok, "relative_error": "error"})
    # 26. a returned value too large to send back
    nbcase("huge_return", set_src(base(), "relative_error",
           "def relative_error(a, b):\n    return np.zeros(300_000_000, dtype=np.uint8)"),
           {**ok, "relative_error": "none"})
    # 27. tampering with the grader's channel: forged frames on every inherited descriptor
    nbcase("forged_frames", append(base(),
           "import os, json, struct\n"
           "h = json.dumps({'ev': 'ready'}).encode()\nframe = struct.pack('<I', len(h)) + h + struct.pack('<I', 0)\n"
           "for fd in range(0, 64):\n    try:\n        os.write(fd, frame)\n    except OSError:\n        pass",
           after="two_layer_net"), {f: "any" for f in ALL_FUNCS})  # only hurts itself; see the score test
    # 28. builtins patched
    nbcase("patch_builtins", append(base(),
           "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0", after="two_layer_net"), ok)
    return c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    global PORT
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.2)
    PORT = srv.getsockname()[1]
    hits = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                hits.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    root = tmp_path_factory.mktemp("corpus")
    sub, out = root / "submitted", root / "results"
    all_cases = cases()
    for sid, (write, _) in all_cases.items():
        folder = sub / sid / A
        folder.mkdir(parents=True)
        write(folder)
    # the network case needs the port
    nbpath = sub / "network" / A / f"{NB}.ipynb"
    nbpath.write_text(nbpath.read_text().replace("PORT", str(PORT)))
    t0 = time.monotonic()
    r = run_grader(sub, out, "--assignment", A, "--workers", "2", "--cell-timeout", "4", "--call-timeout", "4",
                   "--notebook-timeout", "60", "--memory-mb", "1024")
    elapsed = time.monotonic() - t0
    stop.set()
    th.join()
    srv.close()
    return {"out": out, "rc": r.returncode, "stderr": r.stderr, "cases": all_cases, "hits": hits, "sub": sub,
            "seconds": elapsed}


def test_corpus_is_large_enough():
    assert len(cases()) >= 25


def test_grader_exits_zero(corpus):
    assert corpus["rc"] == 0, corpus["stderr"][-3000:]


NEEDS_SANDBOX = {"read_instructor_files", "network", "kill_parent", "spawn_processes", "forge_results", "fork_storm"}


@pytest.mark.parametrize("student", sorted(cases()))
def test_case_outcome(corpus, student):
    from autograder import sandbox

    if student in NEEDS_SANDBOX and not sandbox.bwrap_usable():
        pytest.skip("needs bubblewrap: without it grading runs with weak isolation (reported in results)")
    _, expect = corpus["cases"][student]
    r = load_results(corpus["out"], student, A)
    by_fn = {}
    for t in r["tests"]:
        by_fn.setdefault(t["function"], []).append(t)
    problems = []
    for fn, want in expect.items():
        ts = by_fn[fn]
        if want == "all":
            bad = [(t["name"], t["status"], t["message"][:200]) for t in ts if t["status"] != "passed"]
        elif want == "any":
            bad = []
        elif want == "some":
            bad = [] if any(t["status"] != "passed" for t in ts) else [(fn, "every test passed")]
        elif want == "none":
            bad = [(t["name"], "passed") for t in ts if t["status"] == "passed" or t["points"]]
        else:
            bad = [(t["name"], t["status"], t["message"][:200]) for t in ts if t["status"] != want]
        if bad:
            problems.append((fn, want, bad))
    assert not problems, problems
    # the torch notebook was not submitted: its tests are listed as missing, so max_score is the class's
    ref_max = load_results(corpus["out"], "correct", A)["max_score"]
    assert r["max_score"] == ref_max


def test_no_attack_scores_above_a_correct_submission(corpus):
    best = load_results(corpus["out"], "correct", A)["score"]
    for s in corpus["cases"]:
        assert load_results(corpus["out"], s, A)["score"] <= best, s


def test_messages_explain_broken_notebooks(corpus):
    msgs = {s: load_results(corpus["out"], s, A)["tests"][0]["message"] for s in ("invalid_json", "empty_file", "nbformat3")}
    assert "not valid JSON" in msgs["invalid_json"]
    assert "empty" in msgs["empty_file"]
    assert "nbformat" in msgs["nbformat3"]


def test_integrity_findings_are_reported(corpus):
    def notes(s):
        return " ".join(load_results(corpus["out"], s, A)["notebooks"][NB]["notes"])
    assert "setup" in notes("deleted_setup") and "missing" in notes("deleted_setup")
    assert "edited" in notes("edited_setup")
    assert "more than once" in notes("duplicated_answer_cell")
    assert "test_affine" in notes("edited_test_cell")
    assert "renamed" in notes("renamed")


def test_forged_files_do_not_change_grades(corpus):
    import csv

    rows = {(r[0], r[1]): r for r in csv.reader(open(corpus["out"] / "grades.csv"))}
    forged = rows[("forge_results", A)]
    correct = rows[("correct", A)]
    assert forged[2] == correct[2] and float(forged[2]) <= float(forged[3])
    assert not (corpus["sub"] / "forge_results" / A / "results.json").exists()


def test_no_network_from_the_sandbox(corpus):
    from autograder import sandbox

    if not sandbox.bwrap_usable():
        pytest.skip("needs bubblewrap")
    assert corpus["hits"] == [], "student code reached a server on the grader's loopback"


def test_no_processes_left_behind(corpus):
    from autograder import sandbox

    if not sandbox.bwrap_usable():
        pytest.skip("needs bubblewrap")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 4242" not in ps


def test_feedback_has_no_hidden_test_source(corpus):
    fb = (corpus["out"] / "correct" / A / "feedback.md").read_text()
    assert "Score:" in fb and "test_affine_forward_parity" in fb
    src = (REPO / "autograder" / "tests" / A / "test_gradients_numpy.py").read_text()
    assert "probe_grad" not in fb and "vjp(" not in fb and src[:200] not in fb
