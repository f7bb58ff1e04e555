"""nbgrader's course as nbgrader reads it, and the gradebook kept in step with it: the course directory,
the assignments the gradebook lacks (added as ``nbgrader generate_assignment`` does), the course's late
policy written into the gradebook (due dates, extensions, each notebook's ``late_submission_penalty``).
See nbgrader_bridge.py for the whole picture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from ..core import notebook as nbmod
from ..core import runner
from . import latepolicy
from .nbgrader_points import cell_functions, hidden_points, together_names


# --------------------------------------------------------------------- nbgrader's course, as nbgrader reads it
def tools_on_path(env: dict | None = None) -> dict:
    """Put this interpreter's own scripts directory first on PATH (default: this process's environment).

    nbgrader runs ``alembic`` from PATH when it creates a gradebook, and we run nbgrader; from a shell
    where the virtual environment is not activated neither would be found."""
    env = os.environ if env is None else env
    want = []
    for d in (os.path.dirname(os.path.abspath(sys.executable)), sysconfig.get_path("scripts")):
        if d and os.path.isdir(d) and d not in want:
            want.append(d)
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in want]
    env["PATH"] = os.pathsep.join(want + rest)
    return env


def default_course_root() -> Path:
    """The course nbgrader would use: the current directory when it holds nbgrader_config.py, else this
    repository."""
    cwd = Path.cwd()
    return cwd if (cwd / "nbgrader_config.py").is_file() else runner.REPO


def course(course_root: Path | None = None):
    """(traitlets config, nbgrader CourseDirectory) of the course at course_root."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(course_root or default_course_root()).resolve()
    if not (root / "nbgrader_config.py").is_file():
        raise SystemExit(f"autograder: no nbgrader_config.py in {root} (run from the course's root)")
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    if "root" not in cfg.CourseDirectory:
        cfg.CourseDirectory.root = str(root)
    tools_on_path()
    return cfg, CourseDirectory(config=cfg)


def _course_dir(cd, step: str, student: str, assignment: str) -> Path:
    return Path(cd.format_path(step, student, assignment))


def _cell_map(cd, assignment: str, notebook: str, _cache: dict = {}) -> dict[str, list[str]]:
    """{test cell grade_id: graded names it checks}, from the release (else the source) notebook."""
    for step in (cd.release_directory, cd.source_directory):
        path = _course_dir(cd, step, ".", assignment) / f"{notebook}.ipynb"
        if path.is_file():
            key = (str(path), path.stat().st_mtime_ns)
            if key not in _cache:
                together = together_names(hidden_points(assignment).get(notebook, {}))
                _cache[key] = cell_functions(nbmod.load_notebook(path), together)
            return _cache[key]
    return {}


def _points_by_function(doc: dict) -> tuple[dict[str, float], dict[str, list[dict]]]:
    pts: dict[str, float] = {}
    tests: dict[str, list[dict]] = {}
    for t in doc["tests"]:
        pts[t["function"]] = pts.get(t["function"], 0.0) + float(t["points"])
        tests.setdefault(t["function"], []).append(t)
    return pts, tests


def _is_test_cell(gradecell, mapping: dict) -> bool:
    """A visible test cell whose points our hidden tests award (not an answer cell, not manual)."""
    return gradecell.name in mapping and gradecell.cell_type == "code" and bool(mapping[gradecell.name])


def _results_docs(results: Path):
    for rpath in sorted(Path(results).glob("*/*/results.json")):
        try:
            doc = json.loads(rpath.read_text())
            doc["student_id"], doc["assignment"], doc["tests"]  # noqa: B018 (the CONTRACT keys)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"autograder: skipped {rpath}: not a readable results.json ({e})", file=sys.stderr)
            continue
        yield rpath, doc


def _missing_assignments(cd, names) -> list[str]:
    """Assignments nbgrader's gradebook lacks, or holds without notebooks: ``nbgrader db assignment add
    NAME --duedate=...`` before the first load creates an empty one, whose every total would be 0/0. The
    submissions an earlier load hung on such an empty assignment hold no grade; they are removed so that
    the notebooks can be added (the due date is kept)."""
    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    with Gradebook(cd.db_url, cd.course_id) as gb:
        for a in sorted(set(names)):
            try:
                asg = gb.find_assignment(a)
            except MissingEntry:
                missing.append(a)
                continue
            if not asg.notebooks:
                for sub in list(asg.submissions):
                    gb.remove_submission(a, sub.student.id)
                missing.append(a)
    return missing


def add_assignments(cd, course_root: Path, names) -> None:
    """Put assignments into nbgrader's gradebook as ``nbgrader generate_assignment`` does, generating into
    a temporary folder: the committed release (exercises/) is neither needed nor touched."""
    for a in names:
        src = _course_dir(cd, cd.source_directory, ".", a)
        if not src.is_dir():
            raise SystemExit(f"autograder: assignment {a} is not in nbgrader's gradebook and has no source "
                             f"folder {src} to add it from")
        with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
            r = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", a,
                                f"--CourseDirectory.release_directory={tmp}", "--log-level=ERROR"],
                               cwd=str(course_root), env=tools_on_path(dict(os.environ)),
                               capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SystemExit(f"autograder: could not add {a} to nbgrader's gradebook "
                             f"(nbgrader generate_assignment: {last})")
        print(f"autograder: added {a} to nbgrader's gradebook (from {src})", file=sys.stderr)


# ------------------------------------------------------------------------------------ the late policy
def course_policy(cfg, path=None, root=None) -> latepolicy.LatePolicy:
    """The course's late policy (``late_policy.yml``, see autograder/latepolicy.py); without one, nbgrader's
    ``LateSubmissionPlugin.penalty_method`` mapped onto it: ``zero`` = any late work scores 0, ``none`` =
    late work flagged only (due dates then come from nbgrader's gradebook)."""
    try:
        pol = latepolicy.find(path, root)
    except latepolicy.LatePolicyError as e:
        raise SystemExit(f"autograder: {e}") from None
    if pol.source == "none":
        method = cfg.LateSubmissionPlugin.get("penalty_method", "none") if "LateSubmissionPlugin" in cfg else "none"
        if method == "zero":
            pol = latepolicy.LatePolicy.from_dict({"zero_after_days": 0}, source="nbgrader_config.py (zero)")
    return pol


def _utc(t):
    """nbgrader keeps times as naive UTC."""
    from datetime import timezone

    if t is None:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def _naive_utc(t):
    from datetime import timezone

    return t.astimezone(timezone.utc).replace(tzinfo=None)


def _lateness(policy, a: str, sid: str, sub) -> latepolicy.Lateness:
    """The one late-policy function on the gradebook's timestamp: the policy's due date (and extension)
    when it has one for ``a``, else nbgrader's (with nbgrader's extension)."""
    ts = _utc(sub.timestamp) if sub is not None else None
    if a in policy.due_dates or sub is None:
        return policy.assess(a, sid, ts)
    return policy.assess(a, sid, ts, due=_utc(sub.duedate))


def _sync_due_dates(gb, policy, names, warn) -> None:
    """The policy's due dates into nbgrader's gradebook (formgrader shows the same lateness); a due date only
    nbgrader knows is used for the gradebook, with a warning that grades.csv and the exports miss it."""
    for a in sorted(set(names)):
        asg = gb.find_assignment(a)
        if a in policy.due_dates:
            want = _naive_utc(policy.due_dates[a])
            if asg.duedate != want:
                if asg.duedate is not None:
                    warn(f"{a}: nbgrader's due date {asg.duedate} UTC replaced by late_policy.yml's {want} UTC")
                gb.update_or_create_assignment(a, duedate=want)
        elif asg.duedate is not None:
            warn(f"{a}: the due date {asg.duedate} UTC is in nbgrader's gradebook only: the gradebook and the "
                 "combined CSV apply it, grades.csv, the exports and the report do not; put it in "
                 "late_policy.yml (docs/publishing.md)")


def _write_penalty(gb, policy, a: str, sid: str) -> None:
    """The policy's penalty on the submission's total, shared among its notebooks in proportion to their
    scores (``nbgrader export`` subtracts the sum); nbgrader's extension set from the policy's."""
    sub = gb.find_submission(a, sid)
    if a in policy.due_dates:
        due, mine = policy.due_dates[a], policy.due_for(a, sid)
        ext = mine - due if mine is not None and due is not None and mine > due else None
        if sub.extension != ext:
            sub.extension = ext
        gb.db.commit()
        gb.db.expire_all()
        sub = gb.find_submission(a, sid)
    lat = _lateness(policy, a, sid, sub)
    nbs = list(sub.notebooks)
    scores = [max(0.0, float(nb.score or 0.0)) for nb in nbs]
    raw = sum(scores)
    total = lat.penalty(raw, float(sub.max_score or 0.0))
    each = [lat.penalty(sc, float(nb.max_score or 0.0)) for nb, sc in zip(nbs, scores)]
    if abs(sum(each) - total) > 1e-6:  # a penalty of the maximum, floored at 0: shared in proportion
        each = [total * sc / raw if raw > 0 else 0.0 for sc in scores]
    for nb, pen in zip(nbs, each):
        nb.late_submission_penalty = pen if lat.late else None  # nbgrader: None when not late
    gb.db.commit()

