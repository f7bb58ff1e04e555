"""Worker pools: where a class run's jobs are graded. The class run (``classrun.grade_class``) picks one
and hands it the jobs and a callback; a pool knows nothing of the run (results, grades.csv, locks).

- ``LocalPool``: worker processes on this machine (``python -m autograder.core.worker``), each keeping
  one zygote and grading in fresh children, with a backstop per worker past every limit.
- ``DaskPool``: the same jobs on a Dask distributed cluster (``--scheduler ADDRESS``). The client reads
  each submission safely (``runner.read_submission``) and sends its notebooks' bytes with the job, so
  workers need no shared filesystem; each worker thread keeps one zygote and grades in fresh children
  (nothing of one submission survives into the next: see ``autograder/sandbox/``); result documents
  come back as plain data and the client writes them. Workers need this repository (the engine, the
  hidden tests and ``exercises/``) and its virtual environment, at any path; start them with
  ``PYTHONPATH=. .venv/bin/dask worker ADDRESS --nthreads 1`` from the repository.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from . import job, runner, worker


class PoolError(Exception):
    """The pool cannot go on (an unreachable scheduler, a failed Dask worker): one line."""



def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)  # Ctrl-C reaches the run, which stops its workers itself


class _Worker:
    def __init__(self):
        self.codec = worker
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.core.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=runner.REPO, preexec_fn=_die_with_parent)
        self.job = None
        self.ready = False

    def give(self, job, limits) -> None:
        self.job = job
        self.since = time.monotonic()
        self.codec.send(self.proc.stdin.fileno(), (job, limits))

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass


BACKSTOP = 2 * job.WATCHDOG_GRACE + 30  # seconds past a submission's budget before its worker is killed


class LocalPool:
    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs, limits, on_done) -> None:
        run_local(jobs, self.workers, limits, on_done)


def run_local(jobs: list, workers: int, limits, on_done) -> None:
    """Grade ``jobs`` on ``workers`` worker processes; ``on_done(doc)`` for each, in this process."""
    import select

    todo = list(reversed(jobs))
    retried: set[int] = set()
    pool = [_Worker() for _ in range(workers)]
    try:
        busy = 0
        while todo or busy:
            for w in pool:
                if w.ready and w.job is None and todo:
                    w.give(todo.pop(), limits)
                    busy += 1
            for i, w in enumerate(pool):  # the last line of defence: a worker stuck past every limit
                if w.job is not None and time.monotonic() - w.since > limits.submission_seconds + BACKSTOP:
                    job = w.job
                    w.kill()
                    pool[i] = _Worker()
                    busy -= 1
                    on_done(job.timeout_document(job.student, job.assignment, job.h, limits))
            fds = {w.proc.stdout.fileno(): w for w in pool}
            ready, _, _ = select.select(list(fds), [], [], 1.0)
            for fd in ready:
                w = fds[fd]
                msg = w.codec.receive(fd)
                if msg is None:  # the worker died (never expected): its job once more, on a new worker
                    job = w.job
                    w.kill()
                    pool[pool.index(w)] = _Worker()
                    if job is not None:
                        busy -= 1
                        if id(job) in retried:
                            on_done(runner.fault_document(job.student, job.assignment, job.h, "unknown",
                                                          "the grading worker died twice on this submission"))
                        else:
                            retried.add(id(job))
                            todo.append(job)
                    continue
                if msg == "ready":
                    w.ready = True
                    continue
                w.job = None
                busy -= 1
                on_done(msg)
    finally:
        for w in pool:
            try:
                w.proc.stdin.close()
            except Exception:
                pass
        for w in pool:
            if w.proc.poll() is None and w.job is not None:
                w.kill()
        for w in pool:
            try:
                w.proc.wait(timeout=15)
            except Exception:
                w.kill()


# ------------------------------------------------------------------ Dask
_LIMITED = False


def _grade_remote(student, assignment, sub, h, limits) -> dict:
    """Runs on a Dask worker: one submission, from its notebooks' bytes, to a results document."""
    global _LIMITED
    if not _LIMITED:  # this process parses student bytes: bound its memory, as a local worker does
        try:
            worker._limit_memory()
        except (OSError, ValueError):
            pass
        _LIMITED = True

    return job.grade_job(student, assignment, sub, h, limits)


class DaskPool:
    def __init__(self, scheduler: str, timeout: float = 15.0):
        self.scheduler, self.timeout = scheduler, timeout

    def run(self, jobs, limits, on_done) -> None:
        run_on_dask(self.scheduler, jobs, limits, on_done, self.timeout)


def run_on_dask(scheduler: str, jobs, limits, on_done, timeout: float = 15.0) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise PoolError("--scheduler needs the 'distributed' package (pip install distributed)") from None
    try:
        client = Client(scheduler, timeout=f"{timeout:g}s")
    except Exception as e:  # OSError, TimeoutError, ValueError for a malformed address...
        raise PoolError(f"cannot reach the Dask scheduler at {scheduler} "
                       f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else 'no answer'})") from None
    try:
        futures = [client.submit(_grade_remote, j.student, j.assignment, j.sub, j.h, limits, pure=False,
                                 key=f"grade-{j.student}-{j.assignment}-{j.h}") for j in jobs]
        for fut in as_completed(futures):
            try:
                doc = fut.result()
            except Exception as e:
                raise PoolError(f"a Dask worker failed ({type(e).__name__}: {str(e)[:200]})") from None
            on_done(doc)
    finally:
        client.close()
