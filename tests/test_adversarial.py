"""The adversarial corpus: attacks earn nothing, broken notebooks crash nothing, correct code in any
style earns everything, and one student's submission never touches another's result.

All cases are students of one class, graded in a single run (1 worker, short time limits), each
attacker followed by its honest twin in the same worker and zygote; the attacks that try to outlive
their notebook (PERSISTENT_CASES) are graded again with 2 local workers and on Dask.
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
import shutil
import signal
import socket
import subprocess
import sys
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
FIND_CHANNEL = ("import gc, os, json, struct\n"
                "def send(fd, ev):\n    h = json.dumps(ev).encode()\n"
                "    os.write(fd, struct.pack('<I', len(h)) + h + struct.pack('<I', 0))\n")


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

    # ---- attacks on the grader's channel and on the students graded after this one (issue 10)
    # 29. forged frames on the student's own channel: a reply with the live request id (read from the
    #     child's memory), a reply for another id, control events, garbage: it only hurts itself
    nbcase("forged_reply_live_id", append(base(), FIND_CHANNEL +
           "for o in gc.get_objects():\n"
           "    if type(o).__name__ == '_Child':\n"
           "        for ev in ({'re': o.current_id, 'ok': True, 'value': {'t': 'none'}}, {'ev': 'exited'},\n"
           "                   {'ev': 'ready'}, {'re': 12345, 'ok': True}):\n"
           "            send(o.sock.fileno(), ev)\n", after="two_layer_net"), {f: "any" for f in ALL_FUNCS})
    # round 2: during a test whose calls may reach the trusted side (a stand-in or callback), ask it for a
    #     ~16 MB reply and never read the socket: the trusted side's write gives up at the call's deadline
    nbcase("stuck_socket", set_src(base(), "two_layer_net",
           "import gc, sys, time\n"
           "def two_layer_net(x, y, params):\n"
           "    for o in gc.get_objects():\n"
           "        if type(o).__name__ == '_Child':\n"
           "            blobs = []\n"
           "            big = np.zeros((2048, 1024))\n"
           "            enc = sys.modules['sandbox.codec'].encode  # the child's own codec\n"
           "            tree = {'args': enc((big, np.zeros((1024, 1024)), np.zeros(1024)), blobs, o.handles),\n"
           "                    'kwargs': enc({}, blobs, o.handles)}\n"
           "            o.send({'cb': 'affine_forward', 're': o.current_id, **tree}, blobs)\n"
           "            time.sleep(3600)\n"
           "    time.sleep(3600)\n"), {**ok, "two_layer_net": "timeout"})
    nbcase("reply_for_other_id", set_src(base(), "relative_error", FIND_CHANNEL +
           "def relative_error(a, b):\n"
           "    for o in gc.get_objects():\n"
           "        if type(o).__name__ == '_Child':\n"
           "            send(o.sock.fileno(), {'re': (o.current_id or 0) + 1, 'ok': True, 'value': {'t': 'float', 'v': 0.0}})\n"
           "    return 0.0"), {**ok, "relative_error": "none"})
    nbcase("deep_reply_frame", set_src(base(), "relative_error", FIND_CHANNEL +
           "def relative_error(a, b):\n"
           "    for o in gc.get_objects():\n"
           "        if type(o).__name__ == '_Child':\n"
           "            h = b'{\"re\": %d, \"ok\": true, \"value\": ' % o.current_id + b'[' * 200000 + b']' * 200000 + b'}'\n"
           "            os.write(o.sock.fileno(), struct.pack('<I', len(h)) + h + struct.pack('<I', 0))\n"
           "    return 0.0"), {**ok, "relative_error": "none"})
    nbcase("huge_length_prefix", set_src(base(), "relative_error", FIND_CHANNEL +
           "def relative_error(a, b):\n"
           "    for o in gc.get_objects():\n"
           "        if type(o).__name__ == '_Child':\n"
           "            os.write(o.sock.fileno(), struct.pack('<I', 3000000000) + b'{')\n"
           "    return 0.0"), {**ok, "relative_error": "none"})
    nbcase("deep_value", set_src(base(), "relative_error",
           "def relative_error(a, b):\n    v = 0.0\n    for _ in range(100000):\n        v = [v]\n    return v"),
           {**ok, "relative_error": "none"})
    nbcase("every_fd_garbage", append(base(),
           "import os\nfor fd in range(0, 1024):\n    try:\n        os.write(fd, b'\\x05\\x00\\x00\\x00{}{}{' * 100)\n"
           "    except OSError:\n        pass", after="two_layer_net"), {f: "any" for f in ALL_FUNCS})
    # 30. processes that try to outlive the notebook and reach the next student
    nbcase("detached_daemon", append(base(),
           "import os, time, signal\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
           "        os.closerange(0, 1024)\n        end = time.time() + 90\n        while time.time() < end:\n"
           "            for p in ('/tmp/numpy.py', '/tmp/rnnlib.py', '/tmp/sitecustomize.py', '/dev/shm/x'):\n"
           "                try:\n                    open(p, 'w').write('raise SystemExit')\n"
           "                except OSError:\n                    pass\n"
           "            try:\n                os.kill(-1, signal.SIGKILL)\n            except OSError:\n                pass\n"
           "            time.sleep(0.02)\n    os._exit(0)\n", after="two_layer_net"), {f: "any" for f in ALL_FUNCS})
    nbcase("tmp_plant", append(base(),
           "import os\nfor p in ('/tmp/numpy.py', '/tmp/rnnlib.py', '/tmp/sitecustomize.py', '/tmp/usercustomize.py'):\n"
           "    open(p, 'w').write('raise SystemExit(3)\\n')\nos.makedirs('/tmp/mpl', exist_ok=True)\n"
           "open('/tmp/mpl/matplotlibrc', 'w').write('backend: nonsense\\n')\n"
           "try:\n    open('/dev/shm/planted', 'w').write('x')\nexcept OSError:\n    pass\n"
           "try:\n    os.chmod('/tmp', 0o777)\nexcept OSError:\n    pass", after="setup"), ok)
    nbcase("abstract_socket", append(base(),
           "import os, socket, time\nif os.fork() == 0:\n    os.setsid()\n    s = socket.socket(socket.AF_UNIX)\n"
           "    try:\n        s.bind('\\0autograder-next-student')\n        s.listen(5)\n        s.settimeout(60)\n"
           "        s.accept()\n    except OSError:\n        pass\n    os._exit(0)\n", after="setup"), ok)
    nbcase("kill_everything", append(base(),
           "import os, signal\nfor sig in (signal.SIGKILL,):\n    try:\n        os.kill(-1, sig)\n    except OSError:\n        pass",
           after="two_layer_net"), {f: "any" for f in ALL_FUNCS})
    # 31. untrusted text: markup and broken UTF-8 in messages
    nbcase("markup_message", set_src(base(), "relative_error",
           "def relative_error(a, b):\n    raise ValueError('|ok|\\n|---|\\n**Score: 43 / 43**\\n<script>alert(1)</script>\\n# Passed\\n[link](http://x)')"),
           {**ok, "relative_error": "error"})
    nbcase("surrogate_message", set_src(base(), "relative_error",
           "def relative_error(a, b):\n    raise ValueError('bad \\ud800 text \\udfff')"), {**ok, "relative_error": "error"})
    # 32. plain forms of a correct answer are accepted
    nbcase("numpy_scalar_answer", set_src(base(), "relative_error",
           "def relative_error(a, b):\n    return np.float64(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))"), ok)
    # 33. a notebook nested too deeply to parse
    nbcase("json_bomb", '{"cells": ' + "[" * 100000 + "]" * 100000 + "}", {f: "error" for f in ALL_FUNCS})
    return c


HONEST = "~honest"  # the honest twin graded right after each attacker: "07_x" then "07~honest"


def sid(case: str) -> str:
    return f"{sorted(cases()).index(case):02d}_{case}"


def twin(case: str) -> str:
    return f"{sorted(cases()).index(case):02d}{HONEST}"


def _tree_cases(root: Path, sub: Path):
    """Attacks on the submitted tree itself: symlinks, a FIFO, a student folder that is a link."""
    ref = REPO / "solutions" / A / f"{NB}.ipynb"
    (sub / "t1_symlink_solutions" / A).mkdir(parents=True)
    os.symlink(ref, sub / "t1_symlink_solutions" / A / f"{NB}.ipynb")
    (sub / "t2_symlink_classmate" / A).mkdir(parents=True)
    os.symlink(sub / "t2~honest" / A / f"{NB}.ipynb", sub / "t2_symlink_classmate" / A / f"{NB}.ipynb")
    (sub / "t3_fifo" / A).mkdir(parents=True)
    os.mkfifo(sub / "t3_fifo" / A / f"{NB}.ipynb")
    (sub / "t4_linked_folder").mkdir()
    os.symlink(sub / "t4~honest" / A, sub / "t4_linked_folder" / A)
    os.symlink(sub / "t5~honest", sub / "t5_linked_student")
    (sub / ".t6_hidden" / A).mkdir(parents=True)
    for t in ("t1", "t2", "t3", "t4", "t5"):
        (sub / f"{t}~honest" / A).mkdir(parents=True)
        (sub / f"{t}~honest" / A / f"{NB}.ipynb").write_text(json.dumps(base()))


TREE_CASES = ("t1_symlink_solutions", "t2_symlink_classmate", "t3_fifo", "t4_linked_folder")


def build_class(root: Path, with_attackers: bool = True) -> Path:
    """The class: each attacker followed by its honest twin (the same correct notebook). Without the
    attackers: the one twin that every twin of a run beside attackers must equal (student id aside)."""
    sub = root / "submitted"
    for case, (write, _) in cases().items():
        if not with_attackers and case != "correct":
            continue
        if with_attackers:
            folder = sub / sid(case) / A
            folder.mkdir(parents=True)
            write(folder)
        folder = sub / twin(case) / A
        folder.mkdir(parents=True)
        (folder / f"{NB}.ipynb").write_text(json.dumps(base()))
    if with_attackers:
        nbpath = sub / sid("network") / A / f"{NB}.ipynb"
        nbpath.write_text(nbpath.read_text().replace("PORT", str(PORT)))
        _tree_cases(root, sub)
    return sub


def _listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.2)
    hits, stop = [], threading.Event()

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
    return srv, hits, stop, th


LIMITS = ("--assignment", A, "--cell-timeout", "4", "--call-timeout", "4", "--notebook-timeout", "60",
          "--memory-mb", "1024")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The whole corpus with ONE worker (outcomes are read from this run): every honest twin is graded
    right after its attacker, in the same worker process, by the same zygote; and a baseline of the
    honest twins alone."""
    global PORT
    srv, hits, stop, th = _listener()
    PORT = srv.getsockname()[1]
    root = tmp_path_factory.mktemp("corpus")
    sub, out = build_class(root), root / "results"
    r = run_grader(sub, out, "--workers", "1", *LIMITS)
    stop.set()
    th.join()
    srv.close()
    base_root = tmp_path_factory.mktemp("baseline")
    base_sub, base_out = build_class(base_root, with_attackers=False), base_root / "results"
    rb = run_grader(base_sub, base_out, *LIMITS)
    assert rb.returncode == 0, rb.stderr
    return {"out": out, "rc": r.returncode, "stderr": r.stderr, "cases": cases(), "hits": hits, "sub": sub,
            "baseline": base_out}


def load(corpus, case):
    return load_results(corpus["out"], sid(case), A)


def _normalised(out: Path, student: str) -> tuple[str, str]:
    folder = out / student / A
    return tuple((folder / f).read_text().replace(student, "<student>").replace(student.replace("~", "\\~"), "<student>")
                 for f in ("results.json", "feedback.md"))


def assert_honest_untouched(out: Path, baseline: Path, students):
    """Each honest twin's results.json and feedback.md are byte for byte those of the run without
    any attacker (the student id aside)."""
    ref = _normalised(baseline, twin("correct"))
    bad = [s for s in students if _normalised(out, s) != ref]
    assert not bad, f"honest students whose results changed beside an attacker: {bad}"


def test_corpus_is_large_enough():
    assert len(cases()) >= 40


def test_grader_exits_zero(corpus):
    assert corpus["rc"] == 0, corpus["stderr"][-3000:]


NEEDS_SANDBOX = {"read_instructor_files", "network", "kill_parent", "spawn_processes", "forge_results", "fork_storm"}


@pytest.mark.parametrize("student", sorted(cases()))
def test_case_outcome(corpus, student):
    from autograder.core import launch

    if student in NEEDS_SANDBOX and not launch.bwrap_usable():
        pytest.skip("needs bubblewrap: without it grading runs with weak isolation (reported in results)")
    _, expect = corpus["cases"][student]
    r = load(corpus, student)
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
    assert r["max_score"] == load(corpus, "correct")["max_score"]


def test_no_attack_scores_above_a_correct_submission(corpus):
    best = load(corpus, "correct")["score"]
    for s in corpus["cases"]:
        assert load(corpus, s)["score"] <= best, s


def test_honest_twin_graded_after_each_attacker_on_the_same_worker_is_untouched(corpus):
    assert_honest_untouched(corpus["out"], corpus["baseline"], [twin(c) for c in cases()])
    assert_honest_untouched(corpus["out"], corpus["baseline"], [f"{t}~honest" for t in ("t1", "t2", "t3", "t4", "t5")])


# The attacks that try to outlive their notebook or reach the next one (processes, sockets, files, the
# wire, memory): graded again with 2 local workers and on Dask, each followed by its honest twin.
PERSISTENT_CASES = ("correct", "stuck_socket", "detached_daemon", "tmp_plant", "abstract_socket", "kill_everything",
                    "spawn_processes", "fork_storm", "forged_reply_live_id", "every_fd_garbage", "deep_reply_frame",
                    "huge_return", "memory_cell", "os_exit_cell")


def persistent_class(root: Path) -> Path:
    """PERSISTENT_CASES, each attacker followed by its honest twin."""
    sub = root / "submitted"
    for case in PERSISTENT_CASES:
        write, _ = cases()[case]
        for student, writer in ((sid(case), write),
                                (twin(case), lambda f: (f / f"{NB}.ipynb").write_text(json.dumps(base())))):
            folder = sub / student / A
            folder.mkdir(parents=True)
            writer(folder)
    return sub


def test_honest_twins_are_untouched_with_two_workers(corpus, tmp_path):
    """Two local workers share the class: the honest twins of the persistent attacks are untouched
    (the outcomes of every attack are read from the one-worker run)."""
    sub, out = persistent_class(tmp_path), tmp_path / "results"
    r = run_grader(sub, out, "--workers", "2", *LIMITS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert_honest_untouched(out, corpus["baseline"], [twin(c) for c in PERSISTENT_CASES])


def test_dask_with_separate_scheduler_and_worker_processes(corpus, tmp_path):
    """A scheduler and one single-threaded worker, each its own process: the honest twins after the
    attackers on that worker, and a second run later on the same worker, are untouched."""
    pytest.importorskip("distributed")
    root = tmp_path
    sub = persistent_class(root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # as the README starts them: from the repository, with it on the path (the engine and hidden tests)
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False", PYTHONPATH=str(REPO))
    bindir = Path(sys.executable).parent
    sched = subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    worker = subprocess.Popen([str(bindir / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                               "--nworkers", "1", "--no-dashboard", "--memory-limit", "0"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(3)
        out = root / "results_first"
        r = run_grader(sub, out, "--scheduler", f"tcp://127.0.0.1:{port}", *LIMITS)
        assert r.returncode == 0, r.stderr[-3000:]
        assert_honest_untouched(out, corpus["baseline"], [twin(c) for c in PERSISTENT_CASES])
        # a second run later reuses the worker (and its zygote) that served every attacker: its students
        # (the honest twins alone) are untouched too
        for case in PERSISTENT_CASES:
            shutil.rmtree(sub / sid(case))
        out = root / "results_second"
        r = run_grader(sub, out, "--scheduler", f"tcp://127.0.0.1:{port}", *LIMITS)
        assert r.returncode == 0, r.stderr[-3000:]
        assert_honest_untouched(out, corpus["baseline"], [twin(c) for c in PERSISTENT_CASES])
    finally:
        for p in (worker, sched):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_messages_explain_broken_notebooks(corpus):
    msgs = {s: load(corpus, s)["tests"][0]["message"] for s in ("invalid_json", "empty_file", "nbformat3", "json_bomb")}
    assert "not valid JSON" in msgs["invalid_json"]
    assert "empty" in msgs["empty_file"]
    assert "nbformat" in msgs["nbformat3"]
    assert "nested too deeply" in msgs["json_bomb"]


def test_integrity_findings_are_reported(corpus):
    def notes(s):
        return " ".join(load(corpus, s)["notebooks"][NB]["notes"])
    assert "setup" in notes("deleted_setup") and "missing" in notes("deleted_setup")
    assert "edited" in notes("edited_setup")
    assert "more than once" in notes("duplicated_answer_cell")
    assert "test_affine" in notes("edited_test_cell")
    assert "renamed" in notes("renamed")


def test_forged_files_do_not_change_grades(corpus):
    import csv

    rows = {(r[0], r[1]): r for r in csv.reader(open(corpus["out"] / "grades.csv"))}
    forged = rows[(sid("forge_results"), A)]
    correct = rows[(sid("correct"), A)]
    assert forged[2] == correct[2] and float(forged[2]) <= float(forged[3])
    assert not (corpus["sub"] / sid("forge_results") / A / "results.json").exists()
    assert ("forge_results", A) not in rows


def test_no_network_from_the_sandbox(corpus):
    from autograder.core import launch

    if not launch.bwrap_usable():
        pytest.skip("needs bubblewrap")
    assert corpus["hits"] == [], "student code reached a server on the grader's loopback"


def test_no_processes_left_behind(corpus):
    from autograder.core import launch

    if not launch.bwrap_usable():
        pytest.skip("needs bubblewrap")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 4242" not in ps


def test_feedback_has_no_hidden_test_source(corpus):
    fb = (corpus["out"] / sid("correct") / A / "feedback.md").read_text()
    assert "Score:" in fb and "`test_affine_forward_parity`" in fb
    src = (REPO / "autograder" / "tests" / A / "test_gradients_numpy.py").read_text()
    assert "probe_grad" not in fb and "vjp(" not in fb and src[:200] not in fb
    for case in cases():
        if case == "read_instructor_files":
            continue  # its own source names the path it tried to open
        text = (corpus["out"] / sid(case) / A / "feedback.md").read_text()
        assert "Traceback" not in text and "autograder/" not in text and "/tests/" not in text, case


def test_markup_in_messages_is_escaped(corpus):
    fb = (corpus["out"] / sid("markup_message") / A / "feedback.md").read_text()
    assert "<script>" not in fb and "&lt;script&gt;" in fb
    assert sum(1 for l in fb.splitlines() if "Score:" in l and l.startswith("**")) == 1
    assert not any(l.startswith(("# Passed", "|---|\\n")) for l in fb.splitlines())
    assert "](http" not in fb.replace("\\](http", "")
    # every line of the test table still has its five cells: nothing broke out of a cell
    rows = [l for l in fb.split("## Tests", 1)[1].splitlines() if l.startswith("| `")]
    assert all(l.replace("\\|", "").count("|") == 6 for l in rows)


def test_broken_unicode_is_kept_valid(corpus):
    raw = (corpus["out"] / sid("surrogate_message") / A / "results.json").read_bytes()
    raw.decode("utf-8")  # strict: valid UTF-8
    doc = json.loads(raw)
    msg = next(t["message"] for t in doc["tests"] if t["function"] == "relative_error")
    assert "bad" in msg and "text" in msg
    (corpus["out"] / sid("surrogate_message") / A / "feedback.md").read_bytes().decode("utf-8")


def test_submitted_tree_is_read_safely(corpus):
    out = corpus["out"]
    for student in ("t1_symlink_solutions", "t2_symlink_classmate", "t3_fifo"):
        doc = load_results(out, student, A)
        numpy_tests = [t for t in doc["tests"] if t["function"] in ALL_FUNCS]
        assert all(t["status"] == "error" and t["points"] == 0 for t in numpy_tests), student
        assert any(w in numpy_tests[0]["message"] for w in ("symbolic link", "FIFO")), numpy_tests[0]["message"]
    doc = load_results(out, "t4_linked_folder", A)
    assert doc["score"] == 0
    assert not (out / "t5_linked_student").exists()
    assert "t5_linked_student" in corpus["stderr"] and "not graded" in corpus["stderr"]
    assert ".t6_hidden" in corpus["stderr"]


# ------------------------------------------------------------------ beyond chapter 1's notebook
def _torch_nb(chapter, name, edit):
    nb = json.load(open(REPO / "solutions" / chapter / f"{name}.ipynb"))
    for c in nb["cells"]:
        c["source"] = _solution("".join(c["source"]))
    edit(nb)
    return nb


def _alias(nb):
    append(nb, "import torch.nn as N\nimport importlib\nHelper = getattr(N, 'RNNCell')\n"
               "Other = importlib.import_module('torch.nn').RNN\n", after="setup")
    cell(nb, "RNNCell")["source"] = cell(nb, "RNNCell")["source"].replace(
        "class RNNCell(nn.Module):", "class RNNCell(nn.Module):\n    _helper = Helper")


def _comments(nb):
    c = cell(nb, "RNNCell")
    c["source"] = "# Not torch.nn.RNNCell, nor nn.RNN: from scratch.\nNOTE = 'torch.nn.RNN'\n" + c["source"]


def _lookup(nb):
    cell(nb, "predict_digits")["source"] = (
        "def predict_digits(model, images):\n"
        "    from sklearn.datasets import load_digits\n"
        "    d = load_digits()\n"
        "    table = {(d.images[i] / 16.0).astype(np.float32).tobytes(): int(d.target[i]) for i in range(len(d.target))}\n"
        "    return np.array([table.get(np.asarray(x, dtype=np.float32).tobytes(), 0) for x in images], dtype=np.int64)\n")
    cell(nb, "train_digits_classifier")["source"] = (
        "def train_digits_classifier(images, labels, seed=0):\n    torch.manual_seed(seed)\n    return DigitsGRU()\n")


BEYOND = {"alias": ("ch02_rnn", "rnn_torch", _alias), "comments": ("ch02_rnn", "rnn_torch", _comments),
          "lookup": ("ch07_applications", "applications_torch", _lookup)}


@pytest.fixture(scope="module")
def beyond(tmp_path_factory):
    """The attacks on other chapters' torch notebooks, graded in one run (a grader start costs about
    4 CPU-s): {student: its results folder}."""
    root = tmp_path_factory.mktemp("beyond")
    sub = root / "submitted"
    for student, (ch, name, edit) in BEYOND.items():
        (sub / student / ch).mkdir(parents=True)
        (sub / student / ch / f"{name}.ipynb").write_text(json.dumps(_torch_nb(ch, name, edit)))
    r = run_grader(sub, root / "out")
    assert r.returncode == 0, r.stderr
    return root / "out"


def test_forbidden_module_under_another_name_and_comments(beyond):
    """An added cell reaches torch.nn.RNNCell under an alias: RNNCell earns nothing, with a message
    naming the thing and the place; a comment or a string that mentions it costs nothing."""
    ch = "ch02_rnn"
    doc = load_results(beyond, "alias", ch)
    cell_tests = [t for t in doc["tests"] if t["function"] == "RNNCell"]
    assert cell_tests and all(t["status"] == "failed" and not t["points"] for t in cell_tests)
    assert "torch.nn.RNNCell" in cell_tests[0]["message"] and "cell" in cell_tests[0]["message"]
    rnn_tests = [t for t in doc["tests"] if t["function"] == "RNN"]
    assert all(not t["points"] for t in rnn_tests) and "torch.nn.RNN" in rnn_tests[0]["message"]
    clean = load_results(beyond, "comments", ch)
    torch_tests = [t for t in clean["tests"] if t["function"] in ("RNNCell", "RNN")]
    assert all(t["status"] == "passed" for t in torch_tests), [t["message"] for t in torch_tests if t["message"]]


def test_held_out_set_never_enters_the_sandbox(beyond):
    """A "model" that looks each held-out digit up in the data set gets nothing: the sandbox's copy
    of scikit-learn's digits holds the training rows only."""
    t = next(t for t in load_results(beyond, "lookup", "ch07_applications")["tests"]
             if t["name"] == "test_train_digits_classifier_heldout_accuracy")
    assert t["status"] == "failed" and "accuracy" in t["message"], t


@pytest.fixture(scope="module")
def zygote():
    from autograder.core.engine import Limits, Zygote

    z = Zygote(Limits(cell_seconds=4, call_seconds=4, notebook_seconds=30))
    yield z
    z.close()


def _nb(z, cells, seconds=60):
    from autograder.core.engine import Budget, Limits, Notebook

    nb = Notebook(z, list(enumerate(cells)), Limits(cell_seconds=4, call_seconds=4, notebook_seconds=30),
                  Budget(seconds))
    nb.ensure()
    return nb


def test_each_child_starts_from_nothing(zygote):
    """Nothing of one notebook survives into the next: /tmp, /dev/shm, processes, uid, sys.path."""
    from autograder.core import api, launch

    if not launch.bwrap_usable():
        pytest.skip("needs bubblewrap")
    probe = ("import os, sys, subprocess\n"
             "def look():\n"
             "    shm = sorted(os.listdir('/dev/shm')) if os.path.isdir('/dev/shm') else []\n"
             "    procs = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
             "    return [sorted(os.listdir('/tmp')), shm, procs, os.getuid(), '' in sys.path, '/tmp' in sys.path]\n"
             "def plant():\n"
             "    open('/tmp/planted.py', 'w').write('x')\n"
             "    open('/dev/shm/planted', 'w').write('x')\n"
             "    subprocess.Popen(['sleep', '299.25'], start_new_session=True)\n"
             "    return look()\n")
    first = _nb(zygote, [probe])
    seen = api.Submission(first, 4).call("plant")
    assert "planted.py" in seen[0] and len(seen[2]) >= 2
    first.close()
    second = _nb(zygote, [probe])
    tmp, shm, procs, uid, empty_on_path, tmp_on_path = api.Submission(second, 4).call("look")
    second.close()
    kept = {Path(r).parts[2] for r in launch._python_roots() if r.startswith("/tmp/")}  # a course under /tmp
    assert set(tmp) == kept and shm == [] and procs == ["1"], (tmp, shm, procs)
    assert not empty_on_path and not tmp_on_path
    if zygote.ns_mode == "root":
        assert uid != seen[3] and uid != 0
    deadline = time.time() + 5  # a killed child's namespace is reaped asynchronously, within moments
    while time.time() < deadline and "sleep 299.25" in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                                    text=True).stdout:
        time.sleep(0.1)
    assert "sleep 299.25" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_sandbox_sees_only_the_public_part_of_held_out_data(zygote):
    from autograder.core import api, launch

    if not launch.bwrap_usable():
        pytest.skip("needs bubblewrap")
    nb = _nb(zygote, ["def n():\n    from sklearn.datasets import load_digits\n    return len(load_digits().target)\n"])
    try:
        assert api.Submission(nb, 30).call("n") == 1400
    finally:
        nb.close()
    from sklearn.datasets import load_digits

    assert len(load_digits().target) == 1797  # the trusted side reads the whole set


def test_every_exception_of_a_test_counts_against_that_test_alone(zygote, tmp_path):
    """Whatever a hidden test raises while reading the student's reply is that test's error, with a
    message; a fault before any reply is the grader's: recorded, never blamed on the student."""
    from autograder.core import api, notebook, runner
    from autograder.core.engine import Budget, Limits

    def reading(exc):
        def fn(sub, rng):
            sub.call("f")
            raise exc
        return fn

    excs = [AttributeError("x"), RecursionError("deep"), OverflowError("big"), MemoryError(), KeyError("k"),
            UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"), ZeroDivisionError("z"), TypeError("t")]
    tests = [api.GradedTest(f"test_raises_{type(e).__name__}", "f", 1.0, reading(e), "m") for e in excs]

    def grader_bug(sub, rng):
        raise RuntimeError("a bug in the hidden test, before any call")

    def fine(sub, rng):
        if sub.call("f") != 1.0:
            raise api.Fail("wrong")

    tests += [api.GradedTest("test_grader_bug", "f", 1.0, grader_bug, "m"), api.GradedTest("test_fine", "f", 1.0, fine, "m")]
    nbt = runner.NotebookTests("x", tests, {})
    plan = notebook.plan({"cells": []}, {"cells": [{"cell_type": "code", "source": "def f():\n    return 1.0\n",
                                                     "metadata": {}}]})
    faults, report = [], {"notes": [], "cell_errors": []}
    res = runner.run_tests(zygote, nbt, plan, {}, Limits(cell_seconds=4, call_seconds=4), Budget(60), report, faults)
    by = {r["name"]: r for r in res}
    for e in excs:
        r = by[f"test_raises_{type(e).__name__}"]
        assert r["status"] == "error" and "your code returned a value this test could not use" in r["message"], r
        json.dumps(r).encode("utf-8")
    bug = by["test_grader_bug"]
    assert bug["status"] == "error" and bug.get("grader_fault") and "not your doing" in bug["message"]
    assert "RuntimeError" not in bug["message"] and "hidden test" not in bug["message"]
    assert len(faults) == 1 and "a bug in the hidden test" in faults[0].trace
    assert by["test_fine"]["status"] == "passed"


def test_a_submission_has_one_time_budget(tmp_path):
    """No cell is over its own limit, but together they are over the submission's budget: every test
    that could not run in time is a timeout that says so, and the run does not wait for the rest."""
    slow = base()
    for _ in range(8):
        append(slow, "import time\ntime.sleep(2)", after="setup")
    sub = tmp_path / "submitted"
    (sub / "slow" / A).mkdir(parents=True)
    (sub / "slow" / A / f"{NB}.ipynb").write_text(json.dumps(slow))
    out = tmp_path / "out"
    t0 = time.monotonic()
    r = run_grader(sub, out, "--assignment", A, "--cell-timeout", "5", "--submission-timeout", "8")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    doc = load_results(out, "slow", A)
    numpy_tests = [t for t in doc["tests"] if t["function"] in ALL_FUNCS]
    assert numpy_tests and all(t["status"] == "timeout" for t in numpy_tests), [t["status"] for t in numpy_tests]
    assert any("budget" in t["message"] for t in numpy_tests)
    assert took < 60, took


def test_forbidden_names_are_unusable_in_the_sandbox(zygote):
    """The second line behind the static check: a student cell calling a blocked name is refused,
    the release's own cells may still use it."""
    from autograder.core import api
    from autograder.core.engine import Budget, Limits, Notebook

    cells = [(-1, "import torch\nref = torch.nn.RNNCell(2, 3)\n"),
             (0, "def make():\n    return torch.nn.RNNCell(2, 3)\n"),
             (1, "ok = isinstance(ref, torch.nn.RNNCell)\n")]
    nb = Notebook(zygote, cells, Limits(cell_seconds=10, call_seconds=10), Budget(60), block=["torch.nn.RNNCell"])
    run = nb.ensure()
    try:
        assert all(c.ok for c in run.cells), run.cells
        with pytest.raises(Exception) as e:
            api.Submission(nb, 10).call("make")
        assert "torch.nn.RNNCell is not allowed" in str(e.value)
    finally:
        nb.close()


def test_results_cache_key_covers_the_graders_own_code(tmp_path, monkeypatch):
    """Any change to a file of the grader's package changes the key (checked on a copy of the package:
    a probe written into the repository would change the key of every run going on beside this test)."""
    import shutil

    from autograder.core import runner

    copy = tmp_path / "autograder"
    shutil.copytree(runner.PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runner, "PKG", copy)
    before = runner.tests_fingerprint(A)
    probe = copy / "core" / "_fingerprint_probe.py"
    probe.write_text("# a change to the grader's code\n")
    assert runner.tests_fingerprint(A) != before
    probe.unlink()
    assert runner.tests_fingerprint(A) == before


def test_a_course_under_tmp_stays_visible_in_each_childs_fresh_tmp(tmp_path, monkeypatch):
    """CI may clone the course under /tmp: its interpreter's files must stay visible (read-only) in each
    child, over the child's private /tmp, and nothing else of the host's /tmp may show."""
    from autograder.core import api, launch
    from autograder.core.engine import Budget, Limits, Notebook, Zygote

    if not launch.bwrap_usable():
        pytest.skip("needs bubblewrap")
    lib = tmp_path / "site"
    lib.mkdir()
    (lib / "kept_module.py").write_text("VALUE = 42\n")
    (tmp_path / "secret.txt").write_text("not for the sandbox")
    roots = launch._python_roots()
    monkeypatch.setattr(launch, "_python_roots", lambda: roots + [str(lib)])
    z = Zygote(Limits())
    try:
        nb = Notebook(z, [(0, f"import sys\nsys.path.append({str(lib)!r})\nimport kept_module\nimport os\n"
                              "def look():\n"
                              f"    try:\n        open({str(lib / 'x')!r}, 'w')\n        writable = True\n"
                              "    except OSError:\n        writable = False\n"
                              f"    return [kept_module.VALUE, os.path.exists({str(tmp_path / 'secret.txt')!r}), writable]\n")],
                      Limits(), Budget(60))
        nb.ensure()
        assert api.Submission(nb, 10).call("look") == [42, False, False]
        nb.close()
    finally:
        z.close()
