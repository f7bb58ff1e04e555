"""Keeping nbgrader in step: test-cell points, and loading results into nbgrader's gradebook.

Each visible test cell sits under the answer cells it checks. A test cell's nbgrader points are the
hidden points of the graded names answered since the previous test cell, so nbgrader's totals (its
gradebook, ``nbgrader export``, formgrader, even ``nbgrader autograde``) have the same maximum as
``python -m autograder grade``, and loading our results gives each cell exactly what its functions
earned.

    python -m autograder sync-points          # rewrite test-cell points in solutions/ (then make release)
    python -m autograder gradebook RESULTS_DIR [--submitted DIR]   # results -> nbgrader's gradebook

Loading results does to the gradebook what ``nbgrader autograde`` does, through nbgrader's own code
wherever it has some: the student and submission (with the ``timestamp.txt`` that ``nbgrader collect``
and ``zip_collect`` write, read by nbgrader's ``CourseDirectory``), the submitted notebooks cleaned by
nbgrader's own sanitising preprocessors into ``autograded/`` (read-only cells restored, outputs
cleared, each test cell's output replaced by our results for the functions it checks), every grade
cell's ``auto_score`` and ``needs_manual_grade`` by nbgrader's rule, and answer-cell comments. Manual
grades given in formgrader are never touched; ``combined_totals`` adds them to ours, as ``nbgrader export``
does. See docs/grading-nbgrader.md.

The late penalty is the course's one late policy (autograder/latepolicy.py, ``late_policy.yml``), the same
function on the same timestamp as grades.csv and every export: its due dates and extensions are written
into the gradebook (so formgrader shows the same lateness) and its penalty into each submitted notebook's
``late_submission_penalty``, which ``nbgrader export`` subtracts. nbgrader's own methods (``none``,
``zero``) cannot express a percent per day, a cap or a grace period, so nbgrader's ``AssignLatePenalties``
is not used. Without a ``late_policy.yml``, nbgrader's settings are the policy: its due dates, and
``penalty_method = "zero"`` read as "any late work scores 0" (``none``: late work is only flagged); the
gradebook and the combined CSV then apply them, but ``grade``'s grades.csv and the exports do not know
them, and a warning says so.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

import nbformat

from . import notebook as nbmod
from . import classrun, latepolicy, runner


def cell_functions(nb: dict, together=()) -> dict[str, list[str]]:
    """{test cell grade_id: [graded names answered above it, since the previous test cell]}; the names
    in ``together`` (``<notebook>:together``, the whole chain's check: no answer cell) go to the last."""
    out, pending = {}, []
    for c in nb["cells"]:
        m = nbmod.nbgrader_meta(c)
        if m.get("solution") and m.get("grade_id"):
            pending.append(m["grade_id"])
        elif m.get("grade") and m.get("grade_id"):
            out[m["grade_id"]] = pending
            pending = []
    if together and out:
        last = list(out)[-1]
        out[last] = out[last] + list(together)
    return out


def _together(pts: dict) -> list[str]:
    return [f for f in pts if f.endswith(":together")]


def hidden_points(assignment: str) -> dict[str, dict[str, float]]:
    """{notebook: {graded name: hidden points}}."""
    pts: dict[str, dict[str, float]] = {}
    for nbt in runner.load_assignment(assignment):
        for t in nbt.tests:
            pts.setdefault(nbt.notebook, {}).setdefault(t.function, 0.0)
            pts[nbt.notebook][t.function] += t.points
    return pts


def expected_cell_points(assignment: str, nb_name: str, nb: dict) -> dict[str, float]:
    pts = hidden_points(assignment).get(nb_name, {})
    return {cell: float(sum(pts.get(f, 0.0) for f in funcs)) for cell, funcs in cell_functions(nb, _together(pts)).items()}


def sync_points(solutions: Path = runner.REPO / "solutions", chapters=None) -> list[str]:
    """Rewrite the points of every test cell in solutions/; returns what changed."""
    changed = []
    for a in chapters or runner.assignments():
        for path in sorted((solutions / a).glob("*.ipynb")):
            raw = nbformat.read(str(path), as_version=4)
            want = expected_cell_points(a, path.stem, raw)
            dirty = False
            for c in raw["cells"]:
                m = c.get("metadata", {}).get("nbgrader", {})
                gid = m.get("grade_id")
                if m.get("grade") and gid in want and m.get("points") != want[gid]:
                    changed.append(f"{path.relative_to(solutions.parent)}: {gid} {m.get('points')} -> {want[gid]:g}")
                    m["points"] = want[gid]
                    dirty = True
            if dirty:
                nbformat.write(raw, str(path))
    return changed


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
                together = _together(hidden_points(assignment).get(notebook, {}))
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


# ------------------------------------------------------------------------ results -> nbgrader's gradebook
def _test_cell_output(funcs: list[str], tests: dict[str, list[dict]], earned: float, max_points: float):
    """What formgrader and nbgrader's feedback show under a visible test cell: our hidden tests' results."""
    lines = [f"Hidden tests for {', '.join(funcs)}: {earned:g} / {max_points:g} points"]
    for f in funcs:
        for t in tests.get(f, []):
            status = t["status"].upper() if t["status"] != "passed" else "PASS"
            msg = f": {t['message']}" if t.get("message") else ""
            lines.append(f"  {status:7s} {t['name']} ({float(t['points']):g}/{float(t['max_points']):g}){msg}")
    return nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n")


def _student_file(folder: Path | None, doc: dict, notebook: str) -> Path | None:
    """The file our grader graded for this notebook (it may have been renamed), else the exact name."""
    if folder is None or not folder.is_dir():
        return None
    rep = doc.get("notebooks", {}).get(notebook) if isinstance(doc.get("notebooks"), dict) else None
    name = rep.get("file") if isinstance(rep, dict) else None
    for cand in ([folder / name] if isinstance(name, str) and "/" not in name else []) + [folder / f"{notebook}.ipynb"]:
        if cand.is_file():
            return cand
    return None


def _sanitized(path: Path, cfg, resources: dict):
    """The submitted notebook through nbgrader autograde's own sanitising preprocessors: outputs cleared,
    duplicate ids removed, kernelspec and every read-only and test cell restored from the source."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                        OverwriteKernelspec)

    nbmod.load_notebook(path)  # the grader's strict checks first (raises BadNotebook)
    nb = nbformat.read(str(path), as_version=4)
    for cls in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
        nb, resources = cls(config=cfg)(nb, resources)
    return nb


def _timestamp(cd, folder: Path | None):
    """The submission time nbgrader autograde would store (CourseDirectory.get_existing_timestamp)."""
    if folder is None or not folder.is_dir():
        return None
    try:
        return cd.get_existing_timestamp(str(folder))
    except (ValueError, AttributeError, OSError):  # nbgrader 0.9.5 then calls a `fail` it does not have
        raise ValueError(f"{folder / 'timestamp.txt'} is not a time nbgrader can read "
                         "(write e.g. 2026-10-01 17:00:00 UTC)") from None


def _load_submission(gb, cfg, cd, doc: dict, folder: Path | None, warn, policy=None) -> None:
    from nbgrader import utils as nbu
    from nbgrader.api import MissingEntry

    sid, a = doc["student_id"], doc["assignment"]
    assignment = gb.find_assignment(a)
    gb.update_or_create_student(sid)
    # nbgrader autograde's own steps: the timestamp collect/zip_collect wrote, read by CourseDirectory.
    ts = _timestamp(cd, folder)
    if ts:
        gb.update_or_create_submission(a, sid, timestamp=ts)
    else:
        gb.update_or_create_submission(a, sid)
    pts, tests = _points_by_function(doc)
    staged, present = {}, []
    for nbrec in assignment.notebooks:
        name = nbrec.name
        mapping = _cell_map(cd, a, name)
        snb = gb.find_submission_notebook(name, a, sid)
        nb = None
        if folder is not None:
            path = _student_file(folder, doc, name)
            if path is not None:
                resources = {"unique_key": name, "nbgrader": {"notebook": name, "assignment": a, "student": sid,
                                                               "db_url": cd.db_url}}
                try:
                    nb = _sanitized(path, cfg, resources)
                except Exception as e:  # noqa: BLE001 (any unreadable notebook is treated as missing)
                    warn(f"{sid}/{a}/{path.name}: nbgrader cannot read it ({type(e).__name__}); "
                         "its cells get 0, as for a missing notebook")
        if nb is None and folder is not None:
            # nbgrader autograde: a notebook that was not submitted scores 0, needing no manual grade.
            for g in snb.grades:
                g.auto_score = 0
                g.needs_manual_grade = False
            continue
        cells = {}
        for c in (nb.cells if nb is not None else []):
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid and gid not in cells:
                cells[gid] = c
        for g in snb.grades:
            cell = cells.get(g.name)
            gc = g.cell
            if _is_test_cell(gc, mapping):
                earned = float(sum(pts.get(f, 0.0) for f in mapping[g.name]))
                g.auto_score = min(float(g.max_score), earned)
                hidden_max = sum(float(t["max_points"]) for f in mapping[g.name] for t in tests.get(f, []))
                if abs(float(g.max_score) - hidden_max) > 1e-9:
                    warn(f"{a}/{name}: test cell {g.name} is worth {g.max_score:g} in nbgrader, its hidden tests "
                         "a different total: run `python -m autograder sync-points` and `make release`")
                if cell is not None:
                    cell.outputs = [_test_cell_output(mapping[g.name], tests, g.auto_score, g.max_score)]
            elif cell is None:
                continue  # nbgrader's SaveAutoGrades never sees a cell the notebook lacks: left as it was
            elif cell.cell_type == "code" and not nbu.is_solution(cell) and nbu.is_grade(cell):
                g.auto_score = None  # a test cell no hidden test stands for: a person decides
                warn(f"{a}/{name}: test cell {g.name} checks no graded name; left for manual grading")
            else:
                g.auto_score = nbu.determine_grade(cell)[0]  # answer cells: 0 if untouched, else manual
            # nbgrader's SaveAutoGrades rule, exactly.
            g.needs_manual_grade = (g.manual_score is not None) or (g.auto_score is None)
        for gid, cell in cells.items():
            if nbu.is_solution(cell) or nbu.is_task(cell):
                try:
                    comment = gb.find_comment(gid, name, a, sid)
                except MissingEntry:
                    continue
                unchanged = cell.metadata.nbgrader.get("checksum") == nbu.compute_checksum(cell)
                comment.auto_comment = "No response." if unchanged and not nbu.is_task(cell) else None
        gb.db.commit()
        if nb is not None:
            staged[name] = nb
            present.append(name)
    gb.db.commit()
    gb.db.expire_all()
    _write_penalty(gb, policy or latepolicy.LatePolicy.none(), a, sid)  # the course's one late policy
    gb.db.expire_all()
    if folder is not None:
        _write_autograded(cd, sid, a, folder, staged)


def _write_autograded(cd, sid: str, a: str, folder: Path, staged: dict) -> None:
    """autograded/<student>/<assignment>/ as nbgrader autograde leaves it (the submission's other files,
    timestamp.txt included, the source's other files, the cleaned notebooks), swapped in whole."""
    from nbgrader.utils import find_all_files

    dest = _course_dir(cd, cd.autograded_directory, sid, a)
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = dest.parent / f".{a}.autograder-{os.getpid()}.tmp"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        src = _course_dir(cd, cd.source_directory, ".", a)
        for base in (folder, src):
            if base.is_dir():
                for f in find_all_files(str(base), list(cd.ignore) + ["*.ipynb"]):
                    out = stage / os.path.relpath(f, base)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(f, out)
        for name, nb in staged.items():
            nbformat.write(nb, str(stage / f"{name}.ipynb"))
        old = None
        if dest.exists():
            old = dest.parent / f".{a}.old-{os.getpid()}.tmp"
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        stage.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _state_path(cd) -> Path:
    return Path(cd.root) / ".nbgrader" / "autograder-gradebook.json"


def _digest(rpath: Path, folder: Path | None, cd, duedate, policy=None) -> str:
    """What a loaded submission depends on: its results, its timestamp, the due date, the late policy, the
    gradebook."""
    h = hashlib.sha256(rpath.read_bytes())
    pol = json.dumps(policy.to_dict(), sort_keys=True, default=str) if policy is not None else ""
    h.update(f"{cd.db_url}|{duedate}|{pol}".encode())
    if folder is not None and (folder / "timestamp.txt").is_file():
        h.update((folder / "timestamp.txt").read_bytes())
    return h.hexdigest()[:24]


def import_results(results: Path, submitted: Path | None = None, course_root: Path | None = None,
                   force: bool = False, late_policy=None) -> int:
    """Load every results.json under RESULTS_DIR into nbgrader's gradebook, as ``nbgrader autograde``
    would have left it (see the module's docstring). ``submitted`` defaults to the course's submitted/
    folder. A submission whose results and timestamp have not changed since it was last loaded is left as
    it is (like ``nbgrader autograde`` without ``--force``), so manual grading is not put back into
    "needs manual grade". Returns how many results the gradebook now holds."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import exc as sa_exc

    cfg, cd = course(course_root)
    policy = course_policy(cfg, late_policy, cd.root)
    root = Path(cd.root)
    if submitted is None:
        default = _course_dir(cd, cd.submitted_directory, ".", ".")
        submitted = default if default.is_dir() else None
    if submitted is None:
        print("autograder: no submitted/ folder: scores are loaded, but without timestamps or autograded/ "
              "copies (formgrader lists such students as not autograded); pass --submitted DIR",
              file=sys.stderr)
    docs = list(_results_docs(results))
    bad = []
    for _rpath, d in docs:  # unreadable timestamps stop the load before anything is written
        try:
            if submitted is not None:
                _timestamp(cd, Path(submitted) / d["student_id"] / d["assignment"])
        except ValueError as e:
            bad.append(str(e))
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise SystemExit(f"autograder: nothing loaded: {'; '.join(bad[:3])}{more}")
    add_assignments(cd, root, _missing_assignments(cd, [d["assignment"] for _, d in docs]))
    state_path = _state_path(cd)
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    warned: set[str] = set()

    def warn(msg: str) -> None:
        if msg not in warned:
            warned.add(msg)
            print(f"autograder: {msg}", file=sys.stderr)

    n = unchanged = 0
    with Gradebook(cd.db_url, cd.course_id) as gb, warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy's autoflush warnings; they are not ours to show
        warnings.filterwarnings("ignore", category=sa_exc.SAWarning)
        _sync_due_dates(gb, policy, [d["assignment"] for _, d in docs], warn)
        for rpath, doc in docs:
            sid, a = doc["student_id"], doc["assignment"]
            folder = Path(submitted) / sid / a if submitted is not None else None
            if folder is not None and not folder.is_dir():
                warn(f"{sid}/{a}: no folder {folder}: scores loaded without its timestamp or autograded/ copy")
                folder = None
            key = f"{sid}/{a}"
            digest = _digest(rpath, folder, cd, gb.find_assignment(a).duedate, policy)
            if not force and state.get(key) == digest and (
                    folder is None or _course_dir(cd, cd.autograded_directory, sid, a).is_dir()):
                try:
                    gb.find_submission(a, sid)
                    # manual grades may have changed the total since: the penalty follows it (it never
                    # touches a grade or a review flag)
                    _write_penalty(gb, policy, a, sid)
                    n += 1
                    unchanged += 1
                    continue
                except MissingEntry:
                    pass
            _load_submission(gb, cfg, cd, doc, folder, warn, policy)
            state[key] = digest
            n += 1
    state_path.parent.mkdir(parents=True, exist_ok=True)
    classrun.atomic_write(state_path, json.dumps(state, indent=1, sort_keys=True))
    if unchanged:
        print(f"autograder: {unchanged} unchanged since they were last loaded (left as they are; "
              "force=True reloads them)", file=sys.stderr)
    return n


# ---------------------------------------------------------------- one set of totals: ours + manual grades
def combined_rows(results_dir: Path, course_root: Path | None = None, late_policy=None) -> list[dict]:
    """One row per results.json: our scores for the test cells, nbgrader's gradebook for everything a
    person graded (manual scores, overrides, extra credit) and the late penalty, added up the way
    ``nbgrader export`` does (score = max(0, raw - penalty); max = the assignment's nbgrader maximum), the
    penalty being the course's late policy on the gradebook's timestamp, computed afresh on that total."""
    from nbgrader.api import Gradebook, MissingEntry

    cfg, cd = course(course_root)
    policy = course_policy(cfg, late_policy, cd.root)
    rows, stale = [], set()
    with Gradebook(cd.db_url, cd.course_id) as gb:
        for _rpath, doc in _results_docs(results_dir):
            sid, a = doc["student_id"], doc["assignment"]
            pts, _tests = _points_by_function(doc)
            try:
                asg = gb.find_assignment(a)
            except MissingEntry:
                asg = None
            try:
                sub = gb.find_submission(a, sid) if asg is not None else None
            except MissingEntry:
                sub = None
            raw, mx, penalty, ts, late = float(doc["score"]), float(doc["max_score"]), 0.0, None, 0.0
            lat = latepolicy.lateness_of(doc, policy)
            if asg is not None:
                raw, mx = 0.0, float(asg.max_score)
                for nbrec in asg.notebooks:
                    mapping = _cell_map(cd, a, nbrec.name)
                    grades = {}
                    if sub is not None:
                        grades = {g.name: g for g in gb.find_submission_notebook(nbrec.name, a, sid).grades}
                    for cell in list(nbrec.grade_cells) + list(nbrec.task_cells):
                        g = grades.get(cell.name)
                        extra = float(g.extra_credit or 0.0) if g is not None else 0.0
                        if g is not None and g.manual_score is not None:
                            s = float(g.manual_score)
                        elif _is_test_cell(cell, mapping):
                            s = min(float(cell.max_score), float(sum(pts.get(f, 0.0) for f in mapping[cell.name])))
                            if g is not None and g.auto_score is not None and abs(g.auto_score - s) > 1e-9:
                                stale.add(f"{sid}/{a}")
                        elif g is not None and g.auto_score is not None:
                            s = float(g.auto_score)
                        else:
                            s = 0.0
                        raw += s + extra
                if sub is not None:
                    lat = _lateness(policy, a, sid, sub)
                    ts = sub.timestamp
            penalty = lat.penalty(raw, mx)
            late = lat.minutes_late * 60.0
            if sub is not None and abs(float(sub.late_submission_penalty or 0.0) - penalty) > 1e-6:
                stale.add(f"{sid}/{a}")
            rows.append({"student_id": sid, "assignment": a, "score": max(0.0, raw - penalty), "max_score": mx,
                         "raw_score": raw, "late_submission_penalty": penalty,
                         "timestamp": ts.isoformat() if ts is not None else "", "seconds_late": late})
    if stale:
        print(f"autograder: nbgrader's gradebook holds older scores or late penalties for {len(stale)} submission(s) "
              f"({', '.join(sorted(stale)[:5])}{', ...' if len(stale) > 5 else ''}); these totals use the "
              "results, nbgrader export will not until you run `python -m autograder gradebook`",
              file=sys.stderr)
    return rows


def combined_totals(results_dir: Path, course_root: Path | None = None,
                    late_policy=None) -> dict[tuple[str, str], tuple[float, float]]:
    """{(student, assignment): (score, max_score)}: the totals ``nbgrader export`` and formgrader show once
    the results are loaded (``import_results``) and manual grading is done."""
    return {(r["student_id"], r["assignment"]): (r["score"], r["max_score"])
            for r in combined_rows(results_dir, course_root, late_policy)}


COMBINED_COLUMNS = ["student_id", "assignment", "score", "max_score", "raw_score", "late_submission_penalty",
                    "timestamp", "seconds_late"]


def write_combined_csv(path: Path, results_dir: Path, course_root: Path | None = None, late_policy=None) -> int:
    """Write the combined totals as CSV (grades.csv's four columns first, then the raw score, nbgrader's
    late penalty, the submission timestamp and how late it was); returns the number of rows."""
    rows = sorted(combined_rows(results_dir, course_root, late_policy), key=lambda r: (r["student_id"], r["assignment"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COMBINED_COLUMNS)
    for r in rows:
        w.writerow([r["student_id"], r["assignment"], classrun._num(r["score"]), classrun._num(r["max_score"]),
                    classrun._num(r["raw_score"]), classrun._num(r["late_submission_penalty"]), r["timestamp"],
                    classrun._num(r["seconds_late"])])
    classrun.atomic_write(Path(path), buf.getvalue())
    return len(rows)
