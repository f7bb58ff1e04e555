"""Held-out digits that no notebook can look up: scikit-learn's digits are public (all 1,797 labelled
rows), so chapter 7's held-out images are perturbed at grading time with a secret seed.

The perturbation keeps what a model that learned digits still reads (measured with the reference's
model: accuracy 0.92-0.94 on three seeds against 0.94 on the clean images) and leaves no image equal
to a public one, so a table of the public images with their labels recognises none of them:
- stroke width: each image's intensities raised to a power drawn in [1/1.3, 1.3] (thicker or thinner);
- noise: Gaussian, sigma 0.06, then clipped to [0, 1].
Shifts are NOT used: a sub-pixel shift (0.15 px, bilinear) already drops the reference to 0.84 on 8x8
images, while a nearest-neighbour lookup of the public images keeps 0.99.

The seed is secret to students and stable for an instructor: it is derived (SHA-256) from a
per-course secret file, created on first use with mode 0600, at $AUTOGRADER_SECRET_FILE or else
``~/.config/rnn-autograder/secret`` (the grader's user; never inside the sandbox, which sees neither
the home directory nor this module). Regrading the same class gives the same scores; another course,
or a new secret, gives other images.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import numpy as np

GAMMA = 1.3  # stroke width: intensities ** g, log g uniform in [-log GAMMA, log GAMMA]
NOISE = 0.06  # standard deviation of the added noise, on intensities in [0, 1]


def secret_file() -> Path:
    env = os.environ.get("AUTOGRADER_SECRET_FILE")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".config" / "rnn-autograder" / "secret"


_EPHEMERAL: list = []  # where no secret file can be written: one random secret for this process


def course_secret(path: Path | None = None) -> bytes:
    """The course's secret (32 random bytes, hex), created on first use with mode 0600.

    Created atomically (written aside, then linked into place): workers that start together all read
    the one secret that won. Where the file can be neither read nor written (a read-only home), the
    images are still secret, from a random secret of this process, but a regrade will draw others."""
    path = Path(path) if path is not None else secret_file()
    try:
        return _read_or_create(path)
    except OSError:
        if not _EPHEMERAL:
            _EPHEMERAL.append(secrets.token_hex(32).encode())
        return _EPHEMERAL[0]


def _read_or_create(path: Path) -> bytes:
    for _ in range(50):
        try:
            data = path.read_bytes().strip()
            if len(data) >= 32:
                return data
            raise ValueError(f"{path}: the course secret is too short (at least 32 characters are needed)")
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # fails if another process made it first: then read theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    raise RuntimeError(f"{path}: could not read or create the course secret")


def seed_for(purpose: str, secret: bytes | None = None) -> int:
    """A 64-bit seed for ``purpose`` (e.g. "ch07_applications/heldout"), from the course's secret."""
    secret = course_secret() if secret is None else secret
    return int.from_bytes(hashlib.sha256(secret + b"\0" + purpose.encode()).digest()[:8], "little")


def perturb(images: np.ndarray, seed: int, gamma: float = GAMMA, noise: float = NOISE) -> np.ndarray:
    """images (N, 8, 8) in [0, 1] -> the same digits with another stroke width and noise, float32."""
    rng = np.random.default_rng(seed)
    x = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    g = np.exp(rng.uniform(-np.log(gamma), np.log(gamma), size=(len(x), 1, 1)))  # (N, 1, 1)
    x = x ** g + rng.normal(0.0, noise, size=x.shape)  # (N, 8, 8)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def heldout_digits(images: np.ndarray, purpose: str = "ch07_applications/heldout") -> np.ndarray:
    """The held-out images as graded: perturbed with the course's secret seed for ``purpose``."""
    return perturb(images, seed_for(purpose))
