"""The book as a reader sees it: every page opened in headless Chromium.

No error output or traceback in executed cells, equations typeset by MathJax (served from the book
itself, offline), every image loaded and given alt text, launch and download buttons on exercise
pages, no solution or hidden-test text in what the browser shows. Screenshots of key pages are kept
in _build/screenshots/ (build artefacts, not committed). Skipped when no Chromium is installed
(.ci/run installs Debian's chromium and chromium-driver).
"""
from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import REPO
from test_leaks import hidden_test_lines, solution_lines

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
KEY_PAGES = ["book/intro.html", "book/ch01_gradients.html", "book/ch03_vanishing.html", "book/ch04_lstm.html",
             "exercises/ch01_gradients/gradients_numpy.html"]

WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done("ok")).catch(e => done("error: " + e));
} else { done(document.querySelector('.math') ? "mathjax missing" : "no math"); }
"""

INSPECT = """
const main = document.querySelector('main') || document.body;
const imgs = Array.from(main.querySelectorAll('img'));
return {
  errors: Array.from(document.querySelectorAll('.output.error, .output.traceback, .cell_output .traceback'))
            .map(e => e.innerText.slice(0, 200)),
  tracebacks: Array.from(document.querySelectorAll('.cell_output')).filter(e => e.innerText.includes('Traceback (most recent call last)')).length,
  math: document.querySelectorAll('div.math, span.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
  merrors: document.querySelectorAll('mjx-merror').length,
  broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  no_alt: imgs.filter(i => !(i.getAttribute('alt') || '').trim()).map(i => i.src),
  launch: Array.from(document.querySelectorAll('a')).filter(a => /colab|mybinder/.test(a.href)).length,
  download: document.querySelectorAll('.btn-download-source-button, [title*="Download"], [aria-label*="Download"]').length,
  text: document.body.innerText,
};
"""


@pytest.fixture(scope="module")
def site(built_book):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_book))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", built_book
    srv.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium/chromedriver installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
              f"--user-data-dir={profile}", "--window-size=1280,1600"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    drv.set_script_timeout(60)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def pages(root: Path):
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(("_static", "_sources", "_images")) or rel in ("genindex.html", "search.html"):
            continue
        yield rel


def test_every_page_as_a_reader_sees_it(site, browser):
    base, root = site
    shots = REPO / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    secrets = solution_lines() | hidden_test_lines()
    problems, checked = [], 0
    for rel in pages(root):
        browser.get(f"{base}/{rel}")
        mj = browser.execute_async_script(WAIT_MATHJAX)
        info = browser.execute_script(INSPECT)
        checked += 1
        if info["errors"] or info["tracebacks"]:
            problems.append(f"{rel}: error output in executed cells: {info['errors'][:2]}")
        if info["math"] and (mj != "ok" or info["typeset"] == 0 or info["merrors"]):
            problems.append(f"{rel}: {info['math']} equations, {info['typeset']} typeset, MathJax: {mj}, "
                            f"{info['merrors']} errors")
        if info["broken_images"]:
            problems.append(f"{rel}: images that did not load: {info['broken_images'][:3]}")
        if info["no_alt"]:
            problems.append(f"{rel}: images without alt text: {info['no_alt'][:3]}")
        if rel.startswith("exercises/") and (info["launch"] < 2 or not info["download"]):
            problems.append(f"{rel}: launch buttons ({info['launch']}) or download button ({info['download']}) missing")
        text = " ".join(info["text"].split())
        leaked = [s for s in secrets if s in text]
        if leaked:
            problems.append(f"{rel}: shows solution or hidden-test text: {leaked[:2]}")
        if rel in KEY_PAGES:
            browser.save_screenshot(str(shots / (rel.replace("/", "_").replace(".html", ".png"))))
    assert checked >= 5
    assert not problems, "\n".join(problems)
