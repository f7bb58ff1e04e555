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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import feedback, pools, runner, submission
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
    sub: submission.Submitted
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


def rebuild_grades_csv(out: Path, submitted: Path | None = None, stamp_late=None) -> int:
    """grades.csv from every results.json under ``out``; returns the number of rows.

    With ``stamp_late`` (a callable ``(result, submission folder or None) -> changed``, e.g. the late
    policy's ``autograder.platforms.latepolicy.stamper``), each results.json first gets its lateness
    (``late``) and its score after the penalty (``final_score``), and grades.csv gets the columns
    ``final_score, late, minutes_late, late_penalty``. With ``submitted``, a result whose submission or
    hidden tests changed since it was graded (e.g. other students after ``--only``) is marked ``stale``
    in grades.csv and named on stderr."""
    rows, stale = [], []
    for p in sorted(out.glob("*/*/results.json")):
        try:
            r = json.loads(p.read_text(encoding="utf-8"))
            s, a = str(r["student_id"]), str(r["assignment"])
            if stamp_late is not None and stamp_late(r, submitted / s / a if submitted is not None else None):
                atomic_write(p, json.dumps(r, indent=1, ensure_ascii=False, sort_keys=False))
            is_stale = False
            if submitted is not None and (submitted / s / a).is_dir() and r.get("submission_hash"):
                try:
                    now = runner.submission_hash(runner.read_submission(submitted, s, a), a)
                    is_stale = now != r["submission_hash"]
                except Exception:  # noqa: BLE001 (an unreadable folder is the grader's to report)
                    is_stale = False
            if is_stale:
                stale.append(f"{s}/{a}")
            late = r.get("late") if isinstance(r.get("late"), dict) else None
            rows.append((s, a, float(r["score"]), float(r["max_score"]), late,
                         float(r.get("final_score", r["score"])), is_stale))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    with_late = any(row[4] is not None and row[4].get("due") for row in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student_id", "assignment", "score", "max_score"]
               + (["final_score", "late", "minutes_late", "late_penalty"] if with_late else [])
               + (["stale"] if stale else []))
    for s, a, sc, mx, late, final, is_stale in sorted(rows, key=lambda t: (t[0], t[1])):
        row = [s, a, _num(sc), _num(mx)]
        if with_late:
            late = late or {}
            row += [_num(final), "yes" if late.get("late") else "no", _num(round(late.get("minutes_late") or 0, 1)),
                    _num(round(sc - final, 4))]
        if stale:
            row.append("yes" if is_stale else "")
        w.writerow(row)
    atomic_write(out / "grades.csv", buf.getvalue())
    if stale:
        runner.log(f"{len(stale)} result(s) are stale (graded before their hidden tests or submission changed; "
                   f"marked in grades.csv): {', '.join(stale[:8])}{', ...' if len(stale) > 8 else ''}; regrade "
                   "them with --force (or --only STUDENT)")
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
                summary.warnings.append(f"{e.name}: not graded ({submission._kind(st.st_mode)}, not a student's folder)")
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
# ---------------------------------------------------------------------------- the run
def grade_class(submitted: Path, out: Path, assignment: str | None = None, workers: int = 1,
                force: bool = False, limits: Limits | None = None, progress: bool = True,
                scheduler: str | None = None, only: list[str] | None = None, wait: bool = False,
                scheduler_timeout: float = 15.0,
                stamp_late=None) -> Summary:
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
        from . import launch

        if not launch.bwrap_usable():
            runner.log(launch.isolation_description())
            launch.lock_secrets([submitted, out])  # as root: root-only before any student code runs
        bar = _bar(progress, len(jobs))

        def on_done(doc):
            if "_unfit" in doc:  # the preflight: this machine cannot grade; nothing was written
                raise RunError(f"cannot grade here: {doc['_unfit']}")
            write_result(out, doc)
            summary.isolation.add(doc.get("isolation", "unknown"))
            if bar is not None:
                bar.update(1)

        if jobs:
            pool = pools.DaskPool(scheduler, scheduler_timeout) if scheduler else pools.LocalPool(max(1, min(workers, len(jobs))))
            try:
                pool.run(jobs, limits, on_done)
            except pools.PoolError as e:
                raise RunError(str(e)) from None
        if bar is not None:
            bar.close()
        rebuild_grades_csv(out, submitted, stamp_late)  # while the lock is held: the next run waits for a whole file
    except Interrupted as e:
        _finish(out, submitted=submitted, stamp_late=stamp_late)
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


def _finish(out: Path, quiet: bool = False, submitted: Path | None = None, stamp_late=None) -> None:
    try:
        rebuild_grades_csv(out, submitted, stamp_late)
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
