""""From scratch" by identifier (issue 18, item 3): each attack replaces a graded answer by torch's own
kernel reached through an expression the resolver cannot follow, a computed name, the import system, the
heap or ctypes. Each earns nothing on the function it fakes, and the honest twin graded right after it on
the same worker (one worker) gets results byte-identical to a run without any attacker.

Before this change `[torch][0]._VF.lstm_cell` earned 16/16 (LSTMCell + LSTM) and
`[torch][0].nn.utils.clip_grad_norm_` 10/10."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.core import policy
from conftest import REPO, load_results, run_grader
from test_adversarial import _solution, append, cell

CELL_ARGS = "x, h, c, weight_ih, weight_hh, bias_ih, bias_hh"
CALL = "(x, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)"


def _lstm_cell(get_kernel: str, prelude: str = "") -> str:
    """A correct lstm_cell that is torch's kernel: get_kernel is an expression for the function."""
    return f"{prelude}def lstm_cell({CELL_ARGS}):\n    return ({get_kernel}){CALL}\n"


LSTM_ATTACKS = {  # name -> added cell after LSTMCell (redefines lstm_cell, which LSTMCell and LSTM use)
    "vf_list": _lstm_cell("[torch][0]._VF.lstm_cell"),
    "vf_alias": "K = [torch][0]._VF\n" + _lstm_cell("K.lstm_cell"),
    "vf_getattr_computed": _lstm_cell("getattr(getattr([torch][0], '_V' + 'F'), 'lstm_' + 'cell')"),
    "vf_getattr_on_name": "T = [torch][0]\n" + _lstm_cell("getattr(getattr(T, '_V' + 'F'), 'lstm_' + 'cell')"),
    "torch_name_computed": "T = [torch][0]\n" + _lstm_cell("getattr(T, 'lstm_' + 'cell')"),
    "dunder_import": _lstm_cell("__import__('tor' + 'ch')._VF.lstm_cell"),
    "importlib": "import importlib\n" + _lstm_cell("importlib.import_module('torch._VF').lstm_cell"),
    "sys_modules": "import sys\n" + _lstm_cell("sys.modules['torch._VF'].lstm_cell"),
    "ops_aten": _lstm_cell("torch.ops.aten.lstm_cell.default"),
    "variable_functions": _lstm_cell("torch._C._VariableFunctions.lstm_cell"),
    "gc_heap": "import gc\n" + _lstm_cell(
        "[o for o in gc.get_objects() if getattr(o, '__name__', '') == 'lstm_cell' and 'built-in' in repr(o)][0]"),
    "ctypes": "import ctypes\n" + _lstm_cell("ctypes.cast(id(torch) , ctypes.py_object).value._VF.lstm_cell"),
    # past the syntax check (a lambda's result is not followed): the guards in the sandbox refuse it
    "runtime_only": "T = (lambda: [torch][0])()\n" + _lstm_cell("getattr(getattr(T, '_V' + 'F'), 'lstm_' + 'cell')"),
    "runtime_only_torch": "T = (lambda: [torch][0])()\n" + _lstm_cell("getattr(T, 'lstm_' + 'cell')"),
    "runtime_only_ops": "T = (lambda: [torch][0])()\n" + _lstm_cell(
        "getattr(getattr(getattr(T, 'o' + 'ps'), 'at' + 'en'), 'lstm_' + 'cell')"),
}
CLIP = ("def clip_grad_norm_(parameters, max_norm, norm_type=2.0):\n"
        "    return ({fn})(parameters, max_norm, norm_type)\n")
CLIP_ATTACKS = {
    "clip_list": CLIP.format(fn="[torch][0].nn.utils.clip_grad_norm_"),
    "clip_computed": "U = [torch][0].nn\n" + CLIP.format(fn="getattr(getattr(U, 'uti' + 'ls'), 'clip_grad_' + 'norm_')"),
    "clip_module": "U = [torch][0].nn\n" + CLIP.format(
        fn="getattr(getattr(getattr(U, 'uti' + 'ls'), 'clip_' + 'grad'), 'clip_grad_' + 'norm_')"),
    "runtime_only_clip": "U = (lambda: [torch][0].nn)()\n" + CLIP.format(
        fn="getattr(getattr(getattr(U, 'uti' + 'ls'), 'clip_' + 'grad'), 'clip_grad_' + 'norm_')"),
}
# Caught at run time only, an attack keeps the tests that never call the kernel (parameter names and shapes)
STRUCTURE_ONLY = ("state_dict_and_init",)
CASES = {("ch04_lstm", "lstm_torch", "LSTMCell", ("LSTMCell", "LSTM")): LSTM_ATTACKS,
         ("ch03_vanishing", "vanishing_torch", "clip_grad_norm_", ("clip_grad_norm_",)): CLIP_ATTACKS}


def _notebook(chapter, name, added=None, after=None):
    nb = json.load(open(REPO / "solutions" / chapter / f"{name}.ipynb"))
    for c in nb["cells"]:
        c["source"] = _solution("".join(c["source"]))
    if added is not None:
        append(nb, added, after=after)
    return nb


def _build(root: Path, with_attackers: bool) -> Path:
    """Each attacker followed by its honest twin; without the attackers, the one twin (00~honest) that
    every twin beside an attacker must equal, student id aside."""
    sub = root / "submitted"
    for (chapter, name, after, _), attacks in CASES.items():
        for i, (case, src) in enumerate(sorted(attacks.items())):
            if not with_attackers and i:
                break
            students = [f"{i:02d}~honest"] + ([f"{i:02d}_{case}"] if with_attackers else [])
            for s in students:
                folder = sub / s / chapter
                folder.mkdir(parents=True, exist_ok=True)
                nb = _notebook(chapter, name, None if "~" in s else src, after)
                (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    return sub


def _grade(root: Path, sub: Path) -> Path:
    """Both chapters in one run (one worker): a grader start costs about 4 CPU-s."""
    out = root / "results"
    r = run_grader(sub, out, "--workers", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    runs = {}
    for with_attackers in (True, False):
        root = tmp_path_factory.mktemp("attack" if with_attackers else "baseline")
        out = _grade(root, _build(root, with_attackers))
        runs[with_attackers] = {ch: out for (ch, *_r) in CASES}
    return runs


def _normalised(out: Path, student: str, chapter: str):
    folder = out / student / chapter
    return tuple((folder / f).read_text().replace(student, "<student>").replace(student.replace("~", "\\~"), "<student>")
                 for f in ("results.json", "feedback.md"))


@pytest.mark.slow
@pytest.mark.parametrize("key,case", [(k, c) for k, attacks in CASES.items() for c in sorted(attacks)])
def test_attack_earns_nothing_on_the_function_it_fakes(graded, key, case):
    chapter, _name, _after, functions = key
    i = sorted(CASES[key]).index(case)
    doc = load_results(graded[True][chapter], f"{i:02d}_{case}", chapter)
    tests = [t for t in doc["tests"] if t["function"] in functions]
    if case.startswith("runtime_only"):
        tests = [t for t in tests if not t["name"].endswith(STRUCTURE_ONLY)]
        assert all("not allowed in this exercise" in t["message"] for t in tests if t["status"] == "error"), tests
    else:
        assert all("must be written from scratch" in t["message"] for t in tests), tests
    earned = {t["name"]: t["points"] for t in tests if t["points"]}
    assert not earned, earned


@pytest.mark.slow
@pytest.mark.parametrize("chapter", [k[0] for k in CASES])
def test_honest_twin_after_each_attacker_is_untouched(graded, chapter):
    key = next(k for k in CASES if k[0] == chapter)
    twins = [f"{i:02d}~honest" for i in range(len(CASES[key]))]
    ref = _normalised(graded[False][chapter], twins[0], chapter)
    doc = json.loads(ref[0])  # the torch notebook alone was handed in: its tests all pass, the rest are missing
    assert doc["score"] > 0 and all(t["status"] in ("passed", "missing") for t in doc["tests"]), doc["tests"]
    bad = [t for t in twins if _normalised(graded[True][chapter], t, chapter) != ref]
    assert not bad, bad


E4 = ["torch.nn.LSTM", "torch.nn.LSTMCell", "torch.lstm", "torch.lstm_cell", "torch.rnn_", "torch._VF", "torch._C",
      "torch.ops.aten", "torch.nn.modules.rnn"]


@pytest.mark.parametrize("src", [
    '"""Not torch._VF.lstm_cell: from scratch."""\n# [torch][0]._VF.lstm_cell\nNOTE = "_VF lstm_cell"\n',
    "def lstm_cell(x, h):\n    return x\ny = lstm_cell(1, 2)\n",
    "class LSTM:\n    def __init__(self):\n        self.lstm_cell = lstm_cell\n        self.lstm = None\n"
    "    def forward(self, x):\n        return self.lstm_cell(x, getattr(self, f'weight_ih_l{0}')), getattr(self, 'lstm')\n",
    "results = {'lstm': 1}\nbest = results['lstm']\n",
    "def clip_grad_norm_(parameters, max_norm):\n    return max_norm\nclip_grad_norm_([], 1.0)\n",
])
def test_the_students_own_names_comments_and_strings_stay_free(src):
    assert policy.check([(-1, "import torch\nfrom torch import nn\n"), (0, src)], E4) == []


@pytest.mark.parametrize("src", ["K = [torch][0]._VF", "f = [nn][0].LSTMCell", "m = vars([torch][0])['_VF']",
                                 "m = getattr([torch][0], '_V' + 'F')", "m = [torch][0].__dict__['lstm']",
                                 "import ctypes", "g = (lambda: 0).__globals__", "f = obj.lstm_cell"])
def test_forbidden_identifiers_are_refused_whatever_they_hang_on(src):
    assert policy.check([(-1, "import torch\nfrom torch import nn\n"), (0, src)], E4)


PREPARED = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import torch, numpy, rnnlib
from sandbox import guards as s
names = sys.argv[2].split(",")
if sys.argv[3] == "prepared":
    s._block_prepare()
t = time.perf_counter()
s._block(names)
seconds = time.perf_counter() - t
# (torch._meta_registrations: shape functions for meta tensors, which compute no values)
open_ = [f"{m}.{k}" for m, mod in list(sys.modules.items())
         if not m.startswith(s._NEVER_EXPOSE + ("torch._meta_registrations",))
         for k, v in list(getattr(mod, "__dict__", {}).items())
         if k in s._KERNELS + s._CLIPPING and callable(v) and not isinstance(v, s._Blocked)
         and type(v).__name__ in ("builtin_function_or_method", "function")
         and (getattr(v, "__module__", "") or "").startswith("torch")]
print(seconds, sorted(open_))
"""


@pytest.mark.parametrize("how", ["prepared", "scan"])
def test_every_module_exposing_a_kernel_gets_the_guard(how, tmp_path):
    """In a fresh interpreter (the audit hook and the builtins stay changed for good): after _block, no
    module of torch's exposes an unguarded kernel or clipping function, with the zygote's index or without."""
    import subprocess
    import sys

    names = "torch._VF,torch._C,torch.ops.aten,torch.lstm_cell,torch.nn.LSTM,torch.nn.utils"
    probe = tmp_path / "probe.py"  # a file: code run by `python -c` is "<string>", which the guards refuse
    probe.write_text(PREPARED)
    r = subprocess.run([sys.executable, str(probe), str(REPO / "autograder"), names, how],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    seconds, rest = r.stdout.split(" ", 1)
    assert rest.strip() == "[]", rest
    print(f"_block ({how}): {float(seconds) * 1000:.1f} ms")
