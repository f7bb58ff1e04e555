"""Turn a percent-format script with short nbgrader headers into a solutions/ notebook (authoring aid).

    # %% [markdown]                  a markdown cell
    # %% [readonly] setup             a locked code cell (imports, given helpers)
    # %% [solution] affine_forward    an answer cell; grade_id = the graded name it defines
    # %% [tests] test_affine_forward points=2   a visible, autograded test cell
    # %% [readonly skip-grading] train  a locked cell the grader never runs (long training)

Usage: python tools/author_notebook.py SCRIPT.py solutions/<chapter>/<name>.ipynb
The notebook in solutions/ is the source of truth afterwards; the script is not kept. To edit a
notebook as text later: ``jupytext --to py:percent NB.ipynb`` and back with ``jupytext --to ipynb``
(jupytext keeps the nbgrader metadata), then ``make release``.
"""
from __future__ import annotations

import re
import sys

import nbformat

HEADER = re.compile(r"^# %% \[(markdown|readonly|solution|tests)( skip-grading)?\](?: (\S+))?(?: points=(\S+))?\s*$")


def convert(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    cur = None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            cur = [m.groups(), []]
            nb.cells.append(cur)
        elif cur is not None:
            cur[1].append(line)
    cells = []
    for (kind, skip, gid, points), lines in nb.cells:
        src = "\n".join(lines).strip("\n")
        if kind == "markdown":
            src = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in src.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(src))
            continue
        cell = nbformat.v4.new_code_cell(src)
        meta = {"grade": kind == "tests", "grade_id": gid, "locked": kind != "solution",
                "schema_version": 3, "solution": kind == "solution", "task": False}
        if kind == "tests":
            meta["points"] = float(points or 1)
        cell.metadata["nbgrader"] = meta
        if skip:
            cell.metadata["tags"] = ["skip-grading"]
        cells.append(cell)
    nb.cells = cells
    n_md = 0
    for c in nb.cells:  # stable ids: the grade_id for code cells, md-N for markdown
        if c.cell_type == "markdown":
            n_md += 1
            c.id = f"md-{n_md}"
        else:
            c.id = c.metadata["nbgrader"]["grade_id"]
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    nb = convert(open(src).read())
    nbformat.validate(nb)
    nbformat.write(nb, dst)
