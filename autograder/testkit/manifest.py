"""``chapters.yml``, the one list of chapters, as Python: chapters, their notebooks, graded names,
points and forbidden names. Hidden-test files take their ``FORBIDDEN`` from here:

    FORBIDDEN = forbidden(__name__)      # in autograder/tests/<chapter>/test_<notebook>.py
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "chapters.yml"
KINDS = ("exercises", "book-only")


@lru_cache(maxsize=None)
def load(path: str | None = None) -> dict:
    doc = yaml.safe_load(Path(path or MANIFEST).read_text())
    seen = set()
    for ch in doc["chapters"]:
        if ch.get("kind") not in KINDS:
            raise ValueError(f"chapters.yml: {ch.get('id')}: kind must be one of {KINDS}, not {ch.get('kind')!r}")
        if ch["id"] in seen:
            raise ValueError(f"chapters.yml: {ch['id']} is listed twice")
        seen.add(ch["id"])
        if ch["kind"] == "exercises" and not ch.get("notebooks"):
            raise ValueError(f"chapters.yml: {ch['id']} has exercises but no notebooks")
    return doc


def chapters(kind: str | None = None, path: str | None = None) -> list[dict]:
    return [c for c in load(path)["chapters"] if kind is None or c["kind"] == kind]


def chapter_ids(kind: str | None = None, path: str | None = None) -> list[str]:
    return [c["id"] for c in chapters(kind, path)]


def notebook(chapter: str, nb: str, path: str | None = None) -> dict:
    for c in chapters("exercises", path):
        if c["id"] == chapter:
            if nb not in c["notebooks"]:
                raise KeyError(f"chapters.yml: {chapter} has no notebook {nb!r}")
            return c["notebooks"][nb]
    raise KeyError(f"chapters.yml: no chapter {chapter!r} with exercises")


def forbidden(test_module: str) -> dict[str, list[str]]:
    """The FORBIDDEN dict of ``autograder.tests.<chapter>.test_<notebook>``: {graded name: [names]}."""
    parts = test_module.split(".")
    chapter, nb = parts[-2], parts[-1][len("test_"):]
    return {k: list(v) for k, v in (notebook(chapter, nb).get("forbidden") or {}).items()}
