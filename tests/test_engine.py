"""The engine's primitives, on a real zygote: values kept in the student's process as handles,
callbacks that run on the trusted side, and a trusted side that never blocks on a student's socket."""
from __future__ import annotations

import time

import numpy as np
import pytest


@pytest.fixture(scope="module")
def zygote():
    from autograder.core.engine import Limits, Zygote

    z = Zygote(Limits(cell_seconds=4, call_seconds=4, notebook_seconds=30))
    yield z
    z.close()


def _nb(z, cells, seconds=60, call_seconds=4):
    from autograder.core.engine import Budget, Limits, Notebook

    nb = Notebook(z, list(enumerate(cells)), Limits(cell_seconds=4, call_seconds=call_seconds, notebook_seconds=30),
                  Budget(seconds))
    nb.ensure()
    return nb


STEP = ("import numpy as np\n"
        "class Cache:\n    def __init__(self, x, h): self.x, self.h = x, h\n"
        "def step(x, h):\n    h2 = np.tanh(x + h)\n    return h2, Cache(x, h2)\n"
        "def back(dh, cache):\n    return dh * (1 - cache.h ** 2)\n"
        "def seq_cache(x):\n    return x * 2, [x, x]\n")


def test_call_keep_keeps_the_students_cache_in_their_process(zygote):
    from autograder.core import api

    nb = _nb(zygote, [STEP])
    try:
        sub = api.Submission(nb, 4)
        x, h = np.full((2, 3), 0.1), np.full((2, 3), 0.2)
        h2, cache = sub.call_keep("step", (1,), x, h)
        assert isinstance(h2, np.ndarray) and isinstance(cache, api.Remote) and cache.type == "Cache"
        np.testing.assert_allclose(sub.call("back", np.ones((2, 3)), cache), 1 - np.tanh(0.3) ** 2)
        # a plain-data cache stays remote too when asked: no student value is decoded
        y, c = sub.call_keep("seq_cache", [1], x)
        assert isinstance(y, np.ndarray) and isinstance(c, api.Remote) and c.type == "list"
        whole = sub.call_keep("seq_cache", "all", x)
        assert isinstance(whole, api.Remote) and whole.type == "tuple"
        sub.release(cache, c, whole)
    finally:
        nb.close()


def test_callbacks_run_on_the_trusted_side(zygote):
    from autograder.core import api

    nb = _nb(zygote, ["import numpy as np\n"
                      "def numgrad(f, x, h=1e-5):\n    g = np.zeros_like(x)\n"
                      "    for i in range(x.size):\n        e = np.zeros_like(x); e.flat[i] = h\n"
                      "        g.flat[i] = (f(x + e) - f(x - e)) / (2 * h)\n    return g\n"
                      "def leak(f):\n    return f.__doc__, getattr(f, '__code__', None) is not None\n"])
    try:
        sub = api.Submission(nb, 4)
        calls = []

        def cubic(x):
            calls.append(1)
            return float(np.sum(x ** 3))

        f = sub.callback(cubic, "f")
        x = np.array([0.5, -1.0, 2.0])
        np.testing.assert_allclose(sub.call("numgrad", f, x), 3 * x ** 2, rtol=1e-6)
        assert len(calls) == 6
        # what the student's process holds is a forwarder: none of our code is in it
        doc, has_code = sub.call("leak", f)
        assert "cubic" not in doc and "x ** 3" not in doc
    finally:
        nb.close()


ATTACK_STUCK_SOCKET = (
    "import gc, os, json, struct, socket, time\n"
    "def attack(f):\n"
    "    # call the forwarder's machinery by hand: ask for a huge trusted reply, then never read\n"
    "    cl = f.__closure__\n"
    "    child = [c.cell_contents for c in cl if hasattr(c.cell_contents, 'sock')][0]\n"
    "    blobs = []\n"
    "    tree = {'args': {'t': 'tuple', 'v': [{'t': 'int', 'v': 16 * 1024 * 1024}]},\n"
    "            'kwargs': {'t': 'dict', 'k': [], 'v': []}}  # the wire format, written by hand\n"
    "    child.send({'cb': f.__name__, 're': child.current_id, **tree}, blobs)\n"
    "    time.sleep(3600)\n")


def test_a_student_that_stops_reading_cannot_block_the_trusted_side(zygote):
    """Round 2's attack: a callback whose trusted reply (16 MB) fills the socket while the student never
    reads it. The trusted side's write gives up at the call's deadline; the next notebook is graded."""
    from autograder.core import api
    from autograder.core.engine import ChildGone

    nb = _nb(zygote, [ATTACK_STUCK_SOCKET], call_seconds=3)
    sub = api.Submission(nb, 3)
    f = sub.callback(lambda n: np.zeros(int(n) // 8), "big")
    t0 = time.monotonic()
    with pytest.raises(ChildGone) as e:
        sub.call("attack", f)
    assert e.value.status == "timeout" and time.monotonic() - t0 < 10
    nb.close()
    honest = _nb(zygote, ["def ok():\n    return 42\n"])
    try:
        assert api.Submission(honest, 4).call("ok") == 42
    finally:
        honest.close()
