"""One figure style for the book (used by every chapter), and interactive figures for the static site.

An interactive figure here needs no kernel and no CDN: Python precomputes every frame, and the page
gets the data as JSON with a few lines of vanilla JavaScript that redraw an inline SVG when a range
slider moves. It works offline, in the built HTML, and degrades to its first frame without JavaScript
only in the sense that nothing redraws (the first frame is drawn by the same script).
"""
from __future__ import annotations

import html
import json
import math
import uuid


# Text sizes (points). A figure of the default 6.4 in width shown in a phone's 368 px column keeps its
# smallest text (ticks, legends: 11.5 pt) at 9 CSS px or more: 11.5 / 72 * 368 / 6.4 = 9.2 px. Wider
# figures (two panels) are shown wider and scroll on a phone (book/_static/rnn.js reads the size below).
TEXT_PT = {"font.size": 12, "axes.titlesize": 12.5, "axes.labelsize": 12, "xtick.labelsize": 11.5,
           "ytick.labelsize": 11.5, "legend.fontsize": 11.5, "legend.title_fontsize": 11.5,
           "figure.titlesize": 13}
PNG_TEXT_KEY = "rnnlib:smallest-text-px"   # the PNG text chunk that book/_static/rnn.js reads
MIN_TEXT_PT = 9.0   # no figure text smaller than this is shown: smaller sizes are raised to it on display


def use_book_style() -> None:
    """The book's figure style; in a notebook, figures also record their smallest text in their PNG."""
    import matplotlib as mpl

    mpl.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": 100, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
                         "savefig.bbox": "tight", "svg.fonttype": "none", **TEXT_PT})
    _record_text_size_in_png()


def smallest_text_pt(fig) -> float | None:
    """The smallest font size (points) of any visible, non-empty text drawn in the figure."""
    from matplotlib.text import Text

    fig.draw_without_rendering()  # lays the text out (tick labels included) without rasterising
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.get_window_extent().width > 0]
    return min(sizes) if sizes else None


def raise_small_text(fig, floor: float = MIN_TEXT_PT) -> int:
    """Raise every text smaller than `floor` points (a legend asked at 8 pt) to `floor`; returns how many.
    A figure as wide as the column then keeps its text at 9 CSS px or more on a laptop, and a phone
    shows it at most 1/0.72 times wider than the column needs (rnn.js), scrolling sideways."""
    from matplotlib.text import Text

    small = [t for t in fig.findobj(Text) if t.get_fontsize() < floor]
    for t in small:
        t.set_fontsize(floor)
    return len(small)


def figure_png(fig, base64: bool = True, **kwargs):
    """The figure as the notebook shows it (IPython's PNG, bbox tight), text raised to MIN_TEXT_PT, with a
    text chunk giving its smallest text in image pixels (points * dpi / 72)."""
    from IPython.core.pylabtools import print_figure

    raise_small_text(fig)
    pt = smallest_text_pt(fig)
    meta = {PNG_TEXT_KEY: f"{pt * fig.dpi / 72:.2f}"} if pt else {}
    return print_figure(fig, "png", base64=base64, metadata=meta, **kwargs)


def _record_text_size_in_png() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.close(plt.figure())  # loads the inline backend now (pyplot loads it with the first figure): it
    # installs its own PNG formatter, which the line below replaces

    def register(*_):
        ip.display_formatter.formatters["image/png"].for_type(Figure, figure_png)

    register()
    # The inline backend may (re)install its own formatter after the cell that loaded it (a one-off
    # post_run_cell hook): take the PNG formatter back before every cell, once registered.
    if not any(getattr(cb, "__name__", "") == "_rnnlib_png_formatter" for cb in ip.events.callbacks["pre_execute"]):
        register.__name__ = "_rnnlib_png_formatter"
        ip.events.register("pre_execute", register)


_JS = r"""
(function () {
  var root = document.getElementById(%(id)s), spec = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  var svg = root.querySelector("svg"), slider = root.querySelector("input"), out = root.querySelector("output");
  var note = root.querySelector(".rnn-note"), NS = "http://www.w3.org/2000/svg";
  var W = 600, H = 330, L = 74, R = 16, T = 16, B = 56;
  function el(tag, attrs, text) { var e = document.createElementNS(NS, tag); for (var k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; svg.appendChild(e); return e; }
  function fy(v) { var lo = spec.ylim[0], hi = spec.ylim[1];
    if (spec.ylog) { v = Math.max(v, lo); return T + (H - T - B) * (1 - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))); }
    return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); }
  function draw(i) {
    var f = spec.frames[i]; while (svg.firstChild) svg.removeChild(svg.firstChild);
    el("rect", {x: 0, y: 0, width: W, height: H, fill: "white"});
    spec.yticks.forEach(function (t) { var y = fy(t[0]); el("line", {x1: L, x2: W - R, y1: y, y2: y, stroke: "#e3e3e3"}); el("text", {x: L - 6, y: y + 5, "font-size": 16, "text-anchor": "end"}, t[1]); });
    el("line", {x1: L, x2: L, y1: T, y2: H - B, stroke: "#444"}); el("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#444"});
    var n = spec.x.length, fx = function (j) { return L + (W - L - R) * (n === 1 ? 0.5 : (spec.bars ? (j + 0.5) / n : j / (n - 1))); };
    spec.xticks.forEach(function (t) { el("text", {x: fx(t[0]), y: H - B + 21, "font-size": 16, "text-anchor": "middle"}, t[1]); });
    el("text", {x: (L + W - R) / 2, y: H - 8, "font-size": 17, "text-anchor": "middle"}, spec.xlabel);
    el("text", {x: 16, y: (T + H - B) / 2, "font-size": 17, "text-anchor": "middle", transform: "rotate(-90 16 " + (T + H - B) / 2 + ")"}, spec.ylabel);
    f.series.forEach(function (s, k) {
      if (spec.bars) { var bw = 0.7 * (W - L - R) / n; s.y.forEach(function (v, j) { var y = fy(v); el("rect", {x: fx(j) - bw / 2, y: y, width: bw, height: Math.max(0, H - B - y), fill: s.color}); }); return; }
      var pts = s.y.map(function (v, j) { return fx(j).toFixed(1) + "," + fy(v).toFixed(1); }).join(" ");
      el("polyline", {points: pts, fill: "none", stroke: s.color, "stroke-width": s.dash ? 1.6 : 2.4, "stroke-dasharray": s.dash ? "6 4" : "none"});
      el("line", {x1: W - R - 190, x2: W - R - 160, y1: T + 14 + 20 * k, y2: T + 14 + 20 * k, stroke: s.color, "stroke-width": 2.4, "stroke-dasharray": s.dash ? "6 4" : "none"});
      el("text", {x: W - R - 154, y: T + 19 + 20 * k, "font-size": 16}, s.name);
    });
    out.textContent = f.label; if (note) note.textContent = f.note || "";
    root.setAttribute("data-frame", String(i));
  }
  slider.addEventListener("input", function () { draw(+slider.value); });
  draw(+slider.value);
})();
"""


class InteractiveFigure:
    """Raw HTML for the web page; a one-line description wherever HTML cannot be shown."""

    def __init__(self, description: str, html_text: str):
        self.description, self.html = description, html_text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"[interactive figure, in the web version of the book: {self.description}]"


def slider_figure(frames: list[dict], x: list, *, slider_label: str, xlabel: str, ylabel: str,
                  ylim: tuple[float, float], ylog: bool = False, bars: bool = False, start: int = 0,
                  xticks: list | None = None, yticks: list | None = None, alt: str = "", note_style: str = ""):
    """An interactive figure for the static site: a range slider picks one of the precomputed frames.

    frames: [{"label": str shown beside the slider, "series": [{"name", "y", "color", "dash"}],
    "note": optional text shown under the figure}]; x: the horizontal positions (or bar labels).
    Returns an object that displays as raw HTML with inline SVG and JavaScript (no kernel, no CDN); in
    a text-only output (the PDF) it says what it is instead.
    """

    fid = "rnnfig-" + uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([slider_label, xlabel, ylabel, len(frames)])).hex[:10]
    if yticks is None:
        if ylog:
            lo, hi = (math.floor(math.log10(v)) for v in ylim)
            step = max(1, (hi - lo) // 6)
            yticks = [(10.0 ** e, f"1e{e}") for e in range(lo, hi + 1, step)]
        else:
            yticks = [(ylim[0] + (ylim[1] - ylim[0]) * k / 4, f"{ylim[0] + (ylim[1] - ylim[0]) * k / 4:.2g}")
                      for k in range(5)]
    if xticks is None:
        xticks = [(j, str(v)) for j, v in enumerate(x)] if bars else \
                 [(j, f"{x[j]:g}") for j in range(0, len(x), max(1, len(x) // 8))]
    spec = {"frames": frames, "x": list(x), "xlabel": xlabel, "ylabel": ylabel, "ylim": list(ylim), "ylog": ylog,
            "bars": bars, "xticks": [list(t) for t in xticks], "yticks": [list(t) for t in yticks]}
    data = json.dumps(spec).replace("</", "<\\/")
    return InteractiveFigure(alt or slider_label,
        f'<div class="rnn-interactive" id="{fid}" data-frame="{start}">'
        f'<label style="display:block;margin:0.3em 0">{html.escape(slider_label)} '
        f'<input type="range" min="0" max="{len(frames) - 1}" step="1" value="{start}" '
        f'aria-label="{html.escape(slider_label)}" style="width:min(320px,60%);vertical-align:middle"> '
        f'<output style="font-weight:bold"></output></label>'
        f'<svg viewBox="0 0 600 330" width="600" height="330" role="img" aria-label="{html.escape(alt)}" '
        f'style="max-width:100%;height:auto;display:block"></svg>'
        f'<div class="rnn-note" style="font-family:monospace;white-space:pre-wrap;font-size:0.85em;{note_style}"></div>'
        f'<script type="application/json">{data}</script>'
        f'<script>{_JS % {"id": json.dumps(fid)}}</script></div>')
