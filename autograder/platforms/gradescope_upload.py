"""Reading what a student uploaded to Gradescope: every notebook at the top of the upload, in folders, or in
a ``.zip`` (extracted by name only: never a path outside it, never a link), the shallowest copy of each name;
never following a link, never opening a FIFO, bounded in count, depth and size. What was not read, and why,
is kept to be said on the results page.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# Reading an upload: bounded, whatever it holds.
MAX_FILE_BYTES = 50 * 1024 * 1024   # one notebook (the grader's own limit)
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # every notebook read from the upload, zips included
MAX_ENTRIES = 2000                  # files and folders looked at, zip members included
MAX_DEPTH = 8


@dataclass
class Upload:
    """What the student uploaded, as the grader will see it."""

    files: dict = field(default_factory=dict)    # name in the graded folder -> where it came from
    ignored: list = field(default_factory=list)  # "where: why", notebooks not passed to the grader
    refused: list = field(default_factory=list)  # "where: why", files not read at all
    others: list = field(default_factory=list)   # every other file (to say what the upload held)
    total: int = 0
    entries: int = 0
    truncated: bool = False


def _read_bounded(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        total += len(b)
        if total > limit:
            raise OSError(f"larger than {limit >> 20} MiB")
        chunks.append(b)


def _from_zip(up: Upload, where: str, data_fd: int, depth: int, pending: list) -> None:
    """The notebooks inside one uploaded zip: names only (never a path, never a link), bounded."""
    with os.fdopen(os.dup(data_fd), "rb") as fh:
        try:
            z = zipfile.ZipFile(fh)
            infos = z.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            up.refused.append(f"{where}: not a zip file that can be read ({e})")
            return
        if len(infos) + up.entries > MAX_ENTRIES:
            up.refused.append(f"{where}: holds {len(infos)} entries (the limit is {MAX_ENTRIES}): not opened")
            return
        for info in infos:
            up.entries += 1
            name = info.filename
            label = f"{where}: {name}"
            parts = [p for p in re.split(r"[/\\]+", name) if p]
            if info.is_dir():
                continue
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                up.refused.append(f"{label}: a path outside the zip: not extracted")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                up.refused.append(f"{label}: a symbolic link: not extracted")
                continue
            base = parts[-1] if parts else ""
            if any(p.startswith(".") or p == "__MACOSX" for p in parts) or ".ipynb_checkpoints" in parts:
                continue
            if base.lower().endswith(".zip"):
                up.ignored.append(f"{label}: a zip inside a zip is not opened")
                continue
            if not base.endswith(".ipynb"):
                up.others.append(label)
                continue
            if info.flag_bits & 0x1:
                up.refused.append(f"{label}: encrypted: not extracted")
                continue
            if info.file_size > MAX_FILE_BYTES or up.total + info.file_size > MAX_TOTAL_BYTES:
                up.refused.append(f"{label}: {info.file_size >> 20} MiB: over the limit, not extracted")
                continue
            try:
                with z.open(info) as m:
                    data = m.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError) as e:
                up.refused.append(f"{label}: could not be extracted ({e})")
                continue
            if len(data) > MAX_FILE_BYTES or up.total + len(data) > MAX_TOTAL_BYTES:
                up.refused.append(f"{label}: over the size limit, not extracted")
                continue
            up.total += len(data)
            pending.append((depth + len(parts), label, base, data))


def _from_file(up: Upload, where: str, name: str, fd: int, is_zip: bool, depth: int, pending: list) -> None:
    """One file of the upload, opened without following a link: a zip's notebooks, or a notebook's bytes;
    bounded."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        up.refused.append(f"{where}: not a regular file: not read")
    elif is_zip:
        if os.fstat(fd).st_size > MAX_TOTAL_BYTES:
            up.refused.append(f"{where}: larger than {MAX_TOTAL_BYTES >> 20} MiB: not opened")
        else:
            _from_zip(up, where, fd, depth, pending)
    else:
        try:
            data = _read_bounded(fd, min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - up.total))
        except OSError as err:
            up.refused.append(f"{where}: {err}: not read")
            return
        up.total += len(data)
        pending.append((depth, where, name, data))


def collect(submission: Path, dest: Path) -> Upload:
    """Copy every notebook of the upload (at its top, in folders, in .zip files) into ``dest`` under its
    own file name, the shallowest of each name; never following a link, never opening a FIFO, bounded in
    count, depth and size. Which copy the grader grades is the grader's choice (the exact name, else the
    most complete copy); what was not copied is in ``ignored`` / ``refused``."""
    up = Upload()
    dest.mkdir(parents=True, exist_ok=True)
    pending: list = []  # (depth, where, name, bytes)

    def walk(d: Path, rel: str, depth: int):
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            up.refused.append(f"{rel or '.'}: a folder that could not be listed ({e.strerror})")
            return
        for e in entries:
            if up.entries >= MAX_ENTRIES:
                if not up.truncated:
                    up.refused.append(f"{rel}{e.name} and what follows: the upload holds more than "
                                      f"{MAX_ENTRIES} entries")
                up.truncated = True
                return
            up.entries += 1
            where = f"{rel}{e.name}"
            if e.name.startswith(".") or e.name == "__MACOSX" or e.name == ".ipynb_checkpoints":
                continue
            try:
                st = os.lstat(e.path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                up.refused.append(f"{where}: a symbolic link: not read")
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth >= MAX_DEPTH:
                    up.refused.append(f"{where}/: folders deeper than {MAX_DEPTH} levels are not read")
                else:
                    walk(Path(e.path), where + "/", depth + 1)
                continue
            is_nb, is_zip = e.name.endswith(".ipynb"), e.name.lower().endswith(".zip")
            if not (is_nb or is_zip):
                up.others.append(where)
                continue
            if not stat.S_ISREG(st.st_mode):
                up.refused.append(f"{where}: not a regular file: not read")
                continue
            try:
                fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as err:
                up.refused.append(f"{where}: could not be read ({err.strerror})")
                continue
            try:
                _from_file(up, where, e.name, fd, is_zip, depth, pending)
            finally:
                os.close(fd)

    if submission.is_dir():
        walk(submission, "", 0)
    taken: dict[str, str] = {}
    for depth, where, name, data in sorted(pending, key=lambda p: (p[0], p[1])):
        if name in taken:
            up.ignored.append(f"{where}: another file of the same name was used ({taken[name]})")
            continue
        taken[name] = where
        (dest / name).write_bytes(data)
        up.files[name] = where
    return up
