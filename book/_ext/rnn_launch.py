"""Launch buttons that open where students work (a Sphinx extension of this book; _config.yml loads it).

sphinx-book-theme points a page's Colab and Binder buttons at the page's own source. For a chapter page
that is its MyST markdown (book/chXX_name.md), which Colab cannot open (it opens .ipynb only) and
Binder shows as text. Here a chapter page's launch buttons open instead the chapter's exercise
notebooks (exercises/chXX_name/*.ipynb, the runnable notebooks that the table of contents lists under
the chapter, with their setup cell), one Colab and one Binder entry per notebook; a page without
exercises (the front page, notation, chapters 8-9, the appendix) gets no launch button (its download
button still gives the page as .ipynb). Exercise pages keep the theme's buttons: their source is the
.ipynb itself. tests/test_publish.py checks that every launch link opens a notebook of the student
edition that runs.
"""
from __future__ import annotations

from pathlib import PurePosixPath


def exercise_notebooks(found_docs, pagename: str) -> list[str]:
    """The exercise notebooks (docnames, without .ipynb) that a page's launch buttons open."""
    parts = PurePosixPath(pagename).parts
    if parts[:1] == ("exercises",):
        return [pagename]
    if parts[:1] != ("book",) or len(parts) != 2:
        return []
    return sorted(d for d in found_docs if d.startswith(f"exercises/{parts[1]}/"))


def retarget(app, pagename, templatename, context, doctree):
    buttons = context.get("header_buttons") or []
    group = next((b for b in buttons if b.get("label") == "launch-buttons"), None)
    if group is None or pagename.startswith("exercises/"):
        return
    targets = exercise_notebooks(app.env.found_docs, pagename)
    if not targets:
        buttons.remove(group)
        return
    source = PurePosixPath(app.env.doc2path(pagename, base=False)).as_posix()  # book/ch04_lstm.md
    new = []
    for nb in targets:
        name = nb.rsplit("/", 1)[-1]
        for b in group["buttons"]:
            url = b.get("url", "")
            if b.get("type") != "link" or source not in url:
                continue
            at = url.rindex(source)
            new.append(dict(b, text=f"{b['text']}: {name}", tooltip=f"Open the exercise {name}.ipynb in {b['text']}",
                            url=url[:at] + nb + ".ipynb" + url[at + len(source):]))
    group["buttons"] = new
    group["tooltip"] = "Open this chapter's exercise notebooks"


def setup(app):
    app.connect("html-page-context", retarget, priority=600)  # after the theme's (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
