"""Shared fixtures and test tiers.

Fixtures: the book built once per session (``built_book``), the whole course graded once (reference
and stubs, ``graded_course``). The grading harness itself is ``tools/course.py``.

Tiers (markers, set here from what a test uses, so that no test file has to remember them):
- ``book``: needs the built book (the ``built_book`` fixture);
- ``browser``: opens the built book in Chromium (tests/test_browser.py);
- ``slow``: grades large corpora, runs nbgrader or the mutation check, or builds a scratch chapter.
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
SLOW_MODULES = {"test_mutation", "test_messages", "test_adversarial", "test_nbgrader_bridge", "test_cli", "test_walkthrough",
                "test_experiments", "test_runs", "test_publish", "test_gradescope", "test_export"}
SLOW_TESTS = {"test_exercises_match_nbgrader_release"}  # runs nbgrader once per chapter
BROWSER_MODULES = {"test_browser"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        mod = item.module.__name__.rsplit(".", 1)[-1]
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.book)
        if mod in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if mod in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def run_grader(submitted: Path, out: Path, *args: str, timeout: float = 900, wrap=None) -> subprocess.CompletedProcess:
    return course.grade(submitted, out, *args, timeout=timeout, wrap=wrap)


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """Every chapter's reference notebooks (student 'reference') and released stubs ('stub')."""
    root = tmp_path_factory.mktemp("course")
    sub = make_class(root / "submitted", {
        "reference": {c: REPO / "solutions" / c for c in CHAPTERS},
        "stub": {c: REPO / "exercises" / c for c in CHAPTERS},
    })
    out = root / "results"
    r = run_grader(sub, out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    return out


def load_results(out: Path, student: str, assignment: str) -> dict:
    return course.results(out, student, assignment)


@pytest.fixture(scope="session")
def built_book():
    """Build the executed book once per session (warnings are errors); returns _build/html.

    With RNNBOOK_PREBUILT=1, reuse the build that `make book` just made in the same CI run (its log is
    _build/book.log) instead of building a second time."""
    if os.environ.get("SKIP_BOOK"):
        pytest.skip("SKIP_BOOK is set")
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
