"""The grader where namespaces are refused: a container like Gradescope's (Docker's default seccomp
profile and capabilities, emulated by tests/container.py), the grader running as root.

Each notebook's code runs as a fresh unprivileged uid; everything secret is root-only before any
student code runs; every process of that uid is killed, and its files deleted, before the notebook's
results are accepted. Every attack below is graded beside an honest twin graded right after it on the
same worker (one worker), whose results.json and feedback.md must be byte for byte those of a run
without attackers. The per-notebook memory limit is checked here too, with bubblewrap and without.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, load_results, run_grader
from autograder.testkit import manifest

sys.path.insert(0, str(Path(__file__).parent))
import container  # noqa: E402
from test_adversarial import A, NB, base, set_src, append, _normalised, cases  # noqa: E402

WHY = container.available()
if not WHY:
    from autograder.core import launch

    closed = launch.unreadable_parent(sys.executable) or launch.unreadable_parent(sys.base_prefix)
    if closed:
        WHY = (f"the course's interpreter lies under {closed}, which a container's unprivileged uid cannot "
               f"enter (.ci/run makes it enterable: chmod o+x)")
needs_container = pytest.mark.skipif(bool(WHY), reason=WHY or "")

SECRET_MARK = "def test_"  # in every hidden test file; never in a student's results
HIDDEN = REPO / "autograder" / "tests" / A / "test_gradients_numpy.py"
LIMITS = ("--assignment", A, "--cell-timeout", "5", "--call-timeout", "5", "--notebook-timeout", "60",
          "--memory-mb", "1024", "--workers", "1")

READ_SECRETS = f'''
import os, glob
def _peek():
    found = []
    for p in [{str(HIDDEN)!r}, {str(REPO / "solutions" / A / (NB + ".ipynb"))!r},
              {str(REPO / "autograder" / "testkit" / "reference" / "steps.py")!r}] + glob.glob("/autograder/*"):
        try:
            found.append(open(p).read()[:3000])
        except OSError as e:
            found.append(type(e).__name__)
    for root in ("RESULTS", "SUBMITTED"):
        try:
            found.append(str(os.listdir(os.environ.get(root, "/nonexistent"))))
        except OSError as e:
            found.append(type(e).__name__)
    return found
def relative_error(a, b):
    raise RuntimeError(" | ".join(_peek()))
'''

REWRITE_RESULTS = '''
import os, time, json, glob
def _daemon():
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    for _ in range(600):  # wait for the grader to write results, then rewrite every one it can reach
        for p in glob.glob("/**/results.json", recursive=True):
            try:
                d = json.load(open(p)); d["score"] = 999
                open(p, "w").write(json.dumps(d))
            except Exception:
                pass
        time.sleep(0.5)
    os._exit(0)
_daemon()
'''

FORK_BOMB = '''
import os
kids = 0
try:
    while kids < 100000:
        if os.fork() == 0:
            import time
            time.sleep(3600)
            os._exit(0)
        kids += 1
except OSError:
    pass
'''

PLANT = '''
import os
for d in ("/tmp", "/dev/shm", "/var/tmp"):
    try:
        with open(os.path.join(d, "numpy.py"), "w") as f:
            f.write("raise SystemExit('planted')")
        os.chmod(os.path.join(d, "numpy.py"), 0o666)
    except OSError:
        pass
'''

HOG = '''
import os, time
import numpy as np
pids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        try:
            a = np.ones(900 * 2**20 // 8)  # 900 MiB, touched
            time.sleep(60)
        finally:
            os._exit(0)
    pids.append(pid)
time.sleep(90)
'''

ATTACKS = {
    "read_secrets": (lambda: set_src(base(), "relative_error", READ_SECRETS), {"relative_error": "error"}),
    "rewrite_results": (lambda: append(base(), REWRITE_RESULTS, after="relative_error"), {}),
    "fork_bomb": (lambda: append(base(), FORK_BOMB, after="relative_error"), {}),
    "plant_files": (lambda: append(base(), PLANT, after="relative_error"), {}),
    "stuck_socket": (lambda: _case_notebook("stuck_socket"), {}),  # round 2: a trusted write that never drains
}


def _case_notebook(name: str) -> dict:
    """A notebook of tests/test_adversarial.py's corpus, as that corpus writes it."""
    import tempfile

    write, _ = cases()[name]
    with tempfile.TemporaryDirectory() as d:
        write(Path(d))
        return json.loads((Path(d) / f"{NB}.ipynb").read_text())


def _class(root: Path, attacks) -> Path:
    sub = root / "submitted"
    for i, name in enumerate(sorted(attacks)):
        for student, nb in ((f"{i:02d}_{name}", attacks[name][0]()), (f"{i:02d}~honest", base())):
            d = sub / student / A
            d.mkdir(parents=True)
            (d / f"{NB}.ipynb").write_text(json.dumps(nb))
    return sub


def _sandbox_uids(run: Path) -> list[str]:
    """Processes of a sandbox uid started by the run whose scratch folder (TMPDIR) is ``run``: its
    zygote's folder is on their command line. Other runs on the machine (another test worker) aside."""
    ps = subprocess.run(["ps", "-eo", "uid=,args="], capture_output=True, text=True).stdout.splitlines()
    return [l for l in ps if l.split() and l.split()[0].isdigit() and int(l.split()[0]) >= 1_000_000
            and str(run) in l]


def _grade_contained(sub: Path, out: Path, scratch: Path):
    scratch.mkdir()
    return run_grader(sub, out, *LIMITS, wrap=container.wrap, timeout=900, env=dict(os.environ, TMPDIR=str(scratch)))


@pytest.fixture(scope="module")
def contained(tmp_path_factory):
    root = tmp_path_factory.mktemp("container")
    sub, out = _class(root, ATTACKS), root / "results"
    r = _grade_contained(sub, out, root / "tmp")
    after_run = _sandbox_uids(root / "tmp")
    base_root = tmp_path_factory.mktemp("container-baseline")
    bsub, bout = _class(base_root, {}), base_root / "results"
    bsub_st = bsub / "00~honest" / A
    bsub_st.mkdir(parents=True)
    (bsub_st / f"{NB}.ipynb").write_text(json.dumps(base()))
    rb = _grade_contained(bsub, bout, base_root / "tmp")
    assert rb.returncode == 0, rb.stderr[-2000:]
    return {"out": out, "r": r, "baseline": bout, "after_run": after_run, "sub": sub,
            "scratch": [root / "tmp", base_root / "tmp"]}


@needs_container
def test_the_grader_runs_in_the_container_and_says_so(contained):
    r = contained["r"]
    assert r.returncode == 0, r.stderr[-3000:]
    assert "isolation: container" in r.stderr
    doc = load_results(contained["baseline"], "00~honest", A)
    nb = doc["subtotals"]["notebooks"][NB]
    points = sum(manifest.notebook(A, NB)["graded"].values())  # chapters.yml
    assert doc["isolation"] == "container" and nb["score"] == nb["max_score"] == points, nb
    assert doc["limits"]["memory_mb_per_notebook"] == 1024


@needs_container
def test_honest_twins_after_each_attacker_are_untouched_in_the_container(contained):
    ref = _normalised(contained["baseline"], "00~honest")
    for i, name in enumerate(sorted(ATTACKS)):
        assert _normalised(contained["out"], f"{i:02d}~honest") == ref, name


@needs_container
def test_hidden_tests_and_other_files_are_unreadable_in_the_container(contained):
    i = sorted(ATTACKS).index("read_secrets")
    doc = load_results(contained["out"], f"{i:02d}_read_secrets", A)
    text = json.dumps(doc) + (contained["out"] / f"{i:02d}_read_secrets" / A / "feedback.md").read_text()
    assert SECRET_MARK not in text and "BEGIN SOLUTION" not in text and "def rnn_step" not in text
    assert "PermissionError" in text  # it tried, and the kernel said no
    assert [t["status"] for t in doc["tests"] if t["function"] == "relative_error"] == ["error"] * 2


@needs_container
def test_a_detached_process_cannot_rewrite_results_and_nothing_outlives_the_run(contained):
    time.sleep(2)  # a survivor would have rewritten results.json by now
    for p in contained["out"].rglob("results.json"):
        assert json.loads(p.read_text())["score"] != 999, p
    assert contained["after_run"] == [], contained["after_run"]
    for scratch in contained["scratch"]:
        assert _sandbox_uids(scratch) == []


@needs_container
def test_planted_files_are_deleted_with_their_notebook(contained):
    left = [p for d in ("/tmp", "/dev/shm", "/var/tmp") for p in Path(d).glob("numpy.py")]
    assert not left, left


@needs_container
def test_the_preflight_stops_a_run_that_cannot_grade(tmp_path):
    """Round 2: an interpreter under a 0700 home gave the honest reference 0/42 and 26 grader faults.
    Now a probe notebook runs first and the run stops in one line, before any student is graded."""
    home = Path(os.path.realpath(sys.base_prefix)).parts
    closed = Path(*home[:2])  # /root for a pyenv interpreter, /usr for the system's
    if str(closed) not in ("/root", "/home", "/opt"):
        pytest.skip(f"the interpreter lives under {closed}: closing it would lock out the whole machine")
    sub = _class(tmp_path, {})
    d = sub / "s" / A
    d.mkdir(parents=True)
    (d / f"{NB}.ipynb").write_text(json.dumps(base()))
    mode = os.stat(closed).st_mode
    os.chmod(closed, mode & ~0o001)
    try:
        r = run_grader(sub, tmp_path / "out", *LIMITS, wrap=container.wrap, timeout=300)
    finally:
        os.chmod(closed, mode)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    err = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(err) == 1 and "cannot grade here" in err[0] and f"chmod o+x {closed}" in err[0], r.stderr[-2000:]
    assert not (tmp_path / "out" / "s").exists()  # nobody graded


@needs_container
def test_the_preflight_stops_a_run_whose_packages_the_sandbox_cannot_read(tmp_path):
    """An interpreter everyone can enter, with its packages in a folder only root can: the zygote (root)
    imports torch, so a probe that only imported would pass, and every student's lazy import (say,
    torch.fx.experimental) would then fail as the student's own ModuleNotFoundError. The probe reads
    the packages' folders as the sandbox's user, and the run stops in one line."""
    import sysconfig

    closed = tmp_path / "closed"
    closed.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(closed / "venv")], check=True, timeout=120)
    py = closed / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for e in Path(sysconfig.get_paths()["purelib"]).iterdir():  # this environment's packages, by links
        if not (site / e.name).exists():
            (site / e.name).symlink_to(e)
    sub = _class(tmp_path, {})
    d = sub / "s" / A
    d.mkdir(parents=True)
    (d / f"{NB}.ipynb").write_text(json.dumps(base()))
    os.chmod(closed, 0o700)
    argv = [str(py), "-m", "autograder", "grade", str(sub), "--out", str(tmp_path / "out"), "--no-progress", *LIMITS]
    r = subprocess.run(container.wrap(argv), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    err = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(err) == 1 and "cannot grade here" in err[0] and "cannot read" in err[0], r.stderr[-2000:]
    assert f"chmod o+x {closed}" in err[0], err[0]
    assert not (tmp_path / "out" / "s").exists()  # nobody graded


@pytest.mark.parametrize("where", ["bubblewrap", "container"])
def test_one_notebooks_processes_together_stay_under_the_memory_limit(where, tmp_path):
    """Round 2: four forked processes that each touch 900 MiB under --memory-mb 1024 held 3,600 MiB.
    Now the notebook is stopped for its memory; the honest student graded next is untouched."""
    from autograder.core import launch

    if where == "container" and WHY:
        pytest.skip(WHY)
    if where == "bubblewrap" and not launch.bwrap_usable():
        pytest.skip("needs bubblewrap")
    sub = _class(tmp_path, {"hog": (lambda: append(base(), HOG, after="relative_error"), {})})
    out = tmp_path / "out"
    limits = [*LIMITS, "--cell-timeout", "60", "--notebook-timeout", "120"]  # slow forks on a busy machine
    r = run_grader(sub, out, *limits, wrap=container.wrap if where == "container" else None, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    hog = load_results(out, "00_hog", A)
    errors = " ".join(hog["notebooks"][NB]["cell_errors"])
    assert "memory limit" in errors and "1024 MiB" in errors, errors
    honest = load_results(out, "00~honest", A)["subtotals"]["notebooks"][NB]
    assert honest["score"] == honest["max_score"], honest


@pytest.mark.parametrize("where", ["namespaces", "container"])
def test_held_out_rows_stay_out_of_reach_without_bubblewrap(where, tmp_path):
    """scikit-learn's digits: the sandbox sees the training rows only, with bubblewrap (a bind mount),
    without it as root (a bind mount in the child's own mount namespace) and in a container (the
    original root-only, the public part served from the zygote's memory through sklearn's loader)."""
    if where == "container" and WHY:
        pytest.skip(WHY)
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import sklearn

    original = Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz"
    probe = (f"import os\nfrom sklearn.datasets import load_digits\n"
             f"def n():\n    try:\n        open({str(original)!r}, 'rb').read(10)\n        raw = 'read'\n"
             f"    except OSError as e:\n        raw = type(e).__name__\n"
             f"    return [len(load_digits().target), raw]\n")
    script = ("import json, sys\nfrom autograder.core import api\nfrom autograder.core.engine import Budget, Limits, Notebook, Zygote\n"
              "z = Zygote(Limits())\nnb = Notebook(z, [(0, sys.argv[1])], Limits(), Budget(60))\nnb.ensure()\n"
              "print(json.dumps([z.isolation, api.Submission(nb, 30).call('n')]))\nnb.close(); z.close()\n")
    argv = [sys.executable, "-c", script, probe]
    env = dict(os.environ, AUTOGRADER_NO_BWRAP="1")
    r = subprocess.run(container.wrap(argv) if where == "container" else argv, cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    isolation, (rows, raw) = json.loads(r.stdout.strip().splitlines()[-1])
    assert isolation == where and rows == 1400, (isolation, rows)
    if where == "container":
        assert raw == "PermissionError"


@needs_container
def test_from_scratch_and_held_out_attacks_in_the_container(tmp_path):
    """Round 2's "from scratch" attacks (`[torch][0]._VF.lstm_cell`, `[torch][0].nn.utils.clip_grad_norm_`)
    and ch07's table of the public digits, graded in the container, each beside an honest twin graded
    right after it; the twins' results are byte for byte those of a run without the attackers."""
    from test_from_scratch import CLIP_ATTACKS, LSTM_ATTACKS, _notebook as scratch_notebook
    from test_heldout import _notebook as digits_notebook, _table_attack

    plan = {"ch04_lstm": ("lstm_torch", lambda: scratch_notebook("ch04_lstm", "lstm_torch",
                                                                 LSTM_ATTACKS["vf_list"], "LSTMCell"),
                          lambda: scratch_notebook("ch04_lstm", "lstm_torch")),
            "ch03_vanishing": ("vanishing_torch", lambda: scratch_notebook("ch03_vanishing", "vanishing_torch",
                                                                           CLIP_ATTACKS["clip_list"], "clip_grad_norm_"),
                               lambda: scratch_notebook("ch03_vanishing", "vanishing_torch")),
            "ch07_applications": ("applications_torch", lambda: digits_notebook(_table_attack()),
                                  lambda: digits_notebook())}
    old = os.environ.get("AUTOGRADER_SECRET_FILE")
    os.environ["AUTOGRADER_SECRET_FILE"] = str(tmp_path / "secret")
    try:
        outs = {}
        for with_attackers in (True, False):
            sub = tmp_path / f"submitted-{with_attackers}"
            for chapter, (name, attack, honest) in plan.items():
                for student, make in ((("00_attack", attack),) if with_attackers else ()) + (("00~honest", honest),):
                    d = sub / student / chapter
                    d.mkdir(parents=True)
                    (d / f"{name}.ipynb").write_text(json.dumps(make()))
            out = tmp_path / f"out-{with_attackers}"
            r = run_grader(sub, out, "--workers", "1", wrap=container.wrap, timeout=900)
            assert r.returncode == 0, r.stderr[-2000:]
            outs[with_attackers] = out
    finally:
        if old is None:
            os.environ.pop("AUTOGRADER_SECRET_FILE", None)
        else:
            os.environ["AUTOGRADER_SECRET_FILE"] = old
    fns = {"ch04_lstm": ("LSTMCell", "LSTM"), "ch03_vanishing": ("clip_grad_norm_",),
           "ch07_applications": ("train_digits_classifier",)}
    for chapter, names in fns.items():
        doc = load_results(outs[True], "00_attack", chapter)
        assert doc["isolation"] == "container"
        earned = {f: doc["subtotals"]["functions"][f]["score"] for f in names}
        if chapter == "ch04_lstm":  # caught by the syntax check: nothing at all
            assert earned == {"LSTMCell": 0, "LSTM": 0}, earned
        elif chapter == "ch03_vanishing":
            assert earned == {"clip_grad_norm_": 0}, earned
        else:  # the held-out accuracy test is lost (the untrained model's own marks may remain)
            acc = [t for t in doc["tests"] if t["name"] == "test_train_digits_classifier_heldout_accuracy"]
            assert acc and acc[0]["status"] != "passed", acc
        for f in ("results.json", "feedback.md"):
            a = (outs[True] / "00~honest" / chapter / f).read_text()
            b = (outs[False] / "00~honest" / chapter / f).read_text()
            assert a == b, (chapter, f)
