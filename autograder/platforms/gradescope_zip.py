"""Gradescope, building: the autograder zip for one assignment (``python -m autograder gradescope``)::

    python -m autograder gradescope ch04_lstm [--out ch04_lstm_gradescope.zip]
        [--late-policy late_policy.yml | --late-penalty 10 --late-days 3 --grace-minutes 15]
        [--visible-tests visible] [--hidden-tests after_due_date] [--score-visibility after_due_date]

The zip follows Gradescope's autograder specification: ``setup.sh`` and ``run_autograder`` at its root. It
holds this ``autograder`` package as it is at build time (every module, the sandbox included, and this
assignment's hidden tests, never another assignment's), ``rnnlib``, the assignment's release notebooks,
``requirements.txt`` + ``constraints.txt`` (the course's tested versions, exactly) and a ``gradescope.json``
with the instructor's settings (visibility, the late policy, which hidden tests mirror the notebook's visible
tests). What runs inside it: gradescope.py.
"""
from __future__ import annotations

import json
import os
import re
import stat
import sys
import zipfile
from datetime import datetime
from pathlib import Path

from .gradescope_results import VISIBILITY, _most_hidden

PKG = Path(__file__).resolve().parents[1]  # the autograder package
REPO = PKG.parent
CONFIG = "gradescope.json"
# The grader's (and the notebooks') packages in Gradescope's image, at the course's tested versions.
BUNDLE_PACKAGES = ("torch", "numpy", "matplotlib", "scikit-learn", "tqdm", "PyYAML")
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"

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
from autograder.core import launch
fonts = launch.font_cache()  # built here, once, into the image: not again at every submission
print('setup.sh: Python', __import__('sys').version.split()[0], '| torch', torch.__version__,
      '| numpy', numpy.__version__, '| the hidden tests of __ASSIGNMENT__ load',
      '| font list', 'built' if fonts else 'not kept (each submission builds its own)')
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
