"""Shared fixtures and test tiers.

Fixtures: the book built once per run (``built_book``), the whole course graded once (reference
and stubs, ``graded_course``). The grading harness itself is ``tools/course.py``. ``make test`` runs the
suite on 3 pytest-xdist workers (``--dist loadgroup``: a test file, or the files that share a costly
fixture, run on one worker, so each fixture is built once; see ``GROUP_SECONDS``); ``once`` builds
what is shared for the whole run under a file lock, so that no order of tests can build it twice.

Tiers (markers, set here from what a test uses, so that no test file has to remember them):
- ``book``: needs the built book (the ``built_book`` fixture);
- ``browser``: opens the built book in Chromium (tests/test_browser.py);
- ``slow``: grades large corpora (the whole course too), runs nbgrader or the mutation check, or builds a
  scratch chapter.
``make test-fast`` runs ``-m "not slow and not book and not browser"``; ``make test`` runs everything.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.testkit import manifest  # noqa: E402
from tools import course  # noqa: E402
from tools.course import make_class  # noqa: E402,F401  (re-exported for the tests that import it from here)

# The chapters with exercises, from chapters.yml (the one list).
CHAPTERS = manifest.chapter_ids("exercises")
SLOW_MODULES = {"test_mutation", "test_messages", "test_adversarial", "test_container", "test_nbgrader_bridge", "test_cli", "test_walkthrough",
                "test_experiments", "test_runs", "test_publish", "test_gradescope", "test_export", "test_platforms", "test_nbgrader_orders",
                "test_variants", "test_module_variants"}  # (these two grade notebooks with mistakes, to search their corrections)
SLOW_TESTS = {"test_exercises_match_nbgrader_release"}  # runs nbgrader once per chapter
BROWSER_MODULES = {"test_browser"}


# For ``make test`` on 3 xdist workers (``--dist loadgroup``): the tests that share a costly fixture run
# on one worker, one after another, so no worker waits for the other's build: everything that reads
# the built book is one group, everything that reads the graded course another, every other file a
# group of its own. Groups are handed out longest first (seconds of one group run alone on 2 cores,
# measured), so that the short ones fill the end of the run on every worker. This order holds only with
# ``--no-loadscope-reorder`` (the Makefile passes it): by default pytest-xdist reorders the groups by
# their NUMBER of tests, which started the book's build, 13 tests, eleventh (``pytest_configure`` below
# turns that off for any ``--dist loadgroup`` run).
GROUP_SECONDS = {"book": 230, "test_adversarial": 125, "test_gradescope": 111, "test_container": 111,
                 "test_publish": 81, "test_runs": 66, "test_nbgrader_bridge": 63, "test_nbgrader_orders": 44,
                 "test_cli": 32, "test_mutation": 35, "test_platforms": 28, "test_notebooks": 5, "course": 35,
                 "test_heldout": 23, "test_from_scratch": 20, "test_experiments": 17, "test_styles": 15,
                 "test_walkthrough": 14}


def pytest_configure(config):
    """GROUP_SECONDS's order, kept also when pytest is run with ``--dist loadgroup`` by hand."""
    if getattr(config.option, "dist", "no") == "loadgroup" and hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def _group(item) -> str:
    fixtures = getattr(item, "fixturenames", ())
    if "built_book" in fixtures or item.module.__name__.rsplit(".", 1)[-1] in BROWSER_MODULES:
        return "book"
    if "graded_course" in fixtures:
        return "course"
    return item.module.__name__.rsplit(".", 1)[-1]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (it appends each to the test id)
def pytest_collection_modifyitems(config, items):
    for item in items:
        mod = item.module.__name__.rsplit(".", 1)[-1]
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.book)
        if mod in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if mod in SLOW_MODULES or item.originalname in SLOW_TESTS or "graded_course" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)  # (grading the whole course: `make selfcheck` is its quick form)
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    order = {id(it): i for i, it in enumerate(items)}
    items.sort(key=lambda it: (-GROUP_SECONDS.get(_group(it), 0), _group(it), order[id(it)]))


def run_grader(submitted: Path, out: Path, *args: str, timeout: float = 900, wrap=None,
               env: dict | None = None) -> subprocess.CompletedProcess:
    return course.grade(submitted, out, *args, timeout=timeout, wrap=wrap, env=env)


def once(tmp_path_factory, name: str, make):
    """``make(folder)`` run once for the whole test run, even across xdist workers: the first worker to
    get here makes it (under a lock) and records the path it returned; the others wait and reuse it. A
    make that fails records nothing, so the next one tries again (and fails with its own message)."""
    import json

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by every worker of this run
    done = base / f"{name}.done"
    with FileLock(str(base / f"{name}.lock")):
        if done.is_file():
            return Path(json.loads(done.read_text()))
        folder = base / name
        folder.mkdir(exist_ok=True)
        value = make(folder)
        done.write_text(json.dumps(str(value)))
        return value


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """Every chapter's reference notebooks (student 'reference') and released stubs ('stub')."""
    return once(tmp_path_factory, "course", _grade_the_course)


def _grade_the_course(root: Path) -> Path:
    sub = make_class(root / "submitted", {
        "reference": {c: REPO / "solutions" / c for c in CHAPTERS},
        "stub": {c: REPO / "exercises" / c for c in CHAPTERS},
    })
    out = root / "results"
    os.environ["AUTOGRADER_AUDIT"] = str(root / "requests.jsonl")  # tests/test_requests.py reads it
    try:
        r = run_grader(sub, out, "--workers", "2")
    finally:
        os.environ.pop("AUTOGRADER_AUDIT", None)
    assert r.returncode == 0, r.stderr
    return out


def load_results(out: Path, student: str, assignment: str) -> dict:
    return course.results(out, student, assignment)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Build the executed book once per run (warnings are errors); returns _build/html.

    With RNNBOOK_PREBUILT=1, reuse the build that `make book` just made in the same CI run (its log is
    _build/book.log) instead of building a second time."""
    if os.environ.get("SKIP_BOOK"):
        pytest.skip("SKIP_BOOK is set")
    return once(tmp_path_factory, "book", _build_the_book)


def _build_the_book(_folder: Path) -> Path:
    (REPO / "_build").mkdir(exist_ok=True)
    if os.environ.get("RNNBOOK_PREBUILT"):
        log = REPO / "_build" / "book.log"
        assert log.exists() and (REPO / "_build" / "html").is_dir(), \
            "RNNBOOK_PREBUILT is set but there is no _build/html and _build/book.log: run `make book` first"
        (REPO / "_build" / "build.log").write_text(log.read_text())
        return REPO / "_build" / "html"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)
    log = r.stdout + r.stderr
    (REPO / "_build" / "build.log").write_text(log)
    assert r.returncode == 0, "book build failed (see _build/build.log):\n" + log[-4000:]
    return REPO / "_build" / "html"


@contextlib.contextmanager
def headless_chromium(window: str = "1280,1600"):
    """Debian's Chromium under selenium, offline and quiet; skips the test where it is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no chromium/chromedriver installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="chromium-")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
              f"--user-data-dir={profile}", f"--window-size={window}", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    drv.set_script_timeout(60)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
