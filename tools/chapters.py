"""The chapters of the course, from chapters.yml: generate the files that list them, scaffold a new one.

    python tools/chapters.py generate          # rewrite _toc.yml, book/exercises.md's table, chapters.mk
    python tools/chapters.py check             # exit 1 if a generated file is not current
    python tools/chapters.py list [--kind exercises|book-only]
    python tools/chapters.py new ch09_topic --title "9. Topic" [--book-only]   (make new-chapter ID=...)

``new`` scaffolds the four places of a chapter (book page, reference notebook, hidden tests, manifest
entry) with a small working example (one graded function, its visible and hidden tests), then
regenerates the lists. Next: write the chapter, then ``make release CHAPTERS=<id>`` and
``python tools/selfcheck.py <id>`` (CONTRIBUTING.md walks through it).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.testkit import manifest  # noqa: E402

TABLE_BEGIN = "% BEGIN exercises table: generated from chapters.yml by `python tools/chapters.py generate`"
TABLE_END = "% END exercises table"
ID_RE = re.compile(r"^(ch\d\d|appendix)_[a-z][a-z0-9]*$")


# ------------------------------------------------------------------------- generated files
def toc(doc: dict) -> str:
    book = doc["book"]
    out = ["# Table of contents: one part per kind of reader; only these files are built.",
           "format: jb-book", f"root: {book['root']}", "parts:"]

    def part(caption, files, sections=None):
        out.extend([f"  - caption: {caption}", "    chapters:"])
        for f in files:
            out.append(f"      - file: {f}")
            if sections is not None:
                out.append("        sections:")
                out.extend(f"          - file: {s}" for s in sections)

    for p in book.get("front_matter") or []:
        part(p["caption"], p["files"])
    part("Chapters", [f"book/{c['id']}" for c in doc["chapters"]])
    part("Exercises", ["book/exercises"],
         [f"exercises/{c['id']}/{nb}" for c in doc["chapters"] if c["kind"] == "exercises" for nb in c["notebooks"]])
    for p in book.get("back_matter") or []:
        part(p["caption"], p["files"])
    return "\n".join(out) + "\n"


def exercises_table(doc: dict) -> str:
    rows = ["| chapter | notebooks | what you implement |", "|---|---|---|"]
    for c in doc["chapters"]:
        if c["kind"] == "exercises":
            nbs = ", ".join(f"`{nb}`" for nb in c["notebooks"])
            rows.append(f"| {c['title']} | {nbs} | {c.get('summary', '').strip()} |")
    return "\n".join(rows)


def exercises_page(doc: dict, current: str) -> str:
    table = f"{TABLE_BEGIN}\n{exercises_table(doc)}\n{TABLE_END}"
    if TABLE_BEGIN in current and TABLE_END in current:
        i, j = current.index(TABLE_BEGIN), current.index(TABLE_END) + len(TABLE_END)
        return current[:i] + table + current[j:]
    i = current.index("| chapter | notebooks |")  # first generation: replace the hand-written table
    j = current.find("\n\n", i)
    return current[:i] + table + ("\n" if j < 0 else current[j:])


def chapters_mk(doc: dict) -> str:
    ex = " ".join(c["id"] for c in doc["chapters"] if c["kind"] == "exercises")
    book = " ".join(c["id"] for c in doc["chapters"])
    return ("# Generated from chapters.yml by `python tools/chapters.py generate`: do not edit.\n"
            f"CHAPTERS ?= {ex}\nBOOK_CHAPTERS := {book}\n")


def generated(root: Path = REPO) -> dict[Path, str]:
    """{path: the content it must have}, from root/chapters.yml."""
    doc = manifest.load(str(root / "chapters.yml"))
    page = root / "book" / "exercises.md"
    return {root / "_toc.yml": toc(doc), page: exercises_page(doc, page.read_text()),
            root / "chapters.mk": chapters_mk(doc)}


def stale(root: Path = REPO) -> list[str]:
    return [str(p.relative_to(root)) for p, text in generated(root).items()
            if not p.exists() or p.read_text() != text]


def write(root: Path = REPO) -> list[str]:
    changed = stale(root)
    for p, text in generated(root).items():
        p.write_text(text)
    return changed


# ------------------------------------------------------------------------------- scaffold
BOOK_PAGE = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# {title}

What this chapter teaches, in two or three sentences. Cite sources with {{cite:p}}`key` (entries in
`references.bib`), label equations and cite them with {{eq}}`eq-label`.

$$
y = x W^\\top
$$ (eq-{topic}-linear)

Every number in the prose is computed by the page, as below, never typed by hand. No solution code in
the book: show `torch`, autograd or `rnnlib`, never the text of a graded function.

```{{code-cell}} ipython3
import numpy as np

rng = np.random.default_rng(0)
x, w = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
print("output shape:", (x @ w.T).shape)
```
'''

NOTEBOOK_SCRIPT = '''# %% [markdown]
# # {title}: exercises (NumPy)
#
# Implement `{name}` below and run the visible test under it. Your instructor grades it with hidden
# tests too (other shapes, float32 and float64).

# %% [readonly] setup
import numpy as np

# %% [solution] {name}
def {name}(x, w):
    """A linear map without bias.

    Inputs:
    - x: (N, D) inputs
    - w: (H, D) weights, PyTorch's layout

    Returns:
    - out: (N, H), out = x @ w.T, in the dtype of x
    """
    ### BEGIN SOLUTION
    return x @ w.T  # (N, H)
    ### END SOLUTION

# %% [tests] test_{name} points=2
_x, _w = np.arange(6.0).reshape(2, 3), np.ones((4, 3))
_out = {name}(_x, _w)
assert _out.shape == (2, 4), f"{name}: shape {{_out.shape}}, expected (2, 4)"
assert np.allclose(_out, [[3.0] * 4, [12.0] * 4]), f"{name}: wrong values {{_out}}"
print("{name}: visible test passed")
'''

HIDDEN_TESTS = '''"""Hidden tests for solutions/{id}/{nb}.ipynb (book: {id})."""
import numpy as np

from autograder.core.api import check_array, check_unmodified, graded
from autograder.testkit.manifest import forbidden
from autograder.testkit.shapes import arr, dims

FORBIDDEN = forbidden(__name__)  # {{graded name: [names its answer may not use]}}, from chapters.yml


@graded("{name}", points=1)
def test_{name}_parity(sub, rng):
    for N in (None, 1):
        N, D, H = dims(rng, N)
        x, w = arr(rng, N, D), arr(rng, H, D)
        check_array(sub.call("{name}", x, w), x @ w.T, f"{name} output (N={{N}}, D={{D}}, H={{H}})")


@graded("{name}", points=1)
def test_{name}_float32_unmodified(sub, rng):
    N, D, H = dims(rng)
    x, w = arr(rng, N, D, dtype=np.float32), arr(rng, H, D, dtype=np.float32)
    out, args, _ = sub.call_with_args("{name}", x.copy(), w.copy())
    check_array(out, (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.float32),
                "{name} output (float32 inputs)")
    check_unmodified({{"x": x, "w": w}}, dict(zip(["x", "w"], args)), "{name}")
'''

MANIFEST_ENTRY = '''  - id: {id}
    title: "{title}"
    kind: {kind}
'''
MANIFEST_NOTEBOOKS = '''    summary: "`{name}` (the scaffold's example: replace it)"
    notebooks:
      {nb}:
        graded: {{{name}: 2}}
        forbidden: {{{name}: *numpy}}
'''


def new_chapter(cid: str, title: str, book_only: bool = False, root: Path = REPO) -> list[Path]:
    if not ID_RE.match(cid):
        raise SystemExit(f"chapters.py: the id {cid!r} must look like ch09_topic (chNN_ and a lower-case word)")
    if cid in manifest.chapter_ids(path=str(root / "chapters.yml")):
        raise SystemExit(f"chapters.py: {cid} is already in chapters.yml")
    topic = cid.split("_", 1)[1]
    name, nb = f"{topic}_linear", f"{topic}_numpy"
    made = []

    def put(path: Path, text: str):
        if path.exists():
            raise SystemExit(f"chapters.py: {path.relative_to(root)} exists already")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        made.append(path)

    put(root / "book" / f"{cid}.md", BOOK_PAGE.format(title=title, topic=topic))
    if not book_only:
        sys.path.insert(0, str(root / "tools"))
        import nbformat
        from author_notebook import convert

        notebook = convert(NOTEBOOK_SCRIPT.format(title=title, name=name))
        nbformat.validate(notebook)
        put(root / "solutions" / cid / f"{nb}.ipynb", nbformat.writes(notebook) + "\n")
        put(root / "autograder" / "tests" / cid / "__init__.py", "")
        put(root / "autograder" / "tests" / cid / f"test_{nb}.py", HIDDEN_TESTS.format(id=cid, nb=nb, name=name))
    entry = MANIFEST_ENTRY.format(id=cid, title=title, kind="book-only" if book_only else "exercises")
    if not book_only:
        entry += MANIFEST_NOTEBOOKS.format(name=name, nb=nb)
    mpath = root / "chapters.yml"
    mpath.write_text(mpath.read_text().rstrip("\n") + "\n" + entry)
    manifest.load.cache_clear()
    made.append(mpath)
    made += [root / p for p in write(root)]
    return made


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("generate", help="rewrite the files generated from chapters.yml")
    sub.add_parser("check", help="exit 1 if a file generated from chapters.yml is not current")
    ls = sub.add_parser("list", help="chapter ids, one per line")
    ls.add_argument("--kind", choices=manifest.KINDS)
    n = sub.add_parser("new", help="scaffold a chapter: book page, reference notebook, hidden tests, manifest entry")
    n.add_argument("id")
    n.add_argument("--title", required=True)
    n.add_argument("--book-only", action="store_true")
    a = p.parse_args(argv)
    if a.cmd == "generate":
        for f in write():
            print(f"rewrote {f}")
    elif a.cmd == "check":
        bad = stale()
        if bad:
            print(f"not current with chapters.yml: {', '.join(bad)}; run `python tools/chapters.py generate`",
                  file=sys.stderr)
            return 1
    elif a.cmd == "list":
        print("\n".join(manifest.chapter_ids(a.kind)))
    elif a.cmd == "new":
        for f in new_chapter(a.id, a.title, a.book_only):
            print(f"wrote {f.relative_to(REPO)}")
        print(f"next: write book/{a.id}.md" + ("" if a.book_only else
              f" and solutions/{a.id}/, then `make release CHAPTERS={a.id}` and "
              f"`python tools/selfcheck.py {a.id}`"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
