"""The book as a reader sees it: every page opened in headless Chromium, on a laptop and on a phone.

Every page is opened at 1280 px and at a true 400 px wide (Chrome's device emulation through CDP,
Emulation.setDeviceMetricsOverride: a mobile viewport at device scale 2; a headless window would be
widened to 500 px). No error output or traceback in executed cells, equations typeset by MathJax
(served from the book itself, offline), every image (the SVG diagrams included) loaded and given alt
text, launch and download buttons on exercise pages, no solution or hidden-test text in what the
browser shows. Layout: at 1280 px every equation fits the text column without scrolling; no code cell
wider than the column at 1280 px. At both widths (tests/phone_measure.js measures it): the page never
scrolls sideways; no display equation or table is cut (each fits, or scrolls inside its own box; a
table that scrolls keeps its first column in view); every figure's smallest text is 9 CSS px or more
(SVG: font size after scaling; Matplotlib PNG: the smallest text recorded by rnnlib.plotting times
the displayed scale); a printed table keeps its rows (no wrapped lines). The measured numbers are
written to _build/layout-report.json. The interactive figures respond: moving a slider redraws the
figure. Screenshots of key pages at both widths are kept in _build/screenshots/ (build artefacts, not
committed). Skipped when no Chromium is installed (.ci/run installs Debian's chromium and
chromium-driver).
"""
from __future__ import annotations

import functools
import http.server
import json
import threading
import time
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
  if (pre.classList.contains('rnn-table-output') && box.right <= col.right + 2) continue;  // a printed table scrolls in its box
  if (pre.scrollWidth > pre.clientWidth + 2 || box.right > col.right + 2) out.code_wide.push(label(pre));
}
return out;
"""

# The phone and laptop measurements (see the module docstring); the script returns JSON text.
MEASURE = (Path(__file__).parent / "phone_measure.js").read_text()
MIN_TEXT_PX = 9.0


def set_width(browser, width: int):
    """A true viewport width: a phone (mobile, device scale 2) under 600 px, a laptop above."""
    phone = width < 600
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900 if phone else 1600, "deviceScaleFactor": 2 if phone else 1,
                             "mobile": phone})


def wait_for_layout(browser, seconds: float = 20):
    """book/_static/rnn.js sets data-rnn-layout once it has sized the figures."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if browser.execute_script("return document.documentElement.getAttribute('data-rnn-layout')"):
            return True
        time.sleep(0.1)
    return False


def layout_problems(where: str, m: dict) -> list[str]:
    out = []
    if m["overflow"] > 1:
        out.append(f"{where}: the page scrolls sideways by {m['overflow']} px: {m['sticking_out'][:3]}")
    cut = [e["label"] for e in m["equations"] if e["state"] == "cut"]
    if cut:
        out.append(f"{where}: equations cut at the column's edge: {cut}")
    for t in m["tables"]:
        if t["state"] == "cut":
            out.append(f"{where}: table cut at the column's edge: {t['label']} ({t['width']} px)")
        elif t["state"] == "scrolls" and not t["sticky_first"]:
            out.append(f"{where}: a table that scrolls loses its first column: {t['label']}")
    for f in m["figures"]:
        if m["viewport"] >= 1000 and f["shown"] > m["column"] + 2:
            out.append(f"{where}: figure {f['src']} is wider than the column ({f['shown']} px > {m['column']} px)")
        if f["smallest"] is None:
            out.append(f"{where}: figure {f['src']} carries no record of its text size (draw it with use_book_style())")
        elif f["smallest"] < MIN_TEXT_PX - 0.05:
            out.append(f"{where}: figure {f['src']}: smallest text {f['smallest']:.1f} px (< {MIN_TEXT_PX})")
    for p in m["printed"]:
        if p["wraps"]:
            out.append(f"{where}: a printed table wraps its rows ({p['lines']} lines drawn as {p['drawn']}): {p['label']}")
    return out


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
    problems, checked, svgs, interactive, report = [], 0, 0, 0, {}
    for width in WIDTHS:
        set_width(browser, width)
        for rel in pages(root):
            browser.get(f"{base}/{rel}")
            mj = browser.execute_async_script(WAIT_MATHJAX)
            info = browser.execute_script(INSPECT)
            layout = browser.execute_script(LAYOUT)
            checked += 1
            where = f"{rel} at {width} px"
            if not wait_for_layout(browser):
                problems.append(f"{where}: book/_static/rnn.js did not finish (no data-rnn-layout)")
            measured = json.loads(browser.execute_async_script(MEASURE))
            if "error" in measured:
                problems.append(f"{where}: the layout measurement failed: {measured['error']}")
            else:
                report[f"{rel}@{width}"] = measured
                problems += layout_problems(where, measured)
                missing = [u for u in measured["pdf_links"] if not (root / u.lstrip("/")).is_file()]
                if missing:
                    problems.append(f"{where}: links to PDFs that the site does not hold: {missing}")
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
    (REPO / "_build" / "layout-report.json").write_text(json.dumps(report, indent=1))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert checked >= 10
    assert svgs >= 6, f"only {svgs} SVG diagrams found in the book"
    assert interactive >= 2, f"only {interactive} interactive figures found in the book"
    assert not problems, "\n".join(problems)


def test_interactive_figures_respond_to_their_sliders(site, browser):
    """Move each slider with the keyboard, as a reader would: the figure must redraw."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, root = site
    set_width(browser, 1280)
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


def test_book_style_records_and_floors_figure_text():
    """What rnn.js and the phone check read: the PNG carries its smallest text (image px), no text under
    MIN_TEXT_PT points is drawn, and in a notebook the inline backend's PNG formatter is the book's."""
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat
    from nbclient import NotebookClient
    from PIL import Image

    from rnnlib import plotting

    plotting.use_book_style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    axes[0].plot([0, 1], label="a")
    axes[0].legend(fontsize=7)
    png = Image.open(io.BytesIO(plotting.figure_png(fig, base64=False)))
    px = float(png.text[plotting.PNG_TEXT_KEY])
    assert abs(px - plotting.MIN_TEXT_PT * fig.dpi / 72) < 0.01, px
    assert min(t.get_fontsize() for t in axes[0].get_legend().get_texts()) == plotting.MIN_TEXT_PT
    plt.close(fig)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom rnnlib.plotting import use_book_style\n"
                                          "use_book_style()"),
                nbformat.v4.new_code_cell("fig, ax = plt.subplots(1, 2, figsize=(10, 3))\nax[0].plot([0, 1])")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    shown = [o["data"]["image/png"] for o in nb.cells[1].outputs if "image/png" in o.get("data", {})]
    assert shown, nb.cells[1].outputs
    assert plotting.PNG_TEXT_KEY in Image.open(io.BytesIO(base64.b64decode(shown[0]))).text
