"""Steps 1 and 2 of grading a submission: the student's folder read safely (no symlink followed, no
FIFO opened, a size limit), and the choice of which file is the notebook."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import notebook

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


# --------------------------------------------------------------------- 1. reading safely
@dataclass
class Submitted:
    """A student's folder for one assignment, as bytes: {file name: bytes}, and what was refused."""

    files: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)  # file name -> why it was not read


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def safe_read(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a regular file, never following a symlink and never blocking on a FIFO."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path.name} is {_kind(st.st_mode)}, not a notebook file")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path.name} is {_kind(st.st_mode)}, not a notebook file")
        if st.st_size > limit:
            raise OSError(f"{path.name} is {st.st_size >> 20} MiB; the limit is {limit >> 20} MiB")
        chunks, total = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            total += len(b)
            if total > limit:
                raise OSError(f"{path.name} is larger than {limit >> 20} MiB")
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_submission(submitted: Path, student: str, assignment: str) -> Submitted:
    out = Submitted()
    folder = submitted / student / assignment
    for p in (submitted / student, folder):
        try:
            st = os.lstat(p)
        except OSError:
            return out
        if not stat.S_ISDIR(st.st_mode):
            out.refused[p.name] = f"{p.name} is {_kind(st.st_mode)}, not a folder: nothing in it was read"
            return out
    with os.scandir(folder) as it:
        for e in sorted(it, key=lambda e: e.name):
            if not e.name.endswith(".ipynb") or e.name.startswith("."):
                continue
            try:
                out.files[e.name] = safe_read(Path(e.path))
            except OSError as err:
                out.refused[e.name] = str(err) if not err.errno else f"{e.name} could not be read ({err.strerror})"
    return out


# ----------------------------------------------------------------- 2. choosing the notebook
def _completeness(nb: dict, release: dict | None) -> int:
    """How many answer cells hold something other than the released stub."""
    if release is None:
        return 0
    stubs = {notebook.nbgrader_meta(c).get("grade_id"): notebook._norm(c["source"]) for c in release["cells"]
             if notebook.nbgrader_meta(c).get("solution")}
    n = 0
    for c in nb["cells"]:
        gid = notebook.nbgrader_meta(c).get("grade_id")
        if gid in stubs and notebook._norm(c["source"]) != stubs[gid]:
            n += 1
    return n


def choose_notebook(sub: Submitted, nb: str, release: dict | None):
    """(file name, parsed notebook or BadNotebook, notes). The exact name wins; otherwise the copy
    that answers most cells of this notebook (ties: the one that holds most of its answer cells,
    then the name); the copies not graded are named."""
    exact = f"{nb}.ipynb"
    notes = []
    if exact in sub.refused:
        return exact, notebook.BadNotebook(sub.refused[exact]), notes
    if exact in sub.files:
        try:
            parsed = notebook.parse_notebook(sub.files[exact], exact)
        except notebook.BadNotebook as e:
            parsed = e
        others = sorted(n for n in sub.files if n != exact and _same_notebook(sub, n, release))
        if others:
            notes.append(f"graded {exact}; also submitted and not graded: {', '.join(others)}")
        return exact, parsed, notes
    if release is None:
        return None, None, notes
    want = set(notebook.solution_ids(release))
    cands = []
    for name, raw in sub.files.items():
        try:
            parsed = notebook.parse_notebook(raw, name)
        except notebook.BadNotebook:
            continue
        ids = {notebook.nbgrader_meta(c).get("grade_id") for c in parsed["cells"]}
        if want & ids:
            cands.append((-_completeness(parsed, release), -len(want & ids), name, parsed))
    if not cands:
        return None, None, notes
    cands.sort(key=lambda c: c[:3])
    _, _, name, parsed = cands[0]
    notes.append(f"{exact} not found; graded {name}, which holds its answer cells (renamed?)"
                 + (f"; not graded: {', '.join(c[2] for c in cands[1:])}" if len(cands) > 1 else ""))
    return name, parsed, notes


def _same_notebook(sub: Submitted, name: str, release: dict | None) -> bool:
    if release is None:
        return False
    try:
        parsed = notebook.parse_notebook(sub.files[name], name)
    except notebook.BadNotebook:
        return False
    ids = {notebook.nbgrader_meta(c).get("grade_id") for c in parsed["cells"]}
    return bool(set(notebook.solution_ids(release)) & ids)


