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
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]  # the autograder package
REPO = PKG.parent
CONFIG = "gradescope.json"
VISIBILITY = ("visible", "after_due_date", "after_published", "hidden")  # from the least to the most hidden
# The grader's (and the notebooks') packages in Gradescope's image, at the course's tested versions.
BUNDLE_PACKAGES = ("torch", "numpy", "matplotlib", "scikit-learn", "tqdm", "PyYAML")
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
# Reading an upload: bounded, whatever it holds.
MAX_FILE_BYTES = 50 * 1024 * 1024   # one notebook (the grader's own limit)
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # every notebook read from the upload, zips included
MAX_ENTRIES = 2000                  # files and folders looked at, zip members included
MAX_DEPTH = 8

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (Ubuntu 22.04 by default).
# The course's pinned packages (numpy 2.3, scipy 1.17, scikit-learn 1.9) need Python >= 3.11; Ubuntu
# 22.04's python3 is 3.10, so this installs Ubuntu's own python3.11 (universe) and makes a virtual
# environment with it: PyTorch's CPU build from PyTorch's CPU index, everything else from PyPI, each at
# the version of constraints.txt (the course's tested set).
#
# Without the network (the course's tests): AUTOGRADER_SETUP_PYTHON=/usr/bin/python3 (skips apt-get) and
# AUTOGRADER_WHEELS=FOLDER (pip --no-index --find-links FOLDER); AUTOGRADER_ROOT moves /autograder.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${AUTOGRADER_SETUP_PYTHON:-}"
if [ -z "$PY" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # bubblewrap: the grader's sandbox where the container allows it (Gradescope's usually refuses
  # namespaces: the grader then runs each notebook as a fresh unprivileged uid, and says so).
  apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv bubblewrap ca-certificates >/dev/null
  PY=python3.11
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "the course needs Python >= 3.11, not " + sys.version'
"$PY" -m venv "$ROOT/venv"
VPY="$ROOT/venv/bin/python"
if [ -n "${AUTOGRADER_WHEELS:-}" ]; then
  TORCH_FROM=(--no-index --find-links "$AUTOGRADER_WHEELS")
  REST_FROM=(--no-index --find-links "$AUTOGRADER_WHEELS")
else
  TORCH_FROM=(--index-url __TORCH_INDEX__)
  REST_FROM=(--index-url __PYPI_INDEX__)
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first, alone, from the CPU index (no CUDA wheels); then the rest, with torch's own dependencies,
# from PyPI, every one pinned by constraints.txt.
"$VPY" -m pip install -q --only-binary=:all: --no-deps "${TORCH_FROM[@]}" "__TORCH_PIN__+cpu"
"$VPY" -m pip install -q --only-binary=:all: "${REST_FROM[@]}" -r "$SRC/requirements.txt" -c "$SRC/constraints.txt"
"$VPY" -m pip check
cd "$SRC" && "$VPY" -c "
import torch, numpy, yaml, matplotlib, sklearn, tqdm
assert torch.__version__ == '__TORCH_VERSION__+cpu' and not torch.cuda.is_available(), torch.__version__
from autograder.core import runner
assert any(n.tests for n in runner.load_assignment('__ASSIGNMENT__'))
print('setup.sh: Python', __import__('sys').version.split()[0], '| torch', torch.__version__,
      '| numpy', numpy.__version__, '| the hidden tests of __ASSIGNMENT__ load')
"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this from /autograder for every submission. AUTOGRADER_ROOT moves the layout elsewhere
# (the course's tests do); AUTOGRADER_PYTHON picks the interpreter (default: the venv setup.sh made).
set -uo pipefail
export AUTOGRADER_T0="${AUTOGRADER_T0:-$(date +%s.%N)}"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/venv/bin/python" ]; then PY="$ROOT/venv/bin/python"; else PY=python3; fi
fi
mkdir -p "$ROOT/results"
# The course's secret (held-out data redrawn with it): the instructor's, so that Gradescope grades as they do.
if [ -f "$ROOT/source/course-secret" ]; then export AUTOGRADER_SECRET_FILE="$ROOT/source/course-secret"; fi
cd "$ROOT/source" && exec "$PY" -m autograder.platforms.gradescope run --root "$ROOT"
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


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def course_pins() -> dict[str, str]:
    """{normalised name: 'Name==version'} from the course's requirements.txt and constraints.txt."""
    pins = {}
    for f in ("constraints.txt", "requirements.txt"):
        for line in (REPO / f).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
            if m:
                pins[_norm(m.group(1))] = f"{m.group(1)}=={m.group(2)}"
    return pins


def bundle_requirements() -> tuple[str, str]:
    """(requirements.txt, constraints.txt) of the bundle: the packages the grader, the hidden tests and the
    release notebooks import, each at the course's tested version; the constraints are the course's whole
    tested set (pip freeze of the course's environment) plus torch and setuptools."""
    pins = course_pins()
    missing = [p for p in BUNDLE_PACKAGES if _norm(p) not in pins]
    if missing:
        raise ValueError(f"no exact pin for {', '.join(missing)} in requirements.txt/constraints.txt")
    req = ["# The grader's packages in Gradescope's image, at the course's tested versions (setup.sh installs",
           "# torch's CPU build from PyTorch's CPU index first, then these from PyPI with -c constraints.txt)."]
    req += [pins[_norm(p)] for p in BUNDLE_PACKAGES]
    con = ["# The course's tested set (its constraints.txt and requirements.txt pins): every package pip may",
           "# install here is held to the version the course tests."]
    con += sorted(pins.values(), key=str.lower)
    try:
        import setuptools  # torch needs it; the course's environment holds this one

        if "setuptools" not in pins:
            con.append(f"setuptools=={setuptools.__version__}")
    except ImportError:
        pass
    return "\n".join(req) + "\n", "\n".join(con) + "\n"


def mirror_tests(assignment: str) -> list[str]:
    """The hidden tests that mirror the release notebooks' visible tests: for each graded name that a
    visible test cell uses, its first hidden test (by the course's convention ``test_<name>_parity`` /
    ``_values``: the plain check of values the visible test also makes). Needs the hidden tests."""
    from ..core import runner

    shown = []
    for nbt in runner.load_assignment(assignment):
        p = REPO / "exercises" / assignment / f"{nbt.notebook}.ipynb"
        if not p.is_file():
            continue
        nb = json.loads(p.read_text())
        src = "\n".join("".join(c.get("source", "")) for c in nb.get("cells", [])
                        if (m := c.get("metadata", {}).get("nbgrader", {})).get("grade") and not m.get("solution"))
        called = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", src))  # every name the visible tests use
        seen = set()
        for t in nbt.tests:
            if t.function in called and t.function not in seen:
                shown.append(t.name)
            seen.add(t.function)
    return shown


def build_zip(assignment: str, out: Path, *, late_policy: dict | None = None, visible_tests: str = "visible",
              hidden_tests: str = "after_due_date", score_visibility: str | None = None) -> Path:
    """The autograder zip for ``assignment``. ``late_policy``: a dict ``LatePolicy.from_dict`` reads (the
    course's policy, ``LatePolicy.to_dict()``); None: no penalty. ``score_visibility`` (Gradescope's
    top-level visibility, the default of every line of the page): None follows ``hidden_tests``."""
    from .latepolicy import LatePolicy

    if assignment not in _assignments():
        raise ValueError(f"no hidden tests for assignment {assignment!r} (known: {', '.join(_assignments())})")
    release = sorted((REPO / "exercises" / assignment).glob("*.ipynb"))
    if not release:
        raise ValueError(f"exercises/{assignment}/ holds no release notebook: run `make release`")
    score_visibility = score_visibility or _most_hidden(visible_tests, hidden_tests)
    for what, v in (("--visible-tests", visible_tests), ("--hidden-tests", hidden_tests),
                    ("--score-visibility", score_visibility)):
        if v not in VISIBILITY:
            raise ValueError(f"{what} must be one of {', '.join(VISIBILITY)}, not {v!r}")
    if late_policy is not None:
        LatePolicy.from_dict(late_policy, source="--late-policy")  # a bad policy fails here, not in Gradescope
    requirements, constraints = bundle_requirements()
    torch_pin = next(line for line in requirements.splitlines() if line.lower().startswith("torch=="))
    config = {"assignment": assignment, "notebooks": [p.name for p in release],
              "visible_tests": visible_tests, "hidden_tests": hidden_tests, "score_visibility": score_visibility,
              "mirror_tests": mirror_tests(assignment), "late_policy": late_policy,
              "built_at": datetime.now().astimezone().isoformat(timespec="seconds")}
    setup = (SETUP_SH.replace("__TORCH_INDEX__", TORCH_INDEX).replace("__PYPI_INDEX__", PYPI_INDEX)
             .replace("__TORCH_PIN__", torch_pin).replace("__TORCH_VERSION__", torch_pin.split("==")[1])
             .replace("__ASSIGNMENT__", assignment))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with zipfile.ZipFile(tmp, "w") as z:
        _add(z, "setup.sh", setup.encode(), executable=True)
        _add(z, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        _add(z, "requirements.txt", requirements.encode())
        _add(z, "constraints.txt", constraints.encode())
        _add(z, CONFIG, (json.dumps(config, indent=2) + "\n").encode())
        for f, arc in _engine_files(assignment):
            _add(z, str(arc), f.read_bytes(), executable=os.access(f, os.X_OK))
        for f in sorted((REPO / "rnnlib").rglob("*.py")):
            _add(z, str(Path("rnnlib") / f.relative_to(REPO / "rnnlib")), f.read_bytes())
        _add(z, "chapters.yml", (REPO / "chapters.yml").read_bytes())  # the hidden tests' FORBIDDEN lists
        for f in release:
            _add(z, f"exercises/{assignment}/{f.name}", f.read_bytes())
        if any("heldout" in f.read_text() for f in (PKG / "tests" / assignment).glob("*.py")):
            from ..testkit import heldout  # the instructor's secret: Gradescope redraws held-out data as they do

            _add(z, "course-secret", heldout.course_secret())
    tmp.replace(out)
    return out


def _most_hidden(*vs: str) -> str:
    return max(vs, key=lambda v: VISIBILITY.index(v) if v in VISIBILITY else len(VISIBILITY))


# ============================================================================ reading the upload
@dataclass
class Upload:
    """What the student uploaded, as the grader will see it."""

    files: dict = field(default_factory=dict)    # name in the graded folder -> where it came from
    ignored: list = field(default_factory=list)  # "where: why", notebooks not passed to the grader
    refused: list = field(default_factory=list)  # "where: why", files not read at all
    others: list = field(default_factory=list)   # every other file (to say what the upload held)
    total: int = 0
    entries: int = 0
    truncated: bool = False


def _read_bounded(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        total += len(b)
        if total > limit:
            raise OSError(f"larger than {limit >> 20} MiB")
        chunks.append(b)


def _from_zip(up: Upload, where: str, data_fd: int, depth: int, pending: list) -> None:
    """The notebooks inside one uploaded zip: names only (never a path, never a link), bounded."""
    with os.fdopen(os.dup(data_fd), "rb") as fh:
        try:
            z = zipfile.ZipFile(fh)
            infos = z.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            up.refused.append(f"{where}: not a zip file that can be read ({e})")
            return
        if len(infos) + up.entries > MAX_ENTRIES:
            up.refused.append(f"{where}: holds {len(infos)} entries (the limit is {MAX_ENTRIES}): not opened")
            return
        for info in infos:
            up.entries += 1
            name = info.filename
            label = f"{where}: {name}"
            parts = [p for p in re.split(r"[/\\]+", name) if p]
            if info.is_dir():
                continue
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                up.refused.append(f"{label}: a path outside the zip: not extracted")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                up.refused.append(f"{label}: a symbolic link: not extracted")
                continue
            base = parts[-1] if parts else ""
            if any(p.startswith(".") or p == "__MACOSX" for p in parts) or ".ipynb_checkpoints" in parts:
                continue
            if base.lower().endswith(".zip"):
                up.ignored.append(f"{label}: a zip inside a zip is not opened")
                continue
            if not base.endswith(".ipynb"):
                up.others.append(label)
                continue
            if info.flag_bits & 0x1:
                up.refused.append(f"{label}: encrypted: not extracted")
                continue
            if info.file_size > MAX_FILE_BYTES or up.total + info.file_size > MAX_TOTAL_BYTES:
                up.refused.append(f"{label}: {info.file_size >> 20} MiB: over the limit, not extracted")
                continue
            try:
                with z.open(info) as m:
                    data = m.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError) as e:
                up.refused.append(f"{label}: could not be extracted ({e})")
                continue
            if len(data) > MAX_FILE_BYTES or up.total + len(data) > MAX_TOTAL_BYTES:
                up.refused.append(f"{label}: over the size limit, not extracted")
                continue
            up.total += len(data)
            pending.append((depth + len(parts), label, base, data))


def collect(submission: Path, dest: Path) -> Upload:
    """Copy every notebook of the upload (at its top, in folders, in .zip files) into ``dest`` under its
    own file name, the shallowest of each name; never following a link, never opening a FIFO, bounded in
    count, depth and size. Which copy the grader grades is the grader's choice (the exact name, else the
    most complete copy); what was not copied is in ``ignored`` / ``refused``."""
    up = Upload()
    dest.mkdir(parents=True, exist_ok=True)
    pending: list = []  # (depth, where, name, bytes)

    def walk(d: Path, rel: str, depth: int):
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            up.refused.append(f"{rel or '.'}: a folder that could not be listed ({e.strerror})")
            return
        for e in entries:
            if up.entries >= MAX_ENTRIES:
                if not up.truncated:
                    up.refused.append(f"{rel}{e.name} and what follows: the upload holds more than "
                                      f"{MAX_ENTRIES} entries")
                up.truncated = True
                return
            up.entries += 1
            where = f"{rel}{e.name}"
            if e.name.startswith(".") or e.name == "__MACOSX" or e.name == ".ipynb_checkpoints":
                continue
            try:
                st = os.lstat(e.path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                up.refused.append(f"{where}: a symbolic link: not read")
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth >= MAX_DEPTH:
                    up.refused.append(f"{where}/: folders deeper than {MAX_DEPTH} levels are not read")
                else:
                    walk(Path(e.path), where + "/", depth + 1)
                continue
            is_nb, is_zip = e.name.endswith(".ipynb"), e.name.lower().endswith(".zip")
            if not (is_nb or is_zip):
                up.others.append(where)
                continue
            if not stat.S_ISREG(st.st_mode):
                up.refused.append(f"{where}: not a regular file: not read")
                continue
            try:
                fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as err:
                up.refused.append(f"{where}: could not be read ({err.strerror})")
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    up.refused.append(f"{where}: not a regular file: not read")
                elif is_zip:
                    if os.fstat(fd).st_size > MAX_TOTAL_BYTES:
                        up.refused.append(f"{where}: larger than {MAX_TOTAL_BYTES >> 20} MiB: not opened")
                    else:
                        _from_zip(up, where, fd, depth, pending)
                else:
                    try:
                        data = _read_bounded(fd, min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - up.total))
                    except OSError as err:
                        up.refused.append(f"{where}: {err}: not read")
                        continue
                    up.total += len(data)
                    pending.append((depth, where, e.name, data))
            finally:
                os.close(fd)

    if submission.is_dir():
        walk(submission, "", 0)
    taken: dict[str, str] = {}
    for depth, where, name, data in sorted(pending, key=lambda p: (p[0], p[1])):
        if name in taken:
            up.ignored.append(f"{where}: another file of the same name was used ({taken[name]})")
            continue
        taken[name] = where
        (dest / name).write_bytes(data)
        up.files[name] = where
    return up


# ============================================================================ the results page
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


def _where(up: Upload | None, name: str | None) -> str:
    if not name:
        return ""
    origin = up.files.get(name, name) if up else name
    return origin if origin == name else f"{name} (from {origin})"


def results_page(result: dict, cfg: dict, up: Upload | None = None, lateness=None,
                 seconds: float | None = None) -> dict:
    """Gradescope's results.json from the grader's results.json (``result``) and the bundle's settings.

    - one test case per hidden test (``<graded name>: <test>``, its points, status and message); those that
      mirror the notebook's visible tests at ``visible_tests``, the rest at ``hidden_tests``;
    - informational cases (no points): a subtotal per notebook (its graded names' subtotals in its output),
      the late penalty, and one line for instructors only (the isolation level, the grader's faults);
    - the top-level output, shown at once, says only what the student's files did: which copy was graded,
      which were ignored or refused, which cells raised, which notebooks were not found (and the names
      expected), the lateness in the policy's words; never a score the visibility settings hide.
    """
    vis_shown, vis_hidden = cfg.get("visible_tests", "visible"), cfg.get("hidden_tests", "after_due_date")
    score_vis = cfg.get("score_visibility") or _most_hidden(vis_shown, vis_hidden)
    mirror = set(cfg.get("mirror_tests") or [])
    subtotals = result.get("subtotals") if isinstance(result.get("subtotals"), dict) else {}
    per_fn = subtotals.get("functions") if isinstance(subtotals.get("functions"), dict) else {}
    per_nb = subtotals.get("notebooks") if isinstance(subtotals.get("notebooks"), dict) else {}
    reports = result.get("notebooks") if isinstance(result.get("notebooks"), dict) else {}
    nb_order = list(dict.fromkeys([Path(n).stem for n in cfg.get("notebooks", [])] + list(per_nb) + list(reports)))
    nb_of_fn = {f: v.get("notebook") for f, v in per_fn.items() if isinstance(v, dict)}

    tests, vis_of_nb, counters = [], {}, {}
    for t in result.get("tests") or []:
        fn, status, msg = str(t.get("function", "")), str(t.get("status", "")), str(t.get("message") or "")
        nbn = nb_of_fn.get(fn) or "?"
        i = nb_order.index(nbn) + 1 if nbn in nb_order else len(nb_order) + 1
        counters[i] = counters.get(i, 0) + 1
        vis = vis_shown if t.get("name") in mirror else vis_hidden
        vis_of_nb.setdefault(nbn, []).append(vis)
        out = f"{status}: {msg}" if msg else status
        if t.get("grader_fault"):
            out += "\n(a fault of the grader, not of your code: your instructor has been told)"
        tests.append({"name": f"{fn}: {t.get('name', '')}", "number": f"{i}.{counters[i]}",
                      "score": float(t.get("points", 0.0)), "max_score": float(t.get("max_points", 0.0)),
                      "status": "passed" if status == "passed" else "failed", "output": out,
                      "tags": [fn, f"{nbn}.ipynb"], "visibility": vis})
    raw = float(result.get("score", sum(t["score"] for t in tests)))
    maximum = float(result.get("max_score", sum(t["max_score"] for t in tests)))
    every_vis = [t["visibility"] for t in tests] or [vis_hidden]

    info = []
    for nbn in nb_order:
        s = per_nb.get(nbn)
        if not isinstance(s, dict):
            continue
        lines = [f"{f}: {v['score']:g} / {v['max_score']:g}" for f, v in per_fn.items()
                 if isinstance(v, dict) and v.get("notebook") == nbn]
        info.append({"name": f"Subtotal of {nbn}.ipynb: {s['score']:g} / {s['max_score']:g} points",
                     "number": f"{nb_order.index(nbn) + 1}.0",
                     "status": "passed" if s["score"] >= s["max_score"] else "failed",
                     "output": "\n".join(lines), "tags": ["subtotal", f"{nbn}.ipynb"],
                     "visibility": _most_hidden(score_vis, *vis_of_nb.get(nbn, [vis_hidden]))})

    final = raw
    late_d = None
    if lateness is not None:
        late_d = lateness.to_dict()
        final = lateness.apply(raw, maximum)
        if lateness.late:
            info.append({"name": f"Late penalty: -{raw - final:g} points",
                         "number": f"{len(nb_order) + 1}.0", "status": "failed",
                         "output": f"{lateness.words[:1].upper()}{lateness.words[1:]}.\nScore from the tests: "
                                   f"{raw:g} / {maximum:g}; after the late penalty: {final:g} / {maximum:g}.",
                         "tags": ["late"], "visibility": _most_hidden(score_vis, *every_vis)})

    # The instructors' line: Gradescope always shows instructors every test case; "hidden" keeps it from students.
    iso = result.get("isolation") or "unknown"
    inst = [f"Isolation: {iso} ({result.get('sandbox', 'not recorded')})"]
    if result.get("limits"):
        inst.append(f"Limits enforced: {json.dumps(result['limits'], sort_keys=True)}")
    if result.get("grader_faults"):
        inst.append("Grader faults (traces in the run's log, /autograder/results/stdout): "
                    + ", ".join(map(str, result["grader_faults"])))
    if up is not None:
        inst.append("Graded folder: " + (", ".join(f"{k} <- {v}" for k, v in up.files.items()) or "(empty)"))
    if seconds is not None:
        inst.append(f"Time to results: {seconds:.1f} s")
    info.append({"name": f"For instructors: isolation {iso}", "number": f"{len(nb_order) + 2}.0",
                 "status": "failed" if iso in ("weak", "unknown") or result.get("grader_faults") else "passed",
                 "output": "\n".join(inst), "tags": ["instructors"], "visibility": "hidden"})

    # What the student's files did: shown at once, no scores.
    lines = []
    expected = cfg.get("notebooks", [])
    not_found = []
    for nbn in nb_order:
        rep = reports.get(nbn) if isinstance(reports.get(nbn), dict) else {}
        name = rep.get("file")
        if name:
            lines.append(f"{nbn}.ipynb: graded {_where(up, name)}.")
        else:
            not_found.append(f"{nbn}.ipynb")
        for n in rep.get("notes") or []:
            lines.append(f"  {n}")
        for n in rep.get("cell_errors") or []:
            lines.append(f"  A cell raised an error: {n}")
    if up is not None:
        for n in up.ignored:
            lines.append(f"Not graded: {n}.")
        for n in up.refused:
            lines.append(f"Not read: {n}.")
    if not_found:
        held = sorted(up.others)[:10] if up is not None else []
        lines.append(f"Not found in your upload: {', '.join(not_found)}. Expected file names: "
                     f"{', '.join(expected)} (at the top of the upload, in a folder, or in a .zip; a renamed copy "
                     "such as 'Copy of ...' is found by its cells)."
                     + (f" Your upload held: {', '.join(held)}." if up is not None and not up.files else ""))
    if lateness is not None and (lateness.late or lateness.minutes_late > 0):
        lines.append(f"Lateness: {lateness.words}.")
    hidden_n = sum(1 for t in tests if t["visibility"] != "visible")
    if hidden_n:
        when = {"after_due_date": "after the due date", "after_published": "when grades are published",
                "hidden": "never (your instructor sees them)"}
        lines.append(f"{len(tests) - hidden_n} of {len(tests)} tests are shown now; the other {hidden_n} "
                     f"{when.get(vis_hidden, vis_hidden)}, and with them the score.")
    doc = {"score": round(final, 6), "output": html.escape("\n".join(lines), quote=False), "output_format": "simple_format",
           "test_output_format": "text", "test_name_format": "text", "visibility": score_vis,
           "stdout_visibility": "hidden", "tests": sorted(tests + info, key=lambda t: _num_key(t["number"])),
           "extra_data": {"raw_score": raw, "max_score": maximum, "late": late_d, "isolation": iso,
                          "graded_files": dict(up.files) if up else {}, "subtotals": subtotals}}
    if seconds is not None:
        doc["execution_time"] = round(seconds, 3)
    return doc


def _num_key(n: str):
    return tuple(int(x) for x in n.split("."))


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


def _lateness(cfg: dict, metadata: dict, student: str):
    """The course's late policy on Gradescope's timestamps: ``created_at`` (so a regrade gives the same
    answer) against the user's own ``assignment.due_date`` when Gradescope lists one (an extension; in a
    group, the latest), else the assignment's; with none, the policy's own due date and extensions."""
    from .latepolicy import LatePolicy, parse_time

    if cfg.get("late_policy") is None:
        return None
    policy = LatePolicy.from_dict(cfg["late_policy"], source="the bundle's late policy")
    dues = [parse_time((u.get("assignment") or {}).get("due_date")) for u in metadata.get("users") or []
            if isinstance(u, dict) and isinstance(u.get("assignment"), dict)]
    dues = [d for d in dues if d] or [parse_time((metadata.get("assignment") or {}).get("due_date"))]
    due = max((d for d in dues if d), default=None)
    return policy.assess(cfg["assignment"], student, metadata.get("created_at"), due)


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


def command(a) -> int:
    """``python -m autograder gradescope ASSIGNMENT [--out ZIP] ...`` (see autograder/cli.py)."""
    from .latepolicy import DEFAULT_FILE, LatePolicy, LatePolicyError

    out = a.out or Path(f"{a.assignment}_gradescope.zip")
    try:
        policy = None
        flags = a.late_penalty or a.late_days is not None or a.grace_minutes
        if getattr(a, "late_policy", None) and flags:
            raise ValueError("give either --late-policy FILE or --late-penalty/--late-days/--grace-minutes")
        if getattr(a, "late_policy", None):
            policy = LatePolicy.load(a.late_policy).to_dict()
        elif flags:
            if not 0 <= a.late_penalty <= 100:
                raise ValueError("--late-penalty is a percentage of the score per late day, from 0 to 100")
            d = {"percent": a.late_penalty, "per": "day", "grace_minutes": a.grace_minutes}
            if a.late_days is not None:
                d["zero_after_days"] = a.late_days
            policy = LatePolicy.from_dict(d).to_dict()
        elif (REPO / DEFAULT_FILE).is_file():
            policy = LatePolicy.load(REPO / DEFAULT_FILE).to_dict()
        hidden = a.hidden_tests or a.visibility or "after_due_date"
        shown = a.visible_tests or a.visibility or "visible"
        build_zip(a.assignment, out, late_policy=policy, visible_tests=shown, hidden_tests=hidden,
                  score_visibility=a.score_visibility)
    except (ValueError, LatePolicyError) as e:
        print(f"autograder: error: {e}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(out) as z:
        n = len(z.namelist())
    print(f"autograder: wrote {out} ({n} files): upload it as the assignment's autograder on Gradescope",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
