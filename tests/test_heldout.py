"""Held-out data that no notebook can look up (issue 18, item 5).

scikit-learn's digits are public: a notebook can embed all 1,797 labelled rows (58 KB) and make its
model add +1000 to the class of any image it recognises. Before this change that earned 9/9 with no
training (the same untrained model without the table: 5/9). The held-out images are now perturbed at
grading time (``autograder.testkit.heldout``) with a seed derived from a per-course secret file: the
table recognises none of them, while the reference's model keeps its accuracy (three secrets)."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from autograder.testkit import heldout
from conftest import REPO, load_results, run_grader
from test_adversarial import _solution, append

CH, NB = "ch07_applications", "applications_torch"


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


# ------------------------------------------------------------------------------ the seed
def test_secret_file_is_created_once_private_and_stable(tmp_path):
    path = tmp_path / "course" / "secret"
    first = heldout.course_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert heldout.course_secret(path) == first  # regrading the same class: the same images
    assert heldout.seed_for("a", first) == heldout.seed_for("a", first) != heldout.seed_for("b", first)
    other = heldout.course_secret(tmp_path / "other")
    assert heldout.seed_for("a", other) != heldout.seed_for("a", first)


def test_secret_file_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET_FILE", str(tmp_path / "s"))
    images, _ = _digits()
    a = heldout.heldout_digits(images[1400:])
    assert (tmp_path / "s").is_file()
    assert np.array_equal(a, heldout.heldout_digits(images[1400:]))
    (tmp_path / "s").write_text("0" * 64)
    assert not np.array_equal(a, heldout.heldout_digits(images[1400:]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_perturbed_image_is_a_public_one(seed):
    images, _ = _digits()
    x = heldout.perturb(images[1400:], seed)
    assert x.shape == (397, 8, 8) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    nearest = np.abs(x[:, None] - images[None]).reshape(len(x), len(images), -1).max(-1).min(-1)  # (397,)
    assert nearest.min() > 0.05  # no image within 0.05 of a public one, pixel by pixel


def _reference_functions(ns: dict) -> None:
    nb = json.load(open(REPO / "solutions" / CH / f"{NB}.ipynb"))
    for c in nb["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in ("DigitsGRU", "train_digits_classifier", "predict_digits"):
            exec(compile(_solution("".join(c["source"])), gid, "exec"), ns)


@pytest.mark.slow
def test_the_reference_keeps_its_marks_on_three_secrets():
    import torch

    ns = {"np": np, "torch": torch, "nn": torch.nn, "device": torch.device("cpu")}
    _reference_functions(ns)
    images, labels = _digits()
    torch.set_num_threads(1)
    model = ns["train_digits_classifier"](images[:1400], labels[:1400], 0)
    accs = []
    for secret in (b"a" * 64, b"b" * 64, b"c" * 64):
        x = heldout.perturb(images[1400:], heldout.seed_for("ch07_applications/heldout", secret))
        accs.append(float(np.mean(ns["predict_digits"](model, x) == labels[1400:])))
    assert min(accs) >= 0.90 + 0.015, accs  # the hidden test's threshold, with a margin


# ----------------------------------------------------------------- the lookup table, graded
def _table_attack() -> str:
    images, labels = _digits()
    rows = json.dumps([[int(v) for v in (im * 16).round().astype(int).ravel()] + [int(y)]
                       for im, y in zip(images, labels)], separators=(",", ":"))
    return (f"PUBLIC = np.array({rows}, dtype=np.float32)\n"
            "TABLE_X, TABLE_Y = PUBLIC[:, :64] / 16.0, PUBLIC[:, 64].astype(np.int64)\n\n"
            "class Cheat(DigitsGRU):\n"
            "    def forward(self, x):\n"
            "        out = super().forward(x)\n"
            "        if x.shape[1:] == (8, 8):\n"
            "            flat = x.detach().reshape(len(x), 1, 64).numpy()\n"
            "            diff = np.abs(flat - TABLE_X[None]).max(-1)  # (N, 1797)\n"
            "            for i in range(len(x)):\n"
            "                j = int(diff[i].argmin())\n"
            "                if diff[i, j] < 0.02:  # recognised: a public image, up to rounding\n"
            "                    out = out.clone()\n"
            "                    out[i, TABLE_Y[j]] += 1000.0\n"
            "        return out\n\n"
            "def train_digits_classifier(x_train, y_train, seed=0):\n"
            "    torch.manual_seed(seed)\n"
            "    return Cheat().eval()\n")


def _notebook(added=None):
    nb = json.load(open(REPO / "solutions" / CH / f"{NB}.ipynb"))
    for c in nb["cells"]:
        c["source"] = _solution("".join(c["source"]))
    if added:
        append(nb, added, after="predict_digits")
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    old = os.environ.get("AUTOGRADER_SECRET_FILE")
    os.environ["AUTOGRADER_SECRET_FILE"] = str(root / "secret")
    try:
        runs = {}
        for with_attacker in (True, False):
            sub = root / ("submitted" if with_attacker else "baseline")
            students = {"00~honest": _notebook()}
            if with_attacker:
                students["00_lookup"] = _notebook(_table_attack())
            for s, nb in students.items():
                (sub / s / CH).mkdir(parents=True)
                (sub / s / CH / f"{NB}.ipynb").write_text(json.dumps(nb))
            out = root / ("results" if with_attacker else "results-baseline")
            r = run_grader(sub, out, "--assignment", CH, "--workers", "1")
            assert r.returncode == 0, r.stderr[-3000:]
            runs[with_attacker] = out
        return runs
    finally:
        if old is None:
            os.environ.pop("AUTOGRADER_SECRET_FILE", None)
        else:
            os.environ["AUTOGRADER_SECRET_FILE"] = old


@pytest.mark.slow
def test_a_table_of_the_public_digits_earns_no_accuracy_marks(graded):
    doc = load_results(graded[True], "00_lookup", CH)
    t = next(t for t in doc["tests"] if t["name"] == "test_train_digits_classifier_heldout_accuracy")
    assert t["status"] == "failed" and not t["points"] and "accuracy" in t["message"], t
    assert doc["score"] <= 5, doc["score"]  # what the untrained model earns without the table


@pytest.mark.slow
def test_the_honest_twin_after_the_attacker_is_untouched(graded):
    def read(out):
        folder = out / "00~honest" / CH
        return [(folder / f).read_text() for f in ("results.json", "feedback.md")]

    assert read(graded[True]) == read(graded[False])
    doc = load_results(graded[False], "00~honest", CH)
    assert doc["score"] == doc["max_score"]


def test_workers_starting_together_share_one_secret(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    path = tmp_path / "secret"
    with ProcessPoolExecutor(4) as ex:
        got = set(ex.map(heldout.course_secret, [path] * 8))
    assert len(got) == 1 and os.listdir(tmp_path) == ["secret"]


def test_an_unwritable_secret_file_still_grades(tmp_path):
    (tmp_path / "a_file").write_text("")  # its "folder" is a file: neither readable nor writable, even as root
    a = heldout.course_secret(tmp_path / "a_file" / "secret")
    assert len(a) == 64 and heldout.course_secret(tmp_path / "a_file" / "secret") == a  # one per process
