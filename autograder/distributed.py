"""Grading beyond one machine: the same jobs on a Dask distributed cluster (``--scheduler ADDRESS``).

The client reads each submission's notebooks and sends their bytes with the job, so workers need no
shared filesystem for submissions; each worker process keeps one sandboxed host and grades from a
private scratch copy; results come back as plain JSON and the client writes them (atomically, as in
a local run). Workers need this repository (the engine, the hidden tests and exercises/) and its
virtual environment, at any path; start them with ``dask worker ADDRESS --nthreads 1``.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

_HOST = None


def _grade_remote(student: str, assignment: str, files: dict, h: str, limits, isolation_hint: str) -> dict:
    """Runs on a Dask worker: one submission, from its notebooks' bytes, to a results document."""
    global _HOST
    from . import runner, sandbox
    from .engine import Host

    if _HOST is None:
        _HOST = Host(limits)
    tmp = Path(tempfile.mkdtemp(prefix="autograder-dask-"))
    try:
        folder = tmp / student / assignment
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / Path(name).name).write_bytes(data)
        out = tmp / "out"
        doc = runner.grade_one_to_disk(lambda: _HOST, tmp, out, student, assignment, h, limits,
                                       sandbox.isolation_description())
        doc["worker"] = __import__("socket").gethostname()
        return doc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_on_dask(scheduler: str, submitted: Path, out: Path, todo, limits, progress: bool) -> None:
    from distributed import Client, as_completed

    from . import feedback, runner

    client = Client(scheduler, timeout="30s")
    try:
        futures = []
        for s, a, h in todo:
            folder = submitted / s / a
            files = {p.name: p.read_bytes() for p in sorted(folder.glob("*.ipynb"))} if folder.is_dir() else {}
            futures.append(client.submit(_grade_remote, s, a, files, h, limits, "", pure=False,
                                         key=f"grade-{s}-{a}-{h}"))
        bar = None
        if progress and futures:
            from tqdm import tqdm
            bar = tqdm(total=len(futures), unit="submission", file=sys.stderr, leave=False)
        for fut in as_completed(futures):
            doc = fut.result()
            s, a = doc["student_id"], doc["assignment"]
            runner.atomic_write(out / s / a / "feedback.md", feedback.render_markdown(doc))
            runner.atomic_write(out / s / a / "results.json", json.dumps(doc, indent=1))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        client.close()
