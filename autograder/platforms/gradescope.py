"""Gradescope: an autograder zip for one assignment, and the script that runs inside it.

Building (the instructor, in this repository)::

    python -m autograder gradescope ch04_lstm [--out ch04_lstm_gradescope.zip]
        [--late-policy late_policy.yml | --late-penalty 10 --late-days 3 --grace-minutes 15]
        [--visible-tests visible] [--hidden-tests after_due_date] [--score-visibility after_due_date]

The zip follows Gradescope's autograder specification: ``setup.sh`` and ``run_autograder`` at its root;
Gradescope unpacks it into ``/autograder/source``, puts the student's files in ``/autograder/submission``
and ``/autograder/submission_metadata.json``, runs ``run_autograder`` from ``/autograder`` and reads
``/autograder/results/results.json``. The zip holds this ``autograder`` package as it is at build time
(every module, the sandbox included, and this assignment's hidden tests, never another assignment's),
``rnnlib``, the assignment's release notebooks, ``requirements.txt`` + ``constraints.txt`` (the course's
tested versions, exactly) and a ``gradescope.json`` with the instructor's settings (visibility, the late
policy, which hidden tests mirror the notebook's visible tests).

Running (inside Gradescope's container; ``AUTOGRADER_ROOT`` moves ``/autograder`` elsewhere, as the
tests do)::

    python -m autograder.platforms.gradescope run [--root /autograder]

finds the notebooks in the upload (at its top, in folders, or in a ``.zip``, extracted safely), lays them
out as nbgrader's ``submitted/<student>/<assignment>/`` and calls the grader's documented command line,
``python -m autograder grade SUBMITTED --out RESULTS --assignment A``, then writes Gradescope's
``results.json`` from the grader's (the CONTRACT's keys plus ``subtotals``, ``notebooks``, ``isolation``),
applying the course's late policy (``autograder.platforms.latepolicy``).

Its rooms: gradescope_zip.py (building the zip), gradescope_upload.py (reading the upload, bounded),
gradescope_results.py (Gradescope's results.json), and this module (the run inside Gradescope). Every name
these offered stays importable from here.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .gradescope_results import VISIBILITY, _lateness, _most_hidden, results_page
from .gradescope_upload import MAX_DEPTH, MAX_ENTRIES, MAX_FILE_BYTES, MAX_TOTAL_BYTES, Upload, collect
from .gradescope_zip import (BUNDLE_PACKAGES, CONFIG, PKG, PYPI_INDEX, REPO, RUN_AUTOGRADER, SETUP_SH, TORCH_INDEX,
                             _norm, build_zip, bundle_requirements, command, course_pins, mirror_tests)

__all__ = ["BUNDLE_PACKAGES", "CONFIG", "MAX_DEPTH", "MAX_ENTRIES", "MAX_FILE_BYTES", "MAX_TOTAL_BYTES", "PKG",
           "PYPI_INDEX", "REPO", "RUN_AUTOGRADER", "SETUP_SH", "TORCH_INDEX", "VISIBILITY", "Upload", "_lateness",
           "_most_hidden", "_norm", "build_zip", "bundle_requirements", "collect", "command", "course_pins", "main",
           "mirror_tests", "results_page", "run"]


# ============================================================================ running inside Gradescope
def _lock(root: Path, *paths: Path) -> None:
    """As root (Gradescope's harness): the submission, its metadata and the results folder root-only,
    before any student code runs (the grader's container mode runs student code as another uid)."""
    if os.geteuid() != 0:
        return
    for p in paths:
        try:
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            os.chown(p, 0, 0)
            os.chmod(p, 0o700 if stat.S_ISDIR(st.st_mode) else 0o600)
        except OSError:
            pass


def _write(root: Path, doc: dict) -> None:
    (root / "results").mkdir(parents=True, exist_ok=True)
    tmp = root / "results" / "results.json.part"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(root / "results" / "results.json")


def _elapsed(start: float) -> float:
    try:
        return max(0.0, time.time() - float(os.environ["AUTOGRADER_T0"]))
    except (KeyError, ValueError):
        return time.monotonic() - start



def run(root: Path) -> int:
    start = time.monotonic()
    root = Path(root)
    cfg = json.loads((REPO / CONFIG).read_text())
    assignment = cfg["assignment"]
    score_vis = cfg.get("score_visibility") or "visible"
    try:
        metadata = json.loads((root / "submission_metadata.json").read_text())
    except (OSError, ValueError):
        metadata = {}
    users = [u for u in metadata.get("users") or [] if isinstance(u, dict)]
    ident = str((users[0].get("sid") or users[0].get("email") or users[0].get("id")) if users else "student")
    student = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in ident) or "student"
    _lock(root, root / "submission", root / "submission_metadata.json", root / "results")
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        tmp = Path(tmp)
        up = collect(root / "submission", tmp / "submitted" / student / assignment)
        print(f"gradescope: {assignment}: notebooks {up.files}; ignored {up.ignored}; refused {up.refused}; "
              f"expected {cfg['notebooks']}", flush=True)
        cmd = [sys.executable, "-m", "autograder", "grade", str(tmp / "submitted"), "--out", str(tmp / "results"),
               "--assignment", assignment, "--no-progress"]
        r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(r.stdout[-20000:], flush=True)  # /autograder/results/stdout: instructors only
        res_file = tmp / "results" / student / assignment / "results.json"
        if r.returncode != 0 or not res_file.is_file():
            last = (r.stdout.strip().splitlines() or ["(no output)"])[-1][:500]
            _write(root, {"score": 0.0, "execution_time": round(_elapsed(start), 3), "visibility": score_vis,
                          "output": "The autograder could not run on this submission (a fault of the grader, "
                                    "not of your code). Your instructor can see the log; please tell them.",
                          "stdout_visibility": "hidden",
                          "tests": [{"name": "For instructors: the grader did not run", "status": "failed",
                                     "output": last, "visibility": "hidden"}]})
            return 1
        result = json.loads(res_file.read_text())
    try:
        lat = _lateness(cfg, metadata, ident)
    except ValueError as e:  # a policy the bundle could not read: grade, say so to the instructor
        print(f"gradescope: late policy not applied: {e}", flush=True)
        lat = None
    doc = results_page(result, cfg, up, lat, None)
    doc["execution_time"] = round(_elapsed(start), 3)
    _write(root, doc)
    print(f"gradescope: results.json written {doc['execution_time']:.2f} s after run_autograder started",
          flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autograder.platforms.gradescope")
    ap.add_argument("command", choices=["run"])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")))
    a = ap.parse_args(argv)
    return run(a.root)



if __name__ == "__main__":
    sys.exit(main())
