"""Grading beyond one machine: the same jobs on a Dask distributed cluster (``--scheduler ADDRESS``).

The client reads each submission safely (``runner.read_submission``) and sends its notebooks' bytes
with the job, so workers need no shared filesystem; each worker thread keeps one zygote and grades in
fresh children (nothing of one submission survives into the next: see ``student_side.py``); result
documents come back as plain data and the client writes them. Workers need this repository (the
engine, the hidden tests and ``exercises/``) and its virtual environment, at any path; start them
with ``PYTHONPATH=. .venv/bin/dask worker ADDRESS --nthreads 1`` from the repository.
"""
from __future__ import annotations

from .classrun import RunError


_LIMITED = False


def _grade_remote(student, assignment, sub, h, limits) -> dict:
    """Runs on a Dask worker: one submission, from its notebooks' bytes, to a results document."""
    global _LIMITED
    from . import runner, worker

    if not _LIMITED:  # this process parses student bytes: bound its memory, as a local worker does
        try:
            worker._limit_memory()
        except (OSError, ValueError):
            pass
        _LIMITED = True

    return runner.grade_job(student, assignment, sub, h, limits)


def run_on_dask(scheduler: str, jobs, limits, on_done) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RunError("--scheduler needs the 'distributed' package (pip install distributed)") from None
    try:
        client = Client(scheduler, timeout="15s")
    except Exception as e:  # OSError, TimeoutError, ValueError for a malformed address...
        raise RunError(f"cannot reach the Dask scheduler at {scheduler} "
                       f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else 'no answer'})") from None
    try:
        futures = [client.submit(_grade_remote, j.student, j.assignment, j.sub, j.h, limits, pure=False,
                                 key=f"grade-{j.student}-{j.assignment}-{j.h}") for j in jobs]
        for fut in as_completed(futures):
            try:
                doc = fut.result()
            except Exception as e:
                raise RunError(f"a Dask worker failed ({type(e).__name__}: {str(e)[:200]})") from None
            on_done(doc)
    finally:
        client.close()
