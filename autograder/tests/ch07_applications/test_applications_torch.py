"""Hidden tests for solutions/ch07_applications/applications_torch.ipynb (book: ch07_applications).

The graded metric: the student's ``train_digits_classifier`` runs in the sandbox on the first 1,400
of scikit-learn's digits; the trained model labels the last 397 (held out: the notebook never uses
them), perturbed with the course's secret seed (``testkit.heldout``: another stroke width and noise), since
every labelled digit is public; the accuracy is computed here, in the trusted process, and must reach
ACCURACY_THRESHOLD. The trained model's labels are the argmax of its scores, taken here (so a wrong
predict_digits costs nothing on train_digits_classifier).
On clean images the reference reaches 0.94, a ridge classifier on the 64 pixels 0.86, random labels 0.10;
on the perturbed ones the reference keeps 0.93-0.94 (three secrets), a table of the public digits 0.11.
"""
import functools

import numpy as np

from autograder.core.api import Fail, RemoteTensor, check_type, graded, tensor
from autograder.testkit.heldout import heldout_digits
from autograder.testkit.manifest import forbidden

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml


ACCURACY_THRESHOLD = 0.90
N_TRAIN = 1400
RECURRENT = ("RNN", "LSTM", "GRU")  # a submodule whose class name holds one of these reads the sequence


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def _logits(sub, model, x, what):
    out = sub.invoke(model, tensor(x))
    check_type(out, RemoteTensor, what)
    return out


def _is_recurrent(types):
    """types: sub.module_types(model), the model itself first; one of its submodules must be recurrent."""
    return any(any(r in t.rsplit(".", 1)[-1].upper() for r in RECURRENT) for t in types[1:])


def _check_labels(pred, n, what):
    if not isinstance(pred, np.ndarray):
        raise Fail(f"{what} should return a numpy array of labels, got {type(pred).__name__}")
    if pred.shape != (n,):
        raise Fail(f"{what}: shape {pred.shape}, expected ({n},): one label per image")
    if not np.issubdtype(pred.dtype, np.integer):
        raise Fail(f"{what}: dtype {pred.dtype}, expected integer labels (argmax of the scores)")
    if pred.size and (pred.min() < 0 or pred.max() > 9):
        raise Fail(f"{what}: labels must lie in 0..9, got values from {pred.min()} to {pred.max()}")


# ------------------------------------------------------------------------------ DigitsGRU
@graded("DigitsGRU", points=2)
def test_DigitsGRU_shapes(sub, rng):
    model = sub.new("DigitsGRU")
    for N, T in [(5, 8), (1, 8), (3, 4), (2, 1)]:
        x = rng.random((N, T, 8)).astype(np.float32)
        out = _logits(sub, model, x, f"DigitsGRU()(x) for x of shape {(N, T, 8)}")
        if tuple(out.shape) != (N, 10):
            raise Fail(f"DigitsGRU()(x) for x of shape {(N, T, 8)}: output shape {tuple(out.shape)}, "
                       f"expected {(N, 10)} (one score per class; any number of rows T)")
        if out.dtype != "torch.float32":
            raise Fail(f"DigitsGRU output dtype {out.dtype}, expected torch.float32")


@graded("DigitsGRU", points=1)
def test_DigitsGRU_recurrent(sub, rng):
    model = sub.new("DigitsGRU", 8, 16)
    types = sub.module_types(model)
    if not _is_recurrent(types):
        raise Fail("DigitsGRU should read the rows with a recurrent layer (torch.nn.GRU, LSTM or RNN, or "
                   f"your own); its submodules are {types[1:7]}")
    sub.method(model, "eval")
    x = rng.random((4, 8, 8)).astype(np.float32)
    a = _logits(sub, model, x, "DigitsGRU(8, 16)(x)")
    b = _logits(sub, model, x[:, ::-1].copy(), "DigitsGRU(8, 16)(x with its rows reversed)")
    if np.allclose(a.array, b.array, rtol=0, atol=1e-7):
        raise Fail("DigitsGRU gives the same scores when the rows come in reverse order: it should read "
                   "them as a sequence and classify from the final hidden state")


@graded("predict_digits", points=1)
def test_predict_digits_labels(sub, rng):
    images, _ = _digits()
    x = images[rng.choice(len(images), 7, replace=False)]
    model = sub.new("DigitsGRU")
    sub.method(model, "eval")
    scores = _logits(sub, model, x, "DigitsGRU()(x)")
    pred = sub.call("predict_digits", model, x)
    _check_labels(pred, len(x), "predict_digits(model, x)")
    expected = scores.array.argmax(axis=1)
    if not np.array_equal(pred, expected):
        i = int(np.flatnonzero(pred != expected)[0])
        raise Fail(f"predict_digits(model, x): image {i} labelled {pred[i]}, but the model's highest "
                   f"score is for class {expected[i]}")


# ----------------------------------------------------------------- train_digits_classifier
def _labels(sub, model, x, what):
    """The trained model's labels, taken here (the argmax of its scores, in eval mode), not through the
    student's predict_digits: a wrong predict_digits costs nothing on train_digits_classifier (issue 20)."""
    sub.method(model, "eval")
    scores = _logits(sub, model, x, what)
    if tuple(scores.shape) != (len(x), 10):
        raise Fail(f"{what}: the trained model's scores have shape {tuple(scores.shape)}, expected {(len(x), 10)}")
    return scores.array.argmax(axis=1).astype(np.int64)


@graded("train_digits_classifier", points=4)
def test_train_digits_classifier_heldout_accuracy(sub, rng):
    images, labels = _digits()
    model = sub.call("train_digits_classifier", images[:N_TRAIN], labels[:N_TRAIN], 0)
    try:
        types = sub.module_types(model)
    except Exception:
        raise Fail("train_digits_classifier should return the trained model (a DigitsGRU, an nn.Module)") from None
    if not _is_recurrent(types):
        raise Fail(f"train_digits_classifier should return a recurrent model; its submodules are {types[1:7]}")
    pred = _labels(sub, model, heldout_digits(images[N_TRAIN:]), "the trained model on the held-out images")
    acc = float(np.mean(pred == labels[N_TRAIN:]))
    if not acc >= ACCURACY_THRESHOLD:
        raise Fail(f"held-out accuracy {acc:.3f} on the {len(pred)} digits the notebook never sees; "
                   f"at least {ACCURACY_THRESHOLD:.2f} is needed (train longer, or tune the learning rate)")


@graded("train_digits_classifier", points=1)
def test_train_digits_classifier_deterministic(sub, rng):
    images, labels = _digits()
    sub.seed(int(rng.integers(2**31)))
    x_small, y_small = images[:300], labels[:300]
    what = "the trained model on the held-out images"
    first = _labels(sub, sub.call("train_digits_classifier", x_small, y_small, 3), images[N_TRAIN:], what)
    second = _labels(sub, sub.call("train_digits_classifier", x_small, y_small, 3), images[N_TRAIN:], what)
    if not np.array_equal(first, second):
        raise Fail("two calls of train_digits_classifier with the same data and seed give models that predict "
                   f"different labels ({int(np.sum(first != second))} of {len(first)} differ): seed the "
                   "weights and the order of the mini-batches from `seed`")
