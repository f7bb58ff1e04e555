"""Reading a submitted notebook safely and deciding which code runs.

The released notebook (``exercises/<assignment>/<name>.ipynb``) is the trusted template. From the
student's notebook we take only the *solution* cells (by nbgrader ``grade_id``) and any cells the
student added; read-only cells are always run from the release, so editing, deleting, duplicating
or re-typing them changes nothing, and each such change is reported. Test cells are not run: the
hidden tests replace them (a failing visible test must not stop the rest of the notebook).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

SKIP_TAG = "skip-grading"  # on a release cell: never executed by the grader (long training runs)


class BadNotebook(Exception):
    pass


def load_notebook(path: Path) -> dict:
    """A trusted notebook (the release) from disk."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadNotebook(f"cannot read {path.name}: {e.strerror}") from None
    return parse_notebook(raw, path.name)


def parse_notebook(raw: bytes, name: str) -> dict:
    """Parse a notebook strictly: valid JSON, nbformat 4, a list of cells with string sources."""
    if not raw.strip():
        raise BadNotebook(f"{name} is empty")
    try:
        nb = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        raise BadNotebook(f"{name} is not valid JSON (line {e.lineno}): re-download it or "
                          "restore it from a checkpoint") from None
    except (RecursionError, MemoryError, ValueError):
        raise BadNotebook(f"{name} is not a readable notebook (nested too deeply or too large)") from None
    path = Path(name)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise BadNotebook(f"{path.name} is not a Jupyter notebook (no list of cells)")
    if nb.get("nbformat") != 4:
        raise BadNotebook(f"{path.name} has nbformat {nb.get('nbformat')!r}; version 4 is required "
                          "(save it from a current Jupyter)")
    for c in nb["cells"]:
        if not isinstance(c, dict) or c.get("cell_type") not in ("code", "markdown", "raw"):
            raise BadNotebook(f"{path.name} has a malformed cell")
        src = c.get("source", "")
        if isinstance(src, list):
            if not all(isinstance(s, str) for s in src):
                raise BadNotebook(f"{path.name} has a malformed cell source")
            c["source"] = "".join(src)
        elif not isinstance(src, str):
            raise BadNotebook(f"{path.name} has a malformed cell source")
    return nb


def nbgrader_meta(cell: dict) -> dict:
    md = cell.get("metadata")
    m = md.get("nbgrader") if isinstance(md, dict) else None
    return m if isinstance(m, dict) else {}


def tags(cell: dict) -> list:
    md = cell.get("metadata")
    t = md.get("tags") if isinstance(md, dict) else None
    return t if isinstance(t, list) else []


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


@dataclass
class Plan:
    cells: list[tuple[int, str]] = field(default_factory=list)  # (student cell index, source)
    solution_cells: dict[str, int] = field(default_factory=dict)  # grade_id -> student cell index
    notes: list[str] = field(default_factory=list)  # integrity findings, shown in feedback
    source_by_index: dict[int, str] = field(default_factory=dict)


def plan(release: dict, student: dict) -> Plan:
    rel_cells = release["cells"]
    rel_by_id = {}
    for r, c in enumerate(rel_cells):
        gid = nbgrader_meta(c).get("grade_id")
        if gid:
            rel_by_id[gid] = (r, c)
    p = Plan()
    emitted: set[str] = set()
    seen: set[str] = set()
    next_release = 0  # release position up to which locked cells have been considered

    def emit_locked_until(r_stop: int):
        nonlocal next_release
        for r in range(next_release, r_stop):
            c = rel_cells[r]
            m = nbgrader_meta(c)
            gid = m.get("grade_id")
            if c["cell_type"] == "code" and gid and gid not in emitted and not m.get("solution") \
                    and not m.get("grade") and SKIP_TAG not in tags(c):
                p.cells.append((-1 - r, c["source"]))  # negative: a release cell, not the student's
                emitted.add(gid)
                if gid not in seen:
                    p.notes.append(f"read-only cell `{gid}` was missing from your notebook; the original was run")
        next_release = max(next_release, r_stop)

    for i, c in enumerate(student["cells"]):
        if c["cell_type"] != "code":
            continue
        gid = nbgrader_meta(c).get("grade_id")
        if gid in rel_by_id:
            r, rc = rel_by_id[gid]
            rm = nbgrader_meta(rc)
            if gid in seen:
                p.notes.append(f"cell `{gid}` appears more than once; only the first copy counts")
                continue
            seen.add(gid)
            emit_locked_until(r)
            if rm.get("solution"):
                p.cells.append((i, c["source"]))
                p.solution_cells[gid] = i
                p.source_by_index[i] = c["source"]
            elif rm.get("grade"):
                if _norm(c["source"]) != _norm(rc["source"]):
                    p.notes.append(f"test cell `{gid}` was edited; the hidden tests do not depend on it")
            else:
                if _norm(c["source"]) != _norm(rc["source"]):
                    p.notes.append(f"read-only cell `{gid}` was edited; the original was run instead")
                if SKIP_TAG not in tags(rc) and gid not in emitted:
                    p.cells.append((-1 - r, rc["source"]))
                    emitted.add(gid)
            next_release = max(next_release, r + 1)
        else:
            # A cell the student added (helpers, experiments): it runs as written.
            p.cells.append((i, c["source"]))
            p.source_by_index[i] = c["source"]
    emit_locked_until(len(rel_cells))
    for gid, (r, rc) in rel_by_id.items():
        if nbgrader_meta(rc).get("solution") and gid not in p.solution_cells:
            p.notes.append(f"answer cell `{gid}` is missing (deleted, or its metadata was removed)")
    return p


def solution_ids(release: dict) -> list[str]:
    return [nbgrader_meta(c)["grade_id"] for c in release["cells"]
            if nbgrader_meta(c).get("solution") and nbgrader_meta(c).get("grade_id")]


