"""Gradescope: an autograder zip for one assignment, and the script that runs inside it.

Building (the instructor, in this repository)::

    python -m autograder gradescope ch04_lstm [--out ch04_lstm_gradescope.zip]
        [--late-penalty 10 --late-days 3 --grace-minutes 15] [--visibility visible]

The zip follows Gradescope's autograder specification: ``setup.sh`` and ``run_autograder`` at its root;
Gradescope unpacks it into ``/autograder/source``, puts the student's files in
``/autograder/submission`` and ``/autograder/submission_metadata.json``, runs ``run_autograder`` from
``/autograder`` and reads ``/autograder/results/results.json``. The zip holds this ``autograder``
package as it is at build time (every module, the sandbox included, and this assignment's hidden tests,
never another assignment's), ``rnnlib``, the assignment's release notebooks and a ``gradescope.json``
with the instructor's settings.

Running (inside Gradescope's container; ``AUTOGRADER_ROOT`` moves ``/autograder`` elsewhere, as the
tests do)::

    python -m autograder.gradescope run [--root /autograder]

lays the submission out as nbgrader's ``submitted/<student>/<assignment>/`` and calls the grader's
documented command line, ``python -m autograder grade SUBMITTED --out RESULTS --assignment A``, then
converts its ``results.json`` (the CONTRACT's keys) to Gradescope's format, applying the late policy
when the instructor configured one.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

PKG = Path(__file__).resolve().parent
REPO = PKG.parent
CONFIG = "gradescope.json"
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
# What the grader needs in Gradescope's image, as ranges (the course pins live in requirements.txt).
REQUIREMENTS = """\
# The grader's Python packages in Gradescope's image (setup.sh installs them with the CPU build of torch).
numpy>=1.24,<3
torch>=2.0
matplotlib>=3.6
scikit-learn>=1.3
tqdm
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (Ubuntu).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# bubblewrap: the grader's sandbox for student code (without it the grader falls back to weaker
# isolation and says so in every result's log).
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
/autograder/venv/bin/pip install -q -r /autograder/source/requirements.txt \\
    --extra-index-url https://download.pytorch.org/whl/cpu
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this from /autograder for every submission. AUTOGRADER_ROOT moves the layout elsewhere
# (the course's tests do); AUTOGRADER_PYTHON picks the interpreter (default: the venv setup.sh made).
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/venv/bin/python" ]; then PY="$ROOT/venv/bin/python"; else PY=python3; fi
fi
mkdir -p "$ROOT/results"
cd "$ROOT/source" && exec "$PY" -m autograder.gradescope run --root "$ROOT"
"""


# ============================================================================ building the zip
def _assignments() -> list[str]:
    d = PKG / "tests"
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def _engine_files(assignment: str):
    """Every file of the autograder package as it is now, except other assignments' hidden tests
    (their ``test_*.py``; the helper modules beside them stay, since tests import them across chapters)."""
    for f in sorted(PKG.rglob("*")):
        rel = f.relative_to(PKG)
        if not f.is_file() or "__pycache__" in rel.parts or f.suffix == ".pyc":
            continue
        if rel.parts[0] == "tests" and len(rel.parts) > 2 and rel.parts[1] != assignment \
                and rel.name.startswith("test_"):
            continue
        yield f, Path("autograder") / rel


def _add(z: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False):
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    z.writestr(info, data)


def build_zip(assignment: str, out: Path, *, late_penalty: float = 0.0, late_days: float | None = None,
              grace_minutes: float = 0.0, visibility: str = "visible") -> Path:
    if assignment not in _assignments():
        raise ValueError(f"no hidden tests for assignment {assignment!r} (known: {', '.join(_assignments())})")
    release = sorted((REPO / "exercises" / assignment).glob("*.ipynb"))
    if not release:
        raise ValueError(f"exercises/{assignment}/ holds no release notebook: run `make release`")
    if visibility not in VISIBILITY:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITY)}")
    if not 0 <= late_penalty <= 100:
        raise ValueError("--late-penalty is a percentage of the score per late day, from 0 to 100")
    config = {"assignment": assignment, "notebooks": [p.name for p in release], "visibility": visibility,
              "late_policy": ({"percent_per_day": late_penalty, "max_late_days": late_days,
                               "grace_minutes": grace_minutes} if late_penalty or late_days is not None else None),
              "built_at": datetime.now().astimezone().isoformat(timespec="seconds")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with zipfile.ZipFile(tmp, "w") as z:
        _add(z, "setup.sh", SETUP_SH.encode(), executable=True)
        _add(z, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        _add(z, "requirements.txt", REQUIREMENTS.encode())
        _add(z, CONFIG, (json.dumps(config, indent=2) + "\n").encode())
        for f, arc in _engine_files(assignment):
            _add(z, str(arc), f.read_bytes(), executable=os.access(f, os.X_OK))
        for f in sorted((REPO / "rnnlib").rglob("*.py")):
            _add(z, str(Path("rnnlib") / f.relative_to(REPO / "rnnlib")), f.read_bytes())
        _add(z, "chapters.yml", (REPO / "chapters.yml").read_bytes())  # the hidden tests' FORBIDDEN lists
        for f in release:
            _add(z, f"exercises/{assignment}/{f.name}", f.read_bytes())
    tmp.replace(out)
    return out


# ============================================================================ inside Gradescope
def _parse_time(s) -> datetime | None:
    if not s or not isinstance(s, str):
        return None
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else None


def late_factor(metadata: dict, policy: dict | None) -> tuple[float, str]:
    """(multiplier of the score, a sentence for the student). 1.0 when there is no policy or no lateness.

    Lateness is measured from the submission's ``created_at`` (so a regrade gives the same answer) to
    the due date: a user's own ``assignment.due_date`` when Gradescope lists one (an extension; in a
    group, the latest), else the assignment's. Each started day after the grace period costs
    ``percent_per_day`` of the score; after ``max_late_days`` days the score is 0.
    """
    if not policy:
        return 1.0, ""
    created = _parse_time(metadata.get("created_at"))
    dues = [_parse_time((u.get("assignment") or {}).get("due_date")) for u in metadata.get("users") or []
            if isinstance(u, dict)]
    dues = [d for d in dues if d] or [_parse_time((metadata.get("assignment") or {}).get("due_date"))]
    due = max((d for d in dues if d), default=None)
    if created is None or due is None:
        return 1.0, ""
    late = created - due - timedelta(minutes=float(policy.get("grace_minutes") or 0))
    if late <= timedelta(0):
        return 1.0, ""
    days = math.ceil(late.total_seconds() / 86400)
    hours = (created - due).total_seconds() / 3600
    max_days = policy.get("max_late_days")
    if max_days is not None and days > float(max_days):
        return 0.0, (f"Submitted {hours:.1f} h after the due date, past the {max_days:g} late days the course "
                     "accepts: the score is 0.")
    pct = min(100.0, float(policy.get("percent_per_day") or 0) * days)
    return 1.0 - pct / 100.0, (f"Submitted {hours:.1f} h after the due date ({days} started day(s) late): "
                               f"{pct:g} % late penalty.")


def _collect(submission: Path, dest: Path, notebooks: list[str]) -> list[str]:
    """Copy the submitted notebooks into ``dest`` by file name (the shallowest copy of each name)."""
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for p in sorted(submission.rglob("*.ipynb"), key=lambda p: (len(p.parts), str(p))):
        if ".ipynb_checkpoints" in p.parts or p.name.startswith(".") or p.is_symlink() or not p.is_file():
            continue
        found.setdefault(p.name, p)
    for name, p in found.items():
        shutil.copyfile(p, dest / name)
    return sorted(found)


def to_gradescope(result: dict, visibility: str, factor: float = 1.0, notes: list[str] | None = None,
                  seconds: float | None = None) -> dict:
    """The grader's results.json (the CONTRACT's keys; ``grader_fault`` and ``subtotals`` when present)
    as Gradescope's results.json."""
    tests = []
    for i, t in enumerate(result.get("tests") or [], 1):
        status = t.get("status", "")
        msg = t.get("message") or ""
        out = f"{status}: {msg}" if msg else status
        if t.get("grader_fault"):
            out += "\n(a fault of the grader, not of your code: your instructor has been told)"
        tests.append({"name": f"{t.get('function', '')}: {t.get('name', '')}", "number": str(i),
                      "score": float(t.get("points", 0.0)), "max_score": float(t.get("max_points", 0.0)),
                      "output": out, "tags": [t.get("function", "")], "visibility": visibility,
                      "status": "passed" if status == "passed" else "failed"})
    raw = float(result.get("score", sum(t["score"] for t in tests)))
    maximum = float(result.get("max_score", sum(t["max_score"] for t in tests)))
    lines = [f"{result.get('assignment', '')}: {raw:g} / {maximum:g} points from the tests."]
    subtotals = result.get("subtotals")
    if isinstance(subtotals, dict):
        for name, v in subtotals.items():
            if isinstance(v, dict) and "score" in v and "max_score" in v:
                lines.append(f"  {name}: {v['score']:g} / {v['max_score']:g}")
    lines += notes or []
    if factor != 1.0:
        lines.append(f"Score after the late penalty: {raw * factor:g} / {maximum:g}.")
    out = {"score": round(raw * factor, 6), "output": "\n".join(lines), "visibility": visibility,
           "stdout_visibility": "hidden", "tests": tests,
           "extra_data": {"raw_score": raw, "max_score": maximum, "late_factor": factor}}
    if seconds is not None:
        out["execution_time"] = round(seconds, 3)
    return out


def _write(root: Path, doc: dict) -> None:
    (root / "results").mkdir(parents=True, exist_ok=True)
    tmp = root / "results" / "results.json.part"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(root / "results" / "results.json")


def run(root: Path) -> int:
    start = time.monotonic()
    root = Path(root)
    cfg = json.loads((REPO / CONFIG).read_text())
    assignment, visibility = cfg["assignment"], cfg.get("visibility", "visible")
    try:
        metadata = json.loads((root / "submission_metadata.json").read_text())
    except (OSError, ValueError):
        metadata = {}
    users = [u for u in metadata.get("users") or [] if isinstance(u, dict)]
    student = str(users[0].get("id", "student")) if users else "student"
    student = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in student) or "student"
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        tmp = Path(tmp)
        got = _collect(root / "submission", tmp / "submitted" / student / assignment, cfg["notebooks"])
        print(f"gradescope: {assignment}: submitted notebooks {got}; expected {cfg['notebooks']}", flush=True)
        cmd = [sys.executable, "-m", "autograder", "grade", str(tmp / "submitted"), "--out", str(tmp / "results"),
               "--assignment", assignment]
        r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(r.stdout[-20000:], flush=True)  # /autograder/results/stdout: instructors only
        res_file = tmp / "results" / student / assignment / "results.json"
        if r.returncode != 0 or not res_file.is_file():
            _write(root, {"score": 0.0, "execution_time": round(time.monotonic() - start, 3), "visibility": visibility,
                          "output": "The autograder could not run on this submission (a fault of the grader, "
                                    "not of your code). Your instructor can see the log; please tell them.",
                          "tests": []})
            return 1
        result = json.loads(res_file.read_text())
    notes = []
    missing = [n for n in cfg["notebooks"] if n not in got]
    if missing:
        notes.append("Not found in your submission: " + ", ".join(missing) +
                     " (upload each notebook under its own name).")
    factor, why = late_factor(metadata, cfg.get("late_policy"))
    if why:
        notes.append(why)
    _write(root, to_gradescope(result, visibility, factor, notes, time.monotonic() - start))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    ap.add_argument("command", choices=["run"])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")))
    a = ap.parse_args(argv)
    return run(a.root)



def command(a) -> int:
    """``python -m autograder gradescope ASSIGNMENT [--out ZIP] ...`` (see autograder/cli.py)."""
    out = a.out or Path(f"{a.assignment}_gradescope.zip")
    try:
        build_zip(a.assignment, out, late_penalty=a.late_penalty, late_days=a.late_days,
                  grace_minutes=a.grace_minutes, visibility=a.visibility)
    except ValueError as e:
        print(f"autograder: error: {e}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(out) as z:
        n = len(z.namelist())
    print(f"autograder: wrote {out} ({n} files): upload it as the assignment's autograder on Gradescope",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
