"""The book as a reader sees it: every page opened in headless Chromium, on a laptop and on a phone.

Every page is opened at 1280 px and at 400 px wide. No error output or traceback in executed cells,
equations typeset by MathJax (served from the book itself, offline), every image (the SVG diagrams
included) loaded and given alt text, launch and download buttons on exercise pages, no solution or
hidden-test text in what the browser shows. Layout: at 1280 px every equation fits the text column
without scrolling; at 400 px none is wider than the column or clipped (a long one, or a wide table,
may scroll inside the column); no code cell wider than the column at 1280 px. The interactive figures respond: moving a slider redraws the
figure. Screenshots of key pages at both widths are kept in _build/screenshots/ (build artefacts, not
committed). Skipped when no Chromium is installed (.ci/run installs Debian's chromium and
chromium-driver).
"""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from conftest import headless_chromium, REPO
from test_leaks import hidden_test_lines, solution_lines

KEY_PAGES = ["book/intro.html", "book/notation.html", "book/ch01_gradients.html", "book/ch02_rnn.html",
             "book/ch03_vanishing.html", "book/ch04_lstm.html", "book/ch05_gru.html",
             "exercises/ch01_gradients/gradients_numpy.html"]
WIDTHS = (1280, 400)

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
  svgs: imgs.filter(i => /[.]svg([?]|$)/.test(i.src)).length,
  interactive: main.querySelectorAll('.rnn-interactive').length,
  text: document.body.innerText,
};
"""

# Layout: the text column is the article; an element "fits" when its drawn content does not reach past
# the column's edges. A display equation may scroll inside a container narrower than itself only when
# that container lets the reader scroll (overflow-x auto or scroll), never when it clips (hidden).
LAYOUT = """
const col = (document.querySelector('article.bd-article') || document.querySelector('main')).getBoundingClientRect();
const out = {math_wide: [], math_clipped: [], math_scrolls: [], code_wide: [], column: Math.round(col.width)};
const label = e => Array.from((e.innerText || e.textContent || '').replace(/\\s+/g, ' ')).slice(0, 60).join('');  // by code point: no half surrogate pair
for (const m of document.querySelectorAll('mjx-container')) {
  const box = m.getBoundingClientRect();
  if (box.width === 0) continue;  // inside a closed dropdown: not drawn
  const inner = m.querySelector('mjx-math') || m;
  const content = inner.getBoundingClientRect().width;
  // the nearest element, the equation itself or an ancestor (a wide table), that scrolls horizontally
  // and lies within the column: the reader can scroll to every part of the equation
  const fits = r => r.right <= col.right + 2 && r.left >= col.left - 2;
  let scroller = null;
  for (let e = m; e && e !== document.body; e = e.parentElement) {
    const ox = getComputedStyle(e).overflowX;
    if ((ox === 'auto' || ox === 'scroll') && fits(e.getBoundingClientRect())) { scroller = e; break; }
    if (ox === 'hidden' || ox === 'clip') {  // clips the equation only if the equation reaches past it
      const r = e.getBoundingClientRect();
      if (box.left < r.left - 2 || box.right > r.right + 2) break;
    }
  }
  if (!fits(box) && !scroller) { out.math_wide.push(label(m)); continue; }
  if (content > box.width + 2 && !scroller) out.math_clipped.push(label(m));
  if (!fits(box) || content > box.width + 2) out.math_scrolls.push(label(m));
}
for (const pre of document.querySelectorAll('div.cell_input pre, div.cell_output pre, div.highlight pre')) {
  const box = pre.getBoundingClientRect();
  if (box.width === 0) continue;
  if (pre.scrollWidth > pre.clientWidth + 2 || box.right > col.right + 2) out.code_wide.push(label(pre));
}
return out;
"""

FRAME = "return Array.from(document.querySelectorAll('.rnn-interactive')).map(f => [f.id, f.getAttribute('data-frame'), f.querySelector('svg').innerHTML.length, f.querySelector('svg').innerHTML]);"


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
    with headless_chromium("1280,1600") as drv:
        yield drv


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
    problems, checked, svgs, interactive = [], 0, 0, 0
    for width in WIDTHS:
        browser.set_window_size(width, 1600)
        for rel in pages(root):
            browser.get(f"{base}/{rel}")
            mj = browser.execute_async_script(WAIT_MATHJAX)
            info = browser.execute_script(INSPECT)
            layout = browser.execute_script(LAYOUT)
            checked += 1
            where = f"{rel} at {width} px"
            if info["errors"] or info["tracebacks"]:
                problems.append(f"{where}: error output in executed cells: {info['errors'][:2]}")
            if info["math"] and (mj != "ok" or info["typeset"] == 0 or info["merrors"]):
                problems.append(f"{where}: {info['math']} equations, {info['typeset']} typeset, MathJax: {mj}, "
                                f"{info['merrors']} errors")
            if info["broken_images"]:
                problems.append(f"{where}: images that did not load: {info['broken_images']}")
            if info["no_alt"]:
                problems.append(f"{where}: images without alt text: {info['no_alt']}")
            if rel.startswith("exercises/") and (info["launch"] < 2 or not info["download"]):
                problems.append(f"{where}: launch buttons ({info['launch']}) or download button ({info['download']}) missing")
            if width >= 1280 and layout["math_scrolls"]:
                problems.append(f"{where}: equations that only fit by scrolling: {layout['math_scrolls']}")
            if layout["math_wide"]:
                problems.append(f"{where}: equations wider than the {layout['column']} px column: {layout['math_wide']}")
            if layout["math_clipped"]:
                problems.append(f"{where}: equations clipped (not scrollable): {layout['math_clipped']}")
            if width >= 1280 and layout["code_wide"]:
                problems.append(f"{where}: code wider than the {layout['column']} px column: {layout['code_wide']}")
            if width == WIDTHS[0]:
                svgs += info["svgs"]
                interactive += info["interactive"]
                text = " ".join(info["text"].split())
                leaked = [s for s in secrets if s in text]
                if leaked:
                    problems.append(f"{rel}: shows solution or hidden-test text: {leaked[:2]}")
            if rel in KEY_PAGES:
                browser.save_screenshot(str(shots / (rel.replace("/", "_").replace(".html", f"_{width}.png"))))
    assert checked >= 10
    assert svgs >= 6, f"only {svgs} SVG diagrams found in the book"
    assert interactive >= 2, f"only {interactive} interactive figures found in the book"
    assert not problems, "\n".join(problems)


def test_interactive_figures_respond_to_their_sliders(site, browser):
    """Move each slider with the keyboard, as a reader would: the figure must redraw."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, root = site
    browser.set_window_size(1280, 1600)
    moved = 0
    for rel in pages(root):
        if "rnn-interactive" not in (root / rel).read_text(errors="replace"):
            continue
        browser.get(f"{base}/{rel}")
        before = browser.execute_script(FRAME)
        assert before, f"{rel}: interactive figure not found"
        for k, (fid, frame, size, svg) in enumerate(before):
            assert size > 500, f"{rel} {fid}: the figure was not drawn on load ({size} characters of SVG)"
            slider = browser.find_element(By.CSS_SELECTOR, f"#{fid} input[type=range]")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
            slider.send_keys(Keys.ARROW_RIGHT if slider.get_attribute("value") != slider.get_attribute("max")
                             else Keys.ARROW_LEFT)
            after = browser.execute_script(FRAME)[k]
            assert after[1] != frame, f"{rel} {fid}: the slider did not change the frame"
            assert after[3] != svg, f"{rel} {fid}: moving the slider did not redraw the figure"
            moved += 1
    assert moved >= 2, f"only {moved} interactive figures were exercised"
