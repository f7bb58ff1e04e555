"""A class run: which submissions, a lock on --out, workers, signals, and writing every result.

``RESULTS_DIR`` holds, besides the CONTRACT's files: ``grader.log`` (faults of the grader, for the
instructor) and ``timings.jsonl`` (seconds per graded submission; volatile, so not in results.json,
which a regrade reproduces byte for byte).

Only this process writes under ``--out``; workers (local processes or Dask) return result documents.
Every file is written atomically (a temporary file in the same folder, fsync, rename), so a run
stopped at any point leaves whole files or none. ``grades.csv`` is always rebuilt from every
``results.json`` under ``--out``, whatever ``--assignment`` or ``--only`` selected.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import feedback, runner
from .engine import Limits


class RunError(Exception):
    """The run itself cannot go on (an I/O error on --out, an unreachable scheduler): one line."""


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


@dataclass
class Job:
    student: str
    assignment: str
    sub: runner.Submitted
    h: str


@dataclass
class Summary:
    submissions: int = 0
    graded: int = 0
    skipped: int = 0
    seconds: float = 0.0
    warnings: list = field(default_factory=list)
    isolation: set = field(default_factory=set)  # the isolation levels this run's results were graded with


# ------------------------------------------------------------------------------ writing
def atomic_write(path: Path, text: str) -> None:
    """Whole or nothing: a temporary file beside ``path``, fsync, rename. Raises RunError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            data = text.encode("utf-8", "replace")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise RunError(f"cannot write {path}: {e.strerror or e}") from None


def write_result(out: Path, doc: dict) -> None:
    """results.json, feedback.md and the instructor's log for one submission."""
    traces = doc.pop("_traces", [])
    seconds = doc.pop("_seconds", None)
    folder = out / doc["student_id"] / doc["assignment"]
    if traces:
        append_log(out, "grader fault(s):\n" + "\n".join(traces))
    try:
        md = feedback.render_markdown(doc)
    except Exception as e:  # never lose a result over its feedback
        md = None
        doc.setdefault("feedback_error", f"{type(e).__name__}")
        append_log(out, f"{doc['student_id']}/{doc['assignment']}: feedback.md could not be rendered: {e!r}")
    text = json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=False)
    if md is not None:
        atomic_write(folder / "feedback.md", md)
    atomic_write(folder / "results.json", text)
    if seconds is not None:  # volatile, so kept out of results.json (which is the same on every regrade)
        try:
            with open(out / "timings.jsonl", "a") as f:
                f.write(json.dumps({"student_id": doc["student_id"], "assignment": doc["assignment"],
                                    "seconds": seconds, "notebooks": len(doc.get("notebooks", {}))}) + "\n")
        except OSError:
            pass


def append_log(out: Path, msg: str) -> None:
    try:
        with open(out / "grader.log", "a", encoding="utf-8", errors="replace") as f:
            f.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}\n")
    except OSError:
        pass


def rebuild_grades_csv(out: Path) -> int:
    """grades.csv from every results.json under ``out``; returns the number of rows."""
    rows = []
    for p in sorted(out.glob("*/*/results.json")):
        try:
            r = json.loads(p.read_text(encoding="utf-8"))
            rows.append((str(r["student_id"]), str(r["assignment"]), float(r["score"]), float(r["max_score"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student_id", "assignment", "score", "max_score"])
    for s, a, sc, mx in sorted(rows):
        w.writerow([s, a, _num(sc), _num(mx)])
    atomic_write(out / "grades.csv", buf.getvalue())
    return len(rows)


def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 4)


# ------------------------------------------------------------------------------ the lock
class OutLock:
    """An exclusive lock on --out (flock: released by the kernel when a run dies, so a lock left by a
    killed run is simply taken over)."""

    def __init__(self, out: Path, wait: bool):
        self.path = out / ".autograder.lock"
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise RunError(f"cannot write {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            try:
                holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                holder = "?"
            os.close(self.fd)
            raise RunError(f"another run is grading into {out} (pid {holder or '?'}); "
                           "wait for it, or add --wait to queue behind it") from None
        stale = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
        if stale and stale.isdigit() and int(stale) != os.getpid():
            runner.log(f"taking over the lock of an earlier run (pid {stale}) that did not finish")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        try:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
        except OSError:
            pass


def clean_temporaries(out: Path) -> None:
    """Temporary files left by a killed run (never trusted, never read)."""
    for p in list(out.glob(".*.tmp")) + list(out.glob("*/*/.*.tmp")):
        try:
            p.unlink()
        except OSError:
            pass


# -------------------------------------------------------------------------- discovery
def discover(submitted: Path, assignment: str | None, only: list[str] | None, summary: Summary):
    """[(student, assignment)] to consider; every folder that is not graded is reported."""
    known = set(runner.assignments())
    students = []
    with os.scandir(submitted) as it:
        for e in sorted(it, key=lambda e: e.name):
            st = os.lstat(e.path)
            if e.name.startswith("."):
                summary.warnings.append(f"{e.name}: not graded (a name starting with '.' is not a student's folder)")
                continue
            if not stat.S_ISDIR(st.st_mode):
                summary.warnings.append(f"{e.name}: not graded ({runner._kind(st.st_mode)}, not a student's folder)")
                continue
            students.append(e.name)
    if only:
        missing = [s for s in only if s not in students]
        if missing:
            raise RunError(f"--only: no folder for {', '.join(missing)} in {submitted}")
        students = [s for s in students if s in only]
    pairs = []
    for s in students:
        names = []
        with os.scandir(submitted / s) as it:
            for e in sorted(it, key=lambda e: e.name):
                st = os.lstat(e.path)
                if e.name in known and stat.S_ISDIR(st.st_mode):
                    names.append(e.name)
                elif e.name in known:
                    names.append(e.name)  # graded: its tests will say what is wrong
                elif not e.name.startswith("."):
                    summary.warnings.append(f"{s}/{e.name}: not graded (no hidden tests for an assignment of that name)")
        if assignment:
            names = [assignment]  # a student without the folder gets 'missing' for every test
        elif not names:
            summary.warnings.append(f"{s}: not graded (no assignment folder inside)")
        pairs += [(s, a) for a in names]
    return pairs


# ---------------------------------------------------------------------------- the pool
def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)  # Ctrl-C reaches the run, which stops its workers itself


class _Worker:
    def __init__(self):
        from . import worker

        self.codec = worker
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.worker"], stdin=subprocess.PIPE,
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


BACKSTOP = 2 * runner.WATCHDOG_GRACE + 30  # seconds past a submission's budget before its worker is killed


def run_local(jobs: list[Job], workers: int, limits: Limits, on_done) -> None:
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
                    on_done(runner.timeout_document(job.student, job.assignment, job.h, limits))
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


# ---------------------------------------------------------------------------- the run
def grade_class(submitted: Path, out: Path, assignment: str | None = None, workers: int = 1,
                force: bool = False, limits: Limits | None = None, progress: bool = True,
                scheduler: str | None = None, only: list[str] | None = None, wait: bool = False) -> Summary:
    limits = limits or Limits()
    summary = Summary()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create {out}: {e.strerror}") from None
    lock = OutLock(out, wait)
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum, _frame):
        raise Interrupted(signum)

    for s in old:
        signal.signal(s, stop)
    t0 = time.monotonic()
    try:
        clean_temporaries(out)
        pairs = discover(submitted, assignment, only, summary)
        for w in summary.warnings:
            runner.log(w)
        jobs = []
        for s, a in pairs:
            sub = runner.read_submission(submitted, s, a)
            h = runner.submission_hash(sub, a)
            rpath = out / s / a / "results.json"
            if not force and not only and rpath.is_file():
                try:
                    if json.loads(rpath.read_text(encoding="utf-8")).get("submission_hash") == h:
                        continue
                except (OSError, ValueError):
                    pass
            jobs.append(Job(s, a, sub, h))
        summary.submissions, summary.graded, summary.skipped = len(pairs), len(jobs), len(pairs) - len(jobs)
        if any(not (runner.RELEASE_DIR / a).is_dir() for a in {j.assignment for j in jobs}):
            for a in sorted({j.assignment for j in jobs if not (runner.RELEASE_DIR / j.assignment).is_dir()}):
                runner.log(f"WARNING: no release for {a} (exercises/{a}/ is missing): every cell of each "
                           "submission runs as written and read-only cells are not protected")
                append_log(out, f"no release for {a}")
        from . import sandbox

        if not sandbox.bwrap_usable():
            runner.log(sandbox.isolation_description())
            sandbox.lock_secrets([submitted, out])  # as root: root-only before any student code runs
        bar = _bar(progress, len(jobs))

        def on_done(doc):
            if "_unfit" in doc:  # the preflight: this machine cannot grade; nothing was written
                raise RunError(f"cannot grade here: {doc['_unfit']}")
            write_result(out, doc)
            summary.isolation.add(doc.get("isolation", "unknown"))
            if bar is not None:
                bar.update(1)

        if jobs:
            if scheduler:
                from .distributed import run_on_dask

                run_on_dask(scheduler, jobs, limits, on_done)
            else:
                run_local(jobs, max(1, min(workers, len(jobs))), limits, on_done)
        if bar is not None:
            bar.close()
        rebuild_grades_csv(out)  # while the lock is held: the next run waits for a whole file
    except Interrupted as e:
        _finish(out)
        runner.log(f"interrupted ({e}): results written so far are kept; grades.csv rebuilt from them")
        raise
    except RunError:
        _finish(out, quiet=True)  # the first error is the one to read
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        lock.release()
    summary.seconds = time.monotonic() - t0
    return summary


def _finish(out: Path, quiet: bool = False) -> None:
    try:
        rebuild_grades_csv(out)
    except RunError as e:
        if not quiet:
            runner.log(str(e))


def _bar(progress: bool, n: int):
    if not progress or not n:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=n, unit="submission", file=sys.stderr, leave=False)
    except ImportError:
        return None
