"""No solution code and no hidden-test text reaches what students or readers get."""
import json
import re

import pytest

from conftest import REPO
from autograder.testkit import manifest

# Idioms too generic to reveal anything (a dtype conversion of an argument).
GENERIC = re.compile(r"^\w+ = np\.(asarray|array)\(\w+, dtype=np\.float(32|64)\)$")
MARKERS = re.compile(r"BEGIN (SOLUTION|HIDDEN TESTS)|END (SOLUTION|HIDDEN TESTS)")


def solution_lines() -> set[str]:
    """Distinctive lines from inside every solution region of solutions/ (normalised)."""
    lines = set()
    for nb in (REPO / "solutions").rglob("*.ipynb"):
        for c in json.load(open(nb))["cells"]:
            src = "".join(c["source"])
            for block in re.findall(r"### BEGIN SOLUTION(.*?)### END SOLUTION", src, flags=re.S):
                for line in block.splitlines():
                    s = _norm(line)
                    if len(s) >= 24 and not s.startswith("#") and not GENERIC.match(s):
                        lines.add(s)
    return lines


def hidden_test_files():
    """Every hidden test and every helper they use (the test kit, its reference code)."""
    yield from (REPO / "autograder" / "tests").rglob("*.py")
    yield from (REPO / "autograder" / "testkit").rglob("*.py")


def hidden_test_lines() -> set[str]:
    lines = set()
    for f in hidden_test_files():
        # reference code (testkit/reference) shares its signatures with the released stubs, by design
        skip = ("def ", "class ") if "reference" in f.parts else ()
        for line in f.read_text().splitlines():
            s = _norm(line)
            if len(s) >= 40 and not s.startswith(("#", "import", "from", "def test_", '"""', "@graded", *skip)):
                lines.add(s)
    return lines


def _norm(line: str) -> str:
    return " ".join(line.strip().split())


def _texts(paths):
    """(path, whitespace-normalised text); a notebook's text is its cells' sources."""
    for p in paths:
        if p.suffix == ".ipynb":
            text = " ".join("".join(c["source"]) for c in json.load(open(p))["cells"])
        else:
            text = p.read_text(errors="replace")
        yield p, " ".join(text.split())


def _student_and_reader_files():
    """The scope, from chapters.yml: every chapter's page and released notebooks, and everything else a
    reader or student gets (the book's other pages and experiments, the course library)."""
    for c in manifest.chapters():
        yield REPO / "book" / f"{c['id']}.md"
        for nb in c.get("notebooks", {}):
            yield REPO / "exercises" / c["id"] / f"{nb}.ipynb"
    chapter_pages = {f"{c}.md" for c in manifest.chapter_ids()}
    yield from (p for p in (REPO / "book").rglob("*.md") if p.name not in chapter_pages)
    yield from (REPO / "book").rglob("*.py")
    yield from (REPO / "rnnlib").rglob("*.py")


def test_scope_covers_every_chapter():
    files = set(_student_and_reader_files())
    assert all(p.exists() for p in files), [str(p) for p in files if not p.exists()]
    assert set((REPO / "exercises").rglob("*.ipynb")) <= files, "released notebooks outside chapters.yml"
    assert any("testkit" in str(f) for f in hidden_test_files())


def test_no_markers_in_exercises_or_book():
    bad = [str(p.relative_to(REPO)) for p, t in _texts(_student_and_reader_files()) if MARKERS.search(t)]
    assert not bad, f"solution or hidden-test markers in: {bad}"


def test_no_solution_code_in_exercises_book_or_library():
    sol = solution_lines()
    assert len(sol) > 20, "the leak check found too few solution lines to be meaningful"
    for p, text in _texts(_student_and_reader_files()):
        hits = [s for s in sol if s in text]
        assert not hits, f"{p.relative_to(REPO)} contains solution code: {hits[:3]}"


def test_no_hidden_test_text_in_exercises_or_book():
    hidden = hidden_test_lines()
    assert len(hidden) > 10
    for p, text in _texts(_student_and_reader_files()):
        hits = [s for s in hidden if s in text]
        assert not hits, f"{p.relative_to(REPO)} contains hidden-test text: {hits[:3]}"


def test_built_html_has_no_solution_or_hidden_test(built_book):
    import html as htmlmod

    sol, hidden = solution_lines(), hidden_test_lines()
    pages = list(built_book.rglob("*.html")) + list(built_book.rglob("*.ipynb")) + list(built_book.rglob("*.md"))
    assert pages
    for p in pages:
        raw = p.read_text(errors="replace")
        text = " ".join(htmlmod.unescape(re.sub(r"<[^>]+>", "", raw)).split())
        assert not MARKERS.search(text), f"{p.relative_to(built_book)} holds solution markers"
        hits = [s for s in sol if s in text] + [s for s in hidden if s in text]
        assert not hits, f"{p.relative_to(built_book)} contains solution or hidden-test text: {hits[:3]}"
