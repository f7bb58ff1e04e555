"""The Gradescope autograder zip, tested from the zip alone.

- Each assignment's zip is unpacked into a scratch ``/autograder`` layout and its own ``setup.sh`` builds a
  fresh virtual environment with the system's Python (``/usr/bin/python3``, never the course's .venv),
  exactly as on Gradescope but with a local wheel folder standing in for the network (``pip download``
  once from this machine's indexes into ``_build/gradescope-wheels/``, then ``--no-index --find-links``).
  One environment serves every case (built once per session; its setup time and size are measured and
  written to ``_build/gradescope-setup.json``).
- The zip's ``run_autograder`` then grades uploads as Gradescope lays them out: the reference (full
  marks) and the stub (0) of every assignment; on ch01: a partial, late, renamed upload, a copy beside a
  stub, notebooks inside folders, a zip of them (with hostile members), an empty upload; and the same zip
  under Docker's restrictions (tests/container.py), honest and hostile.
- Every results.json is checked against Gradescope's published specification by a checker written from
  the documentation (``check_spec``), not from our writer.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

from autograder.platforms import gradescope as gs
from autograder.platforms import gradescope_upload
from autograder.platforms.latepolicy import LatePolicy

sys.path.insert(0, str(Path(__file__).parent))
import container  # noqa: E402

A = "ch01_gradients"  # the quickest chapter to grade
ASSIGNMENTS = sorted(p.name for p in (REPO / "autograder" / "tests").iterdir() if p.is_dir() and p.name[0] != "_")
SYSTEM_PYTHON = "/usr/bin/python3"
BUILD = REPO / "_build"
DUE = "2026-11-20T23:59:00.000000-08:00"
ON_TIME = "2026-11-20T20:00:00.000000-08:00"
LATE_32H = "2026-11-22T08:00:00.000000-08:00"  # 1 d 8 h after the due date: 2 started days, -20 %

# ---------------------------------------------------------------------------------------------------------
# Gradescope's results.json, from its documentation ("Autograder Specifications", Output format):
# top level: score (optional, but required if not on each test case), execution_time (seconds), output,
# output_format / test_output_format / test_name_format ("Output String Formatting"), visibility,
# stdout_visibility, extra_data, tests, leaderboard. Each test: score (required if no top-level score),
# max_score, status ("passed" | "failed"), name, name_format, number, output, output_format, tags, visibility,
# extra_data. Visibility: hidden, after_due_date, after_published, visible (default).
SPEC_TOP = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str,
            "test_output_format": str, "test_name_format": str, "visibility": str, "stdout_visibility": str,
            "extra_data": dict, "tests": list, "leaderboard": list}
SPEC_TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str,
             "number": str, "output": str, "output_format": str, "tags": list, "visibility": str, "extra_data": dict}
SPEC_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
SPEC_FORMATS = {"text", "simple_format", "html", "md", "ansi"}
SPEC_STATUS = {"passed", "failed"}


def check_spec(doc) -> None:
    """Raise AssertionError where ``doc`` breaks Gradescope's documented results.json format."""
    json.dumps(doc, allow_nan=False)  # plain JSON: no NaN or Infinity
    assert isinstance(doc, dict), "results.json must be an object"
    for k, v in doc.items():
        assert k in SPEC_TOP, f"top-level key {k!r} is not in Gradescope's specification"
        assert isinstance(v, SPEC_TOP[k]) and not isinstance(v, bool), f"{k}: {type(v).__name__}"
    for k in ("visibility", "stdout_visibility"):
        assert doc.get(k, "visible") in SPEC_VISIBILITY, f"{k}={doc.get(k)!r}"
    for k in ("output_format", "test_output_format", "test_name_format"):
        assert doc.get(k, "text") in SPEC_FORMATS, f"{k}={doc.get(k)!r}"
    assert doc.get("execution_time", 0) >= 0
    tests = doc.get("tests", [])
    assert "score" in doc or (tests and all("score" in t for t in tests)), \
        "a score is required at the top level or on every test case"
    for t in tests:
        assert isinstance(t, dict)
        for k, v in t.items():
            assert k in SPEC_TEST, f"test key {k!r} is not in Gradescope's specification"
            assert isinstance(v, SPEC_TEST[k]) and not isinstance(v, bool), f"test {k}: {type(v).__name__}"
        assert t.get("visibility", "visible") in SPEC_VISIBILITY
        assert t.get("status", "passed") in SPEC_STATUS
        for k in ("name_format", "output_format"):
            assert t.get(k, "text") in SPEC_FORMATS
        assert all(isinstance(x, str) for x in t.get("tags", []))
        if "score" in t and "max_score" in t:
            assert 0 <= t["score"] <= t["max_score"], t


def test_spec_checker_refuses_what_the_documentation_does_not_allow():
    good = {"score": 1.0, "tests": [{"name": "a", "score": 1.0, "max_score": 1.0, "status": "passed"}]}
    check_spec(good)
    for bad in ({**good, "grade": 1}, {**good, "visibility": "later"}, {**good, "score": float("nan")},
                {"tests": [{"name": "info", "status": "passed"}]},           # no score anywhere
                {**good, "tests": [{"name": "a", "status": "ok"}]},
                {**good, "tests": [{"name": "a", "number": 1}]},             # number is a string
                {**good, "output_format": "rtf"}, {**good, "tests": [{"name": "a", "points": 1}]}):
        with pytest.raises((AssertionError, ValueError)):
            check_spec(bad)


# ---------------------------------------------------------------------------------------------------------
# the zip
@pytest.fixture(scope="session")
def zips(tmp_path_factory) -> dict[str, Path]:
    """Every assignment's zip, as `python -m autograder gradescope` writes it: A's from the command line,
    the others through the same command's entry point in this process (one Python start, not nine)."""
    from autograder import cli

    d = tmp_path_factory.mktemp("gs-zips")
    out = {}
    for a in ASSIGNMENTS:
        if a == A:
            r = subprocess.run([sys.executable, "-m", "autograder", "gradescope", a, "--out", str(d / f"{a}.zip"),
                                "--late-penalty", "10", "--late-days", "3", "--grace-minutes", "15"],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
        else:
            assert cli.main(["gradescope", a, "--out", str(d / f"{a}.zip")]) == 0
        out[a] = d / f"{a}.zip"
    return out


def test_zip_follows_the_spec_and_holds_the_engine_as_built(zips):
    with zipfile.ZipFile(zips[A]) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        cfg = json.loads(z.read("gradescope.json"))
        req = z.read("requirements.txt").decode()
        con = z.read("constraints.txt").decode()
        setup = z.read("setup.sh").decode()
    for f in ("setup.sh", "run_autograder"):
        assert f in names and modes[f] & stat.S_IXUSR, f"{f} must be at the zip's root and executable"
    pkg = REPO / "autograder"
    engine = {f"autograder/{p.relative_to(pkg)}" for p in pkg.rglob("*.py")
              if "__pycache__" not in p.parts and not (p.relative_to(pkg).parts[0] == "tests"
                                                      and len(p.relative_to(pkg).parts) > 2)}
    assert engine <= names, f"engine files missing from the zip: {sorted(engine - names)[:5]}"
    assert {f"autograder/tests/{A}/{p.name}" for p in (pkg / "tests" / A).glob("*.py")} <= names
    others = [n for n in names if n.startswith("autograder/tests/") and n.count("/") > 2
              and n.split("/")[2] != A and n.split("/")[-1].startswith("test_")]
    assert not others, f"another assignment's hidden tests in the zip: {others[:3]}"
    assert {f"exercises/{A}/{p.name}" for p in (REPO / "exercises" / A).glob("*.ipynb")} <= names
    assert "rnnlib/__init__.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "tests/", "tools/"))]
    # every pin is the course's, exactly; PyYAML (the hidden tests' manifest) included; torch's CPU build
    pins = gs.course_pins()
    lines = [x for x in req.splitlines() if x and not x.startswith("#")]
    assert {x.split("==")[0].lower() for x in lines} == {p.lower() for p in gs.BUNDLE_PACKAGES}
    assert all(pins[gs._norm(x.split("==")[0])] == x for x in lines), lines
    for x in con.splitlines():
        if x and not x.startswith("#") and not x.startswith("setuptools=="):
            assert pins[gs._norm(x.split("==")[0])] == x
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup and "torch==2.13.0+cpu" in setup
    assert "python3.11" in setup and "--extra-index-url" not in setup
    assert cfg["assignment"] == A and cfg["late_policy"]["percent"] == 10
    assert cfg["late_policy"]["zero_after_days"] == 3 and cfg["late_policy"]["grace_minutes"] == 15


def test_unknown_assignment_and_bad_options_are_one_clear_error(tmp_path):
    for args, word in ((["ch99_nothing"], "ch99_nothing"),
                       ([A, "--late-policy", str(tmp_path / "none.yml")], "none.yml"),
                       ([A, "--late-penalty", "120"], "--late-penalty"),
                       ([A, "--hidden-tests", "later"], "later")):
        r = subprocess.run([sys.executable, "-m", "autograder", "gradescope", *args, "--out", str(tmp_path / "x.zip")],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and word in r.stderr and not (tmp_path / "x.zip").exists(), r.stderr


def test_visibility_options_and_the_course_late_policy_file(tmp_path):
    pol = tmp_path / "late.yml"
    pol.write_text("grace_minutes: 10\npercent: 5\nper: hour\ncap_percent: 40\n")
    r = subprocess.run([sys.executable, "-m", "autograder", "gradescope", A, "--out", str(tmp_path / "a.zip"),
                        "--late-policy", str(pol), "--visible-tests", "after_published", "--hidden-tests",
                        "hidden", "--score-visibility", "after_published"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        cfg = json.loads(z.read("gradescope.json"))
    assert (cfg["visible_tests"], cfg["hidden_tests"], cfg["score_visibility"]) == \
        ("after_published", "hidden", "after_published")
    assert LatePolicy.from_dict(cfg["late_policy"]).summary() == LatePolicy.load(pol).summary()
    # the mirrors: the first hidden test of each graded name the visible test cells use
    assert "test_tanh_backward_parity" in cfg["mirror_tests"] and "test_tanh_backward_float32" not in cfg["mirror_tests"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignments_mirror_tests_exist(assignment):
    from autograder.core import runner

    names = {t.name for nbt in runner.load_assignment(assignment) for t in nbt.tests}
    shown = gs.mirror_tests(assignment)
    assert shown and set(shown) <= names and len(shown) < len(names)


# ---------------------------------------------------------------------------------------------------------
# reading an upload
def _nb(name: str = "x") -> bytes:
    return json.dumps({"cells": [], "metadata": {"name": name}, "nbformat": 4, "nbformat_minor": 5}).encode()


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, data)
    return buf.getvalue()


def test_collect_finds_notebooks_in_folders_and_zips_and_refuses_the_rest(tmp_path):
    sub = tmp_path / "submission"
    (sub / "hw" / "deep").mkdir(parents=True)
    (sub / "a.ipynb").write_bytes(_nb("top"))
    (sub / "hw" / "a.ipynb").write_bytes(_nb("folder"))       # same name, deeper: not used, named
    (sub / "hw" / "deep" / "b.ipynb").write_bytes(_nb("b"))
    (sub / "notes.txt").write_text("hi")
    (sub / ".ipynb_checkpoints").mkdir()
    (sub / ".ipynb_checkpoints" / "c.ipynb").write_bytes(_nb("checkpoint"))
    outside = tmp_path / "secret.ipynb"
    outside.write_bytes(_nb("secret"))
    os.symlink(outside, sub / "link.ipynb")
    os.mkfifo(sub / "fifo.ipynb")
    (sub / "up.zip").write_bytes(_zip([
        ("work/c.ipynb", _nb("c"), 0o100644 | 0), ("../../evil.ipynb", _nb("evil"), 0o100644),
        ("/abs.ipynb", _nb("abs"), 0o100644), ("lnk.ipynb", str(outside), 0o120777),
        ("inner.zip", b"PK", 0o100644), ("__MACOSX/._c.ipynb", b"junk", 0o100644)]))
    (sub / "bad.zip").write_bytes(b"not a zip")
    up = gs.collect(sub, tmp_path / "dest")
    got = {p.name: json.loads(p.read_text())["metadata"]["name"] for p in (tmp_path / "dest").iterdir()}
    assert got == {"a.ipynb": "top", "b.ipynb": "b", "c.ipynb": "c"}, got
    assert up.files["b.ipynb"] == "hw/deep/b.ipynb" and up.files["c.ipynb"] == "up.zip: work/c.ipynb"
    text = "\n".join(up.refused + up.ignored)
    for word in ("link.ipynb: a symbolic link", "fifo.ipynb: not a regular file", "../../evil.ipynb: a path outside",
                 "/abs.ipynb: a path outside", "lnk.ipynb: a symbolic link", "inner.zip: a zip inside a zip",
                 "bad.zip: not a zip file", "hw/a.ipynb: another file of the same name was used (a.ipynb)"):
        assert word in text, (word, text)
    assert "secret" not in json.dumps(got) and not (tmp_path / "evil.ipynb").exists()
    assert "notes.txt" in up.others


def test_collect_is_bounded(tmp_path, monkeypatch):
    sub = tmp_path / "submission"
    sub.mkdir()
    monkeypatch.setattr(gradescope_upload, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr(gradescope_upload, "MAX_ENTRIES", 50)
    (sub / "big.ipynb").write_bytes(b" " * 5000)
    (sub / "bomb.zip").write_bytes(_zip([("huge.ipynb", b"0" * 10_000_000, 0o100644)]))  # 10 MB, compresses to KB
    (sub / "many.zip").write_bytes(_zip([(f"n{i}.ipynb", _nb(), 0o100644) for i in range(60)]))
    up = gs.collect(sub, tmp_path / "dest")
    assert not up.files and not list((tmp_path / "dest").iterdir())
    text = "\n".join(up.refused)
    assert "big.ipynb" in text and "huge.ipynb" in text and "many.zip: holds 60 entries" in text, text
    for i in range(3):
        (sub / f"d{i}").mkdir()
        for j in range(30):
            (sub / f"d{i}" / f"n{j}.ipynb").write_bytes(_nb())
    up = gs.collect(sub, tmp_path / "dest2")
    more = [r for r in up.refused if "more than 50 entries" in r]
    assert len(more) == 1 and up.entries == 50 and len(up.files) < 50, up.refused


# ---------------------------------------------------------------------------------------------------------
# the results page, from a grader's results.json
def _result(**over):
    res = {"student_id": "s", "assignment": A, "score": 3.0, "max_score": 6.0, "isolation": "container",
           "sandbox": "a fresh uid", "tests": [
               {"name": "test_f_parity", "function": "f", "points": 2.0, "max_points": 2.0, "status": "passed",
                "message": ""},
               {"name": "test_f_float32", "function": "f", "points": 0.0, "max_points": 1.0, "status": "failed",
                "message": "dtype float64, expected float32"},
               {"name": "test_g_parity", "function": "g", "points": 1.0, "max_points": 3.0, "status": "error",
                "message": "crash", "grader_fault": True, "some_future_key": [1]}],
           "subtotals": {"notebooks": {"nb1": {"score": 2.0, "max_score": 3.0}, "nb2": {"score": 1.0, "max_score": 3.0}},
                         "functions": {"f": {"score": 2.0, "max_score": 3.0, "notebook": "nb1"},
                                       "g": {"score": 1.0, "max_score": 3.0, "notebook": "nb2"}}},
           "notebooks": {"nb1": {"file": "Copy of nb1.ipynb", "notes": ["nb1.ipynb not found; graded Copy of nb1.ipynb"],
                                 "cell_errors": ["cell `f`: [error] ZeroDivisionError: division by zero"]},
                         "nb2": {"file": None, "notes": [], "cell_errors": []}},
           "grader_faults": ["test_g_parity"]}
    res.update(over)
    return res


CFG = {"assignment": A, "notebooks": ["nb1.ipynb", "nb2.ipynb"], "visible_tests": "visible",
       "hidden_tests": "after_due_date", "score_visibility": None, "mirror_tests": ["test_f_parity", "test_g_parity"]}


def test_results_page_subtotals_visibility_late_and_instructors_line():
    up = gs.Upload(files={"Copy of nb1.ipynb": "hw/Copy of nb1.ipynb"}, ignored=["hw/x/nb1.ipynb: another file"],
                   refused=["link.ipynb: a symbolic link: not read"])
    lat = LatePolicy.from_dict({"percent": 10, "per": "day"}).assess(A, "s", LATE_32H, DUE)
    doc = gs.results_page(_result(), CFG, up, lat, 2.5)
    check_spec(doc)
    by = {t["name"]: t for t in doc["tests"]}
    assert by["f: test_f_parity"]["visibility"] == "visible" and by["f: test_f_float32"]["visibility"] == "after_due_date"
    assert doc["visibility"] == "after_due_date" and doc["stdout_visibility"] == "hidden"
    assert doc["score"] == pytest.approx(3.0 * 0.8) and doc["extra_data"]["late"]["percent"] == 20
    sub = by["Subtotal of nb1.ipynb: 2 / 3 points"]
    assert "f: 2 / 3" in sub["output"] and "score" not in sub and sub["visibility"] == "after_due_date"
    late = next(t for t in doc["tests"] if t["name"].startswith("Late penalty"))
    assert late["name"] == "Late penalty: -0.6 points" and "-20 % (10 % per day)" in late["output"]
    inst = next(t for t in doc["tests"] if t["name"].startswith("For instructors"))
    assert inst["visibility"] == "hidden" and "container" in inst["output"] and "test_g_parity" in inst["output"]
    out = doc["output"]
    for word in ("nb1.ipynb: graded Copy of nb1.ipynb (from hw/Copy of nb1.ipynb)", "ZeroDivisionError",
                 "Not graded: hw/x/nb1.ipynb", "Not read: link.ipynb", "Not found in your upload: nb2.ipynb",
                 "Expected file names: nb1.ipynb, nb2.ipynb", "submitted 1 d 8 h late: -20 % (10 % per day)",
                 "2 of 3 tests are shown now"):
        assert word in out, (word, out)
    assert "3 / 6" not in out and "2 / 3" not in out, "the output, shown at once, holds no hidden score"
    assert "grader" in by["g: test_g_parity"]["output"]
    nums = [t["number"] for t in doc["tests"]]
    assert len(set(nums)) == len(nums)


@pytest.mark.parametrize("created, user_due, percent, late", [
    ("2026-11-20T23:00:00-08:00", None, 0, False),                         # on time
    ("2026-11-21T00:10:00-08:00", None, 0, False),                         # inside the 15 minutes' grace
    ("2026-11-21T00:30:00-08:00", None, 10, True),                         # 31 min late: one started day
    ("2026-11-23T23:00:00-08:00", None, 30, True),                         # 71 h: three days
    ("2026-11-23T23:00:00-08:00", "2026-11-25T00:00:00-08:00", 0, False),  # the student's own due date
    ("2026-11-21T09:00:00Z", None, 10, True),                              # another time zone: 01:00 -08:00
])
def test_lateness_from_gradescope_metadata(created, user_due, percent, late):
    cfg = {"assignment": A, "late_policy": LatePolicy.from_dict({"percent": 10, "grace_minutes": 15,
                                                                  "zero_after_days": 3}).to_dict()}
    lat = gs._lateness(cfg, _metadata(created, user_due), "ada@example.com")
    assert lat.late == late and lat.percent == percent, lat.words
    assert gs._lateness({**cfg, "late_policy": None}, _metadata(created), "x") is None
    zero = gs._lateness(cfg, _metadata("2026-11-24T01:00:00-08:00"), "x")  # past the 3 late days
    assert zero.apply(40, 43) == 0 and "score 0" in zero.words


def test_the_policys_own_due_date_and_extension_when_gradescope_has_none():
    cfg = {"assignment": A, "late_policy": {"due": {A: "2026-11-20T23:59:00-08:00"}, "percent": 10,
                                            "extensions": {"ada@example.com": {"*": "2d"}}}}
    md = {"created_at": "2026-11-22T08:00:00-08:00", "users": [{"email": "ada@example.com"}]}
    assert not gs._lateness(cfg, md, "ada@example.com").late
    assert gs._lateness(cfg, md, "bob@example.com").percent == 20


def test_results_page_all_visible_and_no_policy():
    cfg = {**CFG, "hidden_tests": "visible"}
    doc = gs.results_page(_result(), cfg, None, None, None)
    check_spec(doc)
    assert doc["visibility"] == "visible" and doc["score"] == 3.0
    assert all(t["visibility"] == "visible" for t in doc["tests"] if not t["name"].startswith("For instructors"))
    assert "late" not in doc["output"].lower()


def test_results_page_escapes_what_the_student_named():
    evil = '<img src=x onerror="alert(1)">.ipynb'
    res = _result(notebooks={"nb1": {"file": evil, "notes": [], "cell_errors": ["<script>x</script>"]}})
    doc = gs.results_page(res, CFG, gs.Upload(files={evil: evil}), None, None)
    check_spec(doc)
    assert doc["output_format"] == "simple_format"
    assert "<img" not in doc["output"] and "<script>" not in doc["output"] and "&lt;img" in doc["output"]


# ---------------------------------------------------------------------------------------------------------
# from the zip alone: a fresh environment built by the zip's setup.sh with the system's Python
def _clean_env(**extra) -> dict:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8", "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def wheelhouse(zips) -> Path:
    """The bundle's packages as wheels, downloaded once from this machine's configured indexes (cached
    under _build/, keyed by the bundle's requirements and constraints)."""
    with zipfile.ZipFile(zips[A]) as z:
        req, con = z.read("requirements.txt"), z.read("constraints.txt")
    d = BUILD / "gradescope-wheels" / hashlib.sha256(req + con).hexdigest()[:12]
    if (d / ".complete").is_file():
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d.parent / "requirements.txt").write_bytes(req)
    (d.parent / "constraints.txt").write_bytes(con)
    torch = next(x for x in req.decode().splitlines() if x.startswith("torch=="))
    base = [SYSTEM_PYTHON, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(d)]
    r = subprocess.run(base + ["--no-deps", f"{torch}+cpu"], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:  # not on this machine's indexes: PyTorch's CPU index, as setup.sh uses
        r = subprocess.run(base + ["--no-deps", "--extra-index-url", gs.TORCH_INDEX, f"{torch}+cpu"],
                           capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(base + ["--find-links", str(d), "-r", str(d.parent / "requirements.txt"),
                               "-c", str(d.parent / "constraints.txt")], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    (d / ".complete").write_text("")
    return d


@pytest.fixture(scope="session")
def fromzip(zips, request) -> Path:
    """The Python of a virtual environment that A's setup.sh built from the zip's files alone."""
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import sys, ensurepip, venv; assert sys.version_info >= (3, 11)"],
                       capture_output=True) if os.access(SYSTEM_PYTHON, os.X_OK) else None
    if r is None or r.returncode != 0:  # setup.sh itself would install python3.11 with apt-get
        pytest.skip(f"needs {SYSTEM_PYTHON} >= 3.11 with venv and ensurepip (Debian/Ubuntu: python3-venv)")
    wheelhouse = request.getfixturevalue("wheelhouse")
    root = BUILD / "gradescope-fromzip" / "setup"
    shutil.rmtree(root.parent, ignore_errors=True)
    root.mkdir(parents=True)
    with zipfile.ZipFile(zips[A]) as z:
        z.extractall(root / "source")
    os.chmod(root / "source" / "setup.sh", 0o755)
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root, capture_output=True, text=True,
                       timeout=1800, env=_clean_env(AUTOGRADER_ROOT=str(root), AUTOGRADER_SETUP_PYTHON=SYSTEM_PYTHON,
                                                    AUTOGRADER_WHEELS=str(wheelhouse)))
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "torch 2.13.0+cpu" in r.stdout and "No broken requirements" in r.stdout
    assert "font list built" in r.stdout, r.stdout[-3000:]  # into the image, not at every submission
    size = int(subprocess.run(["du", "-sk", str(root / "venv")], capture_output=True, text=True).stdout.split()[0])
    (BUILD / "gradescope-setup.json").write_text(json.dumps(
        {"setup_seconds": round(seconds, 1), "venv_mib": round(size / 1024), "python": SYSTEM_PYTHON}, indent=2))
    py = root / "venv" / "bin" / "python"
    r = subprocess.run([str(py), "-c", "import sys, torch; print(sys.prefix, torch.__file__)"], capture_output=True,
                       text=True, env=_clean_env())
    assert str(root / "venv") in r.stdout and ".venv" not in r.stdout, r.stdout
    return py


def _metadata(created_at: str, user_due: str | None = None) -> dict:
    user = {"email": "ada@example.com", "id": 4242, "name": "Ada"}
    if user_due:
        user["assignment"] = {"due_date": user_due}
    return {"id": 1, "created_at": created_at, "assignment": {"due_date": DUE, "late_due_date": None,
                                                             "title": "Chapter 1", "total_points": "43.0"},
            "submission_method": "upload", "users": [user], "previous_submissions": []}


def _layout(bundle: Path, name: str, files: dict[str, bytes], metadata: dict) -> Path:
    """What Gradescope's harness lays out: /autograder/{source,run_autograder,submission,...} (under _build/:
    the container's fresh uid must be able to reach the interpreter, as in an image)."""
    root = BUILD / "gradescope-fromzip" / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    for rel, data in files.items():
        (root / "submission" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / rel).write_bytes(data)
    (root / "submission_metadata.json").write_text(json.dumps(metadata))
    return root


def _run(py: Path, bundle: Path, name: str, files: dict[str, bytes], metadata: dict, wrap=None) -> dict:
    root = _layout(bundle, name, files, metadata)
    cmd = [str(root / "run_autograder")]
    r = subprocess.run(container.wrap(cmd) if wrap else cmd, cwd=root, capture_output=True, text=True, timeout=900,
                       env=_clean_env(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=str(py)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads((root / "results" / "results.json").read_text())
    check_spec(doc)
    (BUILD / "gradescope-fromzip" / f"{name}.results.json").write_text(json.dumps(doc, indent=2))
    return doc


def _notebooks(folder: str, assignment: str = A, mutate=None) -> dict[str, bytes]:
    out = {}
    for p in sorted((REPO / folder / assignment).glob("*.ipynb")):
        nb = json.loads(p.read_text())
        if mutate:
            mutate(p.name, nb)
        out[p.name] = json.dumps(nb).encode()
    return out


def _bug(name, nb):
    for c in nb["cells"]:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "tanh_backward":
            src = "".join(c["source"])
            assert "dout * (1 - out ** 2)" in src
            c["source"] = src.replace("dout * (1 - out ** 2)", "dout * (1 - out)")


def _raise_in(grade_id):
    def mutate(name, nb):
        for c in nb["cells"]:
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                c["source"] = "".join(c["source"]) + "\nraise ValueError('my own mistake')\n"
    return mutate


def _full(doc) -> bool:
    graded = [t for t in doc["tests"] if "max_score" in t]
    return bool(graded) and doc["score"] == sum(t["max_score"] for t in graded)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_from_zip_reference_full_marks_and_stub_zero(fromzip, zips, assignment):
    """Every assignment's zip, from the zip alone, gives its reference full marks. The released stubs'
    zero is graded from A's zip (the same code path for every zip; every chapter's stubs score zero
    in the course's own run, tests/test_grading.py)."""
    doc = _run(fromzip, zips[assignment], f"{assignment}-reference", _notebooks("solutions", assignment),
               _metadata(ON_TIME))
    assert _full(doc), doc["output"]
    assert all(t["score"] == t["max_score"] for t in doc["tests"] if "max_score" in t)
    assert doc["extra_data"]["isolation"] not in ("weak", "unknown")
    if assignment != A:
        return
    doc = _run(fromzip, zips[assignment], f"{assignment}-stub", _notebooks("exercises", assignment), _metadata(ON_TIME))
    assert doc["score"] == 0 and all(t["score"] == 0 for t in doc["tests"] if "score" in t)
    assert all(t["output"] for t in doc["tests"]), "every failed test says why"


def test_from_zip_partial_late_renamed(fromzip, zips):
    files = _notebooks("solutions", mutate=_bug)
    files["hw1/Copy of gradients_numpy.ipynb"] = files.pop("gradients_numpy.ipynb")
    doc = _run(fromzip, zips[A], "partial-late-renamed", files, _metadata(LATE_32H))
    graded = [t for t in doc["tests"] if "max_score" in t]
    lost = {t["tags"][0] for t in graded if t["score"] < t["max_score"]}
    # the bug costs its own function and the notebook's whole chain (its :together item), nothing else
    assert "tanh_backward" in lost and lost <= {"tanh_backward", "two_layer_net", "gradients_numpy:together"}, lost
    raw = sum(t["score"] for t in graded)
    assert 0 < raw < sum(t["max_score"] for t in graded) and doc["extra_data"]["raw_score"] == raw
    assert doc["score"] == pytest.approx(raw * 0.8)
    out = doc["output"]
    assert "gradients_numpy.ipynb: graded Copy of gradients_numpy.ipynb (from hw1/Copy of gradients_numpy.ipynb)" in out
    assert "Not found" not in out and "-20 % (10 % per day)" in out
    assert any(t["name"].startswith("Late penalty: -") for t in doc["tests"])
    assert any(t["name"].startswith("Subtotal of gradients_numpy.ipynb") and t["status"] == "failed" for t in doc["tests"])


def test_from_zip_a_copy_beside_the_stub_is_named_and_a_raising_cell_is_shown(fromzip, zips):
    files = _notebooks("exercises")
    files["gradients_numpy (1).ipynb"] = _notebooks("solutions")["gradients_numpy.ipynb"]
    files["gradients_torch.ipynb"] = _notebooks("solutions", mutate=_raise_in("AffineFunction"))["gradients_torch.ipynb"]
    doc = _run(fromzip, zips[A], "copy-beside-stub", files, _metadata(ON_TIME))
    out = doc["output"]
    assert "gradients_numpy (1).ipynb" in out and "not graded" in out, out
    assert "ValueError" in out and "my own mistake" in out, out


def test_from_zip_notebooks_in_folders_and_in_a_zip(fromzip, zips):
    ref = _notebooks("solutions")
    doc = _run(fromzip, zips[A], "folders", {f"my work/week 1/{k}": v for k, v in ref.items()}, _metadata(ON_TIME))
    assert _full(doc), doc["output"]
    upload = _zip([(f"hw/{k}", v, 0o100644) for k, v in ref.items()]
                  + [("../../../escape.ipynb", b"{}", 0o100644), ("link.ipynb", b"/etc/passwd", 0o120777)])
    doc = _run(fromzip, zips[A], "zipped", {"submission.zip": upload}, _metadata(ON_TIME))
    assert _full(doc), doc["output"]
    assert "escape.ipynb: a path outside" in doc["output"] and "link.ipynb: a symbolic link" in doc["output"]
    assert not (BUILD / "gradescope-fromzip" / "escape.ipynb").exists()


def test_from_zip_empty_upload_names_the_expected_files(fromzip, zips):
    doc = _run(fromzip, zips[A], "empty", {"readme.txt": b"sorry"}, _metadata(ON_TIME))
    assert doc["score"] == 0
    assert "Expected file names: gradients_numpy.ipynb, gradients_torch.ipynb" in doc["output"]
    assert "Your upload held: readme.txt" in doc["output"]


# ---------------------------------------------------------------------------------------------------------
# the same zip under Docker's restrictions (no namespaces, Docker's capabilities): the grader's container mode
WHY = container.available()
needs_container = pytest.mark.skipif(bool(WHY), reason=WHY or "")

ATTACK = '''
import glob, json, os, time
_found = []
for p in glob.glob("ROOT/**", recursive=True) + glob.glob("/autograder/**", recursive=True):
    if p.endswith((".py", ".json")):
        try:
            _found.append(p + ": " + open(p).read()[:200])
        except OSError:
            pass
if os.fork() == 0:  # a detached process that rewrites every results.json it can reach, for a minute
    os.setsid()
    for _ in range(120):
        for p in glob.glob("ROOT/results/*") + glob.glob("/tmp/gradescope-*/results/*/*/results.json"):
            try:
                open(p, "w").write(json.dumps({"score": 999, "tests": []}))
            except OSError:
                pass
        time.sleep(0.5)
    os._exit(0)
def relative_error(a, b):
    raise RuntimeError("LEAK " + " | ".join(_found))
'''


def _attack(name, nb):
    if name == "gradients_numpy.ipynb":
        for c in nb["cells"]:
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "relative_error":
                c["source"] = ATTACK.replace("ROOT", str(BUILD / "gradescope-fromzip" / "container-attacker"))


@needs_container
def test_from_zip_in_a_container_honest_full_marks_and_an_attacker_gets_nothing(fromzip, zips):
    honest = _run(fromzip, zips[A], "container-honest", _notebooks("solutions"), _metadata(ON_TIME), wrap=True)
    assert _full(honest) and honest["extra_data"]["isolation"] == "container", honest["output"]
    doc = _run(fromzip, zips[A], "container-attacker", _notebooks("solutions", mutate=_attack), _metadata(ON_TIME),
               wrap=True)
    time.sleep(2)  # a surviving writer would have rewritten it by now
    root = BUILD / "gradescope-fromzip" / "container-attacker"
    final = json.loads((root / "results" / "results.json").read_text())
    assert final == doc and final["score"] != 999
    text = json.dumps(final)
    assert "def test_" not in text and "@graded" not in text and "mirror_tests" not in text
    assert "LEAK" in text  # the attack ran, and read nothing
    leaked = text.split("LEAK", 1)[1][:3000]
    assert ".py:" not in leaked and ".json:" not in leaked, leaked
    twin = _run(fromzip, zips[A], "container-honest-after", _notebooks("solutions"), _metadata(ON_TIME), wrap=True)
    strip = lambda d: [(t["name"], t.get("score"), t["output"]) for t in d["tests"] if "score" in t]  # noqa: E731
    assert strip(twin) == strip(honest) and twin["score"] == honest["score"]
