"""Results into nbgrader's gradebook (``python -m autograder gradebook RESULTS_DIR``), as ``nbgrader
autograde`` would have left it: the submission and its timestamp, the notebooks cleaned by nbgrader's own
preprocessors into ``autograded/``, every grade cell's score and review flag, answer-cell comments, the
late penalty. See nbgrader_bridge.py for the whole picture.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import nbformat

from ..core import notebook as nbmod
from ..core import classrun
from . import latepolicy
from .nbgrader_course import (_cell_map, _course_dir, _is_test_cell, _missing_assignments, _points_by_function,
                              _results_docs, _sync_due_dates, _write_penalty, add_assignments, course,
                              course_policy)


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

