"""The book's diagrams, drawn from code as SVG (no image files to keep in sync, sharp at any zoom).

Each function returns a :class:`Diagram`; in a notebook it displays itself (``_repr_svg_``), and
``Diagram.save(path)`` writes the file. The drawings are sized for a text column: their natural width
is at most 600 px, and type is at least 15 px, so that they stay legible when a phone shrinks them to
400 px.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

INK, GREY, FWD, BWD, REV = "#222222", "#9a9a9a", "#1f5fa8", "#c0392b", "#d9822b"
FILL = {"sigma": "#fde9c7", "tanh": "#d7ecd9", "cell": "#dbe9f6", "op": "#ffffff", "io": "#f3f3f3",
        "dec": "#e8dcf3", "att": "#fbe3e0"}


def _esc(text: str) -> str:
    return html.escape(text).replace("-", "\u2212")  # a typographic minus in labels


def _label(text: str) -> str:
    """'h_{t-1}' -> h with a subscript t-1 (SVG tspans); '^T' -> superscript T; plain text otherwise."""
    out, pos = [], 0
    for m in re.finditer(r"_\{([^}]*)\}|_(\w)|\^\{([^}]*)\}|\^(\w)", text):
        out.append(_esc(text[pos:m.start()]))
        sub, sub1, sup, sup1 = m.groups()
        if sub is not None or sub1 is not None:
            out.append(f'<tspan dy="0.3em" font-size="75%">{_esc(sub or sub1)}</tspan><tspan dy="-0.3em">\u200b</tspan>')
        else:
            out.append(f'<tspan dy="-0.45em" font-size="70%">{_esc(sup or sup1)}</tspan><tspan dy="0.45em">\u200b</tspan>')
        pos = m.end()
    out.append(_esc(text[pos:]))
    return "".join(out)


class Diagram:
    """A small SVG canvas: boxes, operator circles, arrows and text, in pixel coordinates."""

    def __init__(self, width: int, height: int, title: str):
        self.w, self.h, self.title, self.items, self.colors = width, height, title, [], set()
        self.ops = []  # the same drawing as primitives, for the PNG (the PDF build cannot show SVG)

    # primitives -----------------------------------------------------------------------------
    def text(self, x, y, s, size=15, color=INK, anchor="middle", italic=False, weight="normal"):
        style = ' font-style="italic"' if italic else ""
        self.ops.append(("text", x, y, s, size, color, anchor, weight))
        self.items.append(f'<text x="{x}" y="{y}" font-size="{size}" fill="{color}" text-anchor="{anchor}" '
                          f'dominant-baseline="central" font-weight="{weight}"{style}>{_label(s)}</text>')

    def box(self, x, y, w, h, label="", fill=FILL["cell"], stroke=INK, size=16, rx=7, dash=False):
        d = ' stroke-dasharray="5 4"' if dash else ""
        self.ops.append(("rect", x - w / 2, y - h / 2, x + w / 2, y + h / 2, rx, fill, stroke))
        self.items.append(f'<rect x="{x - w / 2}" y="{y - h / 2}" width="{w}" height="{h}" rx="{rx}" '
                          f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{d}/>')
        if label:
            self.text(x, y, label, size=size, color=stroke if stroke != INK else INK)

    def op(self, x, y, symbol, r=13, stroke=INK):
        self.ops.append(("circle", x, y, r, stroke))
        self.items.append(f'<circle cx="{x}" cy="{y}" r="{r}" fill="white" stroke="{stroke}" stroke-width="1.5"/>')
        self.text(x, y + 0.5, symbol, size=18, color=stroke)

    def arrow(self, *points, color=INK, width=1.8, dash=False, head=True):
        self.colors.add(color)
        pts = " ".join(f"{x},{y}" for x, y in points)
        self.ops.append(("line", points, color, width, dash, head))
        d = ' stroke-dasharray="6 4"' if dash else ""
        m = f' marker-end="url(#a{color[1:]})"' if head else ""
        self.items.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}" '
                          f'stroke-linejoin="round"{d}{m}/>')

    # output ------------------------------------------------------------------------------------
    def svg(self) -> str:
        defs = "".join(f'<marker id="a{c[1:]}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" '
                       f'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
                       for c in sorted(self.colors))
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" width="{self.w}" '
                f'height="{self.h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" role="img">'
                f"<title>{html.escape(self.title)}</title><defs>{defs}</defs>"
                f'<rect width="100%" height="100%" fill="white"/>' + "".join(self.items) + "</svg>")

    def _repr_svg_(self) -> str:
        return self.svg()

    def png(self, scale: float = 2.0) -> bytes:
        """The drawing rasterised with Pillow (for outputs that cannot show SVG: the PDF build)."""
        return _rasterise(self, scale)

    def _repr_png_(self) -> bytes:
        return self.png()

    def __repr__(self) -> str:  # what a text-only output (the PDF, a terminal) shows instead of the drawing
        return f"[diagram: {self.title}]"

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.svg())
        return path


def _font(size):
    from PIL import ImageFont
    import matplotlib

    path = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), max(1, round(size)))


def _rasterise(d: Diagram, k: float) -> bytes:
    """Draw d's primitives with Pillow at scale k; returns PNG bytes."""
    import io
    import math

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (round(d.w * k), round(d.h * k)), "white")
    draw = ImageDraw.Draw(img)
    for op in d.ops:
        kind = op[0]
        if kind == "rect":
            _, x0, y0, x1, y1, rx, fill, stroke = op
            draw.rounded_rectangle([x0 * k, y0 * k, x1 * k, y1 * k], radius=rx * k, fill=fill, outline=stroke,
                                   width=round(1.5 * k))
        elif kind == "circle":
            _, x, y, r, stroke = op
            draw.ellipse([(x - r) * k, (y - r) * k, (x + r) * k, (y + r) * k], fill="white", outline=stroke,
                         width=round(1.5 * k))
        elif kind == "line":
            _, pts, color, width, dash, head = op
            pts = [(px * k, py * k) for px, py in pts]
            segments = list(zip(pts, pts[1:]))
            if head and segments:  # stop the last segment at the arrowhead's base
                (ax, ay), (bx, by) = segments[-1]
                L = math.hypot(bx - ax, by - ay) or 1.0
                ux, uy = (bx - ax) / L, (by - ay) / L
                size = 11 * k
                base = (bx - ux * size * 0.9, by - uy * size * 0.9)
                segments[-1] = ((ax, ay), base)
                draw.polygon([(bx, by), (bx - ux * size - uy * size / 2, by - uy * size + ux * size / 2),
                              (bx - ux * size + uy * size / 2, by - uy * size - ux * size / 2)], fill=color)
            for (ax, ay), (bx, by) in segments:
                if not dash:
                    draw.line([(ax, ay), (bx, by)], fill=color, width=max(1, round(width * k)))
                    continue
                L = math.hypot(bx - ax, by - ay)
                on, off, t = 6 * k, 4 * k, 0.0
                while t < L:
                    t1 = min(t + on, L)
                    draw.line([(ax + (bx - ax) * t / L, ay + (by - ay) * t / L),
                               (ax + (bx - ax) * t1 / L, ay + (by - ay) * t1 / L)], fill=color,
                              width=max(1, round(width * k)))
                    t = t1 + off
        elif kind == "text":
            _, x, y, s, size, color, anchor, weight = op
            pieces = []  # (text, size factor, baseline shift in em)
            pos = 0
            for m in re.finditer(r"_\{([^}]*)\}|_(\w)|\^\{([^}]*)\}|\^(\w)", s):
                pieces.append((s[pos:m.start()], 1.0, 0.0))
                sub, sub1, sup, sup1 = m.groups()
                pieces.append(((sub or sub1), 0.75, 0.3) if (sub is not None or sub1 is not None)
                              else ((sup or sup1), 0.7, -0.45))
                pos = m.end()
            pieces.append((s[pos:], 1.0, 0.0))
            pieces = [(t.replace("-", "\u2212"), f, sh) for t, f, sh in pieces if t]
            fonts = [_font(size * f * k) for _, f, _ in pieces]
            widths = [fnt.getlength(t) for (t, _, _), fnt in zip(pieces, fonts)]
            total = sum(widths)
            cx = x * k - {"start": 0, "middle": total / 2, "end": total}[anchor]
            for (t, f, sh), fnt, wdt in zip(pieces, fonts, widths):
                draw.text((cx, y * k + sh * size * k), t, fill=color, font=fnt, anchor="lm")
                cx += wdt
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _legend(d: Diagram, x, y, entries):
    for k, (color, dash, text) in enumerate(entries):
        yy = y + 22 * k
        d.arrow((x, yy), (x + 34, yy), color=color, dash=dash)
        d.text(x + 44, yy, text, size=15, anchor="start", color=color)


# the diagrams ------------------------------------------------------------------------------------
def unrolled_rnn(T: int = 4) -> Diagram:
    """The RNN unrolled over T steps: forward (black) and the gradient paths of BPTT (red, dashed)."""
    dx, x0 = 125, 105
    d = Diagram(x0 + dx * (T - 1) + 90, 385, "An RNN unrolled in time, with the gradient paths of BPTT")
    d.text(22, 175, "h_{0}", size=17)
    for k in range(T):
        t = k + 1
        cx = x0 + dx * k
        d.box(cx, 262, 52, 34, f"x_{{{t}}}", fill=FILL["io"])
        d.arrow((cx, 245), (cx, 197))
        d.box(cx, 52, 52, 34, f"L_{{{t}}}", fill=FILL["att"])
        d.arrow((cx - 10, 153), (cx - 10, 71))           # forward: h_t -> loss
        d.arrow((cx + 10, 71), (cx + 10, 153), color=BWD, dash=True)  # backward: dL_t/dh_t
        src = 38 if k == 0 else cx - dx + 32
        d.arrow((src, 165), (cx - 32, 165))             # forward: h_{t-1} -> cell
        if k > 0:
            d.arrow((cx - 32, 185), (cx - dx + 32, 185), color=BWD, dash=True)  # backward: delta_t -> h_{t-1}
            d.text(cx - dx / 2, 147, f"h_{{{t - 1}}}", size=15)
        d.box(cx, 175, 64, 44, "tanh", fill=FILL["cell"])
    d.text(x0 + dx * (T - 1) - 28, 112, f"h_{{{T}}}", size=15)
    d.text(x0 + dx / 2, 204, "× J_{2}", size=15, color=BWD)
    _legend(d, 30, 318, [(INK, False, "forward pass"),
                         (BWD, True, "gradient: each step back multiplies by a Jacobian J_{t}")])
    return d


def lstm_cell(stage: str | None = None) -> Diagram:
    """The LSTM cell; stage in (None, 'forget', 'input', 'output') draws that part in colour, the rest grey."""
    parts = {"forget": {"f"}, "input": {"i", "g"}, "output": {"o", "tanh_c"}}
    on = (lambda p: True) if stage is None else (lambda p: p in parts[stage] or p == "c")
    col = lambda p, c=INK: c if on(p) else GREY
    d = Diagram(600, 370, "An LSTM cell" + (f", the {stage} step highlighted" if stage else ""))
    yc, yb = 62, 290
    # the cell state: straight through, one multiply and one add
    d.text(30, yc - 26, "c_{t-1}", size=16)
    d.arrow((16, yc), (137, yc), color=col("c", FWD), width=3)
    d.op(150, yc, "×", stroke=col("f"))
    d.arrow((163, yc), (287, yc), color=col("c", FWD), width=3)
    d.op(300, yc, "+", stroke=col("i"))
    d.arrow((313, yc), (585, yc), color=col("c", FWD), width=3)
    d.text(565, yc - 26, "c_{t}", size=16)
    # the input bus: [h_{t-1}; x_t]
    d.text(30, yb + 26, "h_{t-1}", size=16)
    d.arrow((16, yb), (420, yb), color=INK, head=False)  # ends at the last gate, o
    d.box(75, 345, 50, 30, "x_{t}", fill=FILL["io"])
    d.arrow((75, 330), (75, yb), head=False)
    gates = [("f", 150, "σ", FILL["sigma"]), ("i", 230, "σ", FILL["sigma"]), ("g", 340, "tanh", FILL["tanh"]),
             ("o", 420, "σ", FILL["sigma"])]
    for name, x, fn, fill in gates:
        d.arrow((x, yb), (x, 232), color=col(name))
        d.box(x, 212, 56 if fn == "σ" else 64, 38, fn, fill=fill if on(name) else "#f4f4f4", stroke=col(name))
        # each gate's name on its own output line, just above its box (left of the line)
        d.text(x - 7, 176, f"{name}_{{t}}", size=15, color=col(name), anchor="end")
    d.arrow((150, 193), (150, yc + 13), color=col("f"))                 # f -> multiply the old memory
    d.op(300, 140, "×", stroke=col("i"))                                  # i * g, right under the +
    d.arrow((230, 193), (230, 140), (287, 140), color=col("i"))           # i ->
    d.arrow((340, 193), (340, 140), (313, 140), color=col("g"))           # g ->
    d.arrow((300, 127), (300, yc + 13), color=col("i"))                   # i * g -> added to the memory at the +
    # the output: h_t = o * tanh(c_t)
    d.arrow((480, yc), (480, 103), color=col("tanh_c"))
    d.box(480, 122, 64, 34, "tanh", fill=FILL["tanh"] if on("tanh_c") else "#f4f4f4", stroke=col("tanh_c"))
    d.arrow((480, 139), (480, 197), color=col("tanh_c"))
    d.op(480, 210, "×", stroke=col("o"))
    d.arrow((420, 193), (420, 170), (467, 205), color=col("o"))
    d.arrow((480, 223), (480, yb), (585, yb), color=col("o"))
    d.text(565, yb + 26, "h_{t}", size=16)
    return d


def gru_cell() -> Diagram:
    """The GRU cell in PyTorch's convention: h_t = (1 - z) * n + z * h_{t-1}."""
    d = Diagram(600, 370, "A GRU cell, PyTorch's convention")
    yt, yb = 62, 290
    d.text(34, yt - 26, "h_{t-1}", size=16)
    d.arrow((16, yt), (367, yt), color=FWD, width=3)
    d.op(380, yt, "×")
    d.arrow((393, yt), (487, yt), color=FWD, width=3)
    d.op(500, yt, "+")
    d.arrow((513, yt), (585, yt), color=FWD, width=3)
    d.text(565, yt - 26, "h_{t}", size=16)
    d.arrow((40, yt), (40, yb), (360, yb), head=False)                   # h_{t-1} down to the bus
    d.box(90, 345, 50, 30, "x_{t}", fill=FILL["io"])
    d.arrow((90, 330), (90, yb), head=False)
    for name, x, fn, fill in (("r", 140, "σ", FILL["sigma"]), ("z", 230, "σ", FILL["sigma"]),
                              ("n", 340, "tanh", FILL["tanh"])):
        d.arrow((x, yb), (x, 232))
        d.box(x, 212, 56 if fn == "σ" else 64, 38, fn, fill=fill)
        d.text(x + (34 if fn == "σ" else 40), 238, f"{name}_{{t}}", size=15, anchor="start")
    d.arrow((140, 193), (140, 172), (325, 172), (325, 193))              # r scales the hidden side of n
    d.text(350, 348, "n_{t} = tanh(x W_{in}^T + b_{in} + r_{t} ⊙ (h W_{hn}^T + b_{hn}))", size=13, color=INK)
    d.arrow((230, 193), (230, 140), (380, 140), (380, yt + 13))          # z -> z * h_{t-1}
    d.op(440, 140, "1−", r=15)
    d.arrow((380, 140), (425, 140))
    d.op(500, 212, "×")
    d.arrow((372, 212), (487, 212))                                      # n -> (1 - z) * n
    d.arrow((455, 140), (500, 140), (500, 199))                           # 1 - z -> (1 - z) * n
    d.arrow((513, 212), (550, 212), (550, 105), (500, 105), (500, yt + 13))  # -> add to z * h_{t-1}
    return d


def gradient_highway() -> Diagram:
    """Three LSTM steps: the gradient along the cell state (elementwise, x f) and along h (matrices)."""
    d = Diagram(600, 330, "The cell state as a gradient highway")
    yc, yh = 70, 190
    xs = [120, 300, 480]
    d.arrow((20, yc), (585, yc), color=INK, width=2, head=True)
    d.arrow((20, yh), (585, yh), color=INK, width=1.2, head=True)
    for k, x in enumerate(xs):
        t = ["t-1", "t", "t+1"][k]
        d.box(x, (yc + yh) / 2, 110, 170, "", fill="#f6f9fd")
        d.op(x, yc, "×")
        d.text(x, yc + 30, f"f_{{{t}}}", size=15)
        d.text(x, (yc + yh) / 2 + 18, f"step {t}", size=14, color=GREY)
    for k in range(2, 0, -1):
        xa, xb = xs[k] - 16, xs[k - 1] + 16
        d.arrow((xa, yc - 22), (xb, yc - 22), color=BWD, width=3, dash=True)
        d.arrow((xa, yh + 22), (xb, yh + 22), color=FWD, width=1.6, dash=True)
    d.text(300, 22, "along c: × f (elementwise, no matrix, no squashing)", size=15, color=BWD)
    d.text(300, 238, "along h: × a Jacobian with W_{hh} and σ′, tanh′ factors", size=15, color=FWD)
    d.text(22, yc - 22, "c", size=17, weight="bold")
    d.text(22, yh - 22, "h", size=17, weight="bold")
    _legend(d, 40, 278, [(BWD, True, "gradient on the cell state"), (FWD, True, "gradient on the hidden state")])
    return d


def bidirectional_stack(T: int = 4, layers: int = 2) -> Diagram:
    """A stacked bidirectional RNN: each layer has a forward row (blue) and a reverse row (orange); at each
    position the two states are concatenated ([ ; ] node), and that is what the next layer and the output read."""
    dx, x0, row = 120, 130, 62
    height = 95 + layers * (45 + row + 51) + 50
    d = Diagram(x0 + dx * (T - 1) + 80, height, f"A {layers}-layer bidirectional RNN")
    y_in = height - 70
    for k in range(T):
        d.box(x0 + dx * k, y_in, 50, 30, f"x_{{{k + 1}}}", fill=FILL["io"])
    prev_y = y_in - 15
    for layer in range(layers):
        y_f = prev_y - 45
        y_r = y_f - row
        y_c = y_r - 40  # the concatenation node
        for k in range(T):
            cx = x0 + dx * k
            # the layer's input reaches both directions (grey): up the left side of the column
            d.arrow((cx - 6, prev_y), (cx - 6, y_f + 17), color=GREY, width=1.4)
            d.arrow((cx - 40, y_f + 12), (cx - 40, y_r), (cx - 31, y_r), color=GREY, width=1.4)
            d.arrow((cx - 6, prev_y - 4), (cx - 40, prev_y - 4), (cx - 40, y_f + 12), color=GREY, width=1.4, head=False)
            d.box(cx, y_f, 58, 32, "→", fill=FILL["cell"], stroke=FWD, size=18)
            d.box(cx, y_r, 58, 32, "←", fill="#fbe8d3", stroke=REV, size=18)
            if k < T - 1:
                d.arrow((cx + 29, y_f), (cx + dx - 31, y_f), color=FWD)
                d.arrow((cx + dx - 29, y_r + 6), (cx + 31, y_r + 6), color=REV)
            # both states go into the concatenation node: the reverse one straight up, the forward one
            # up the right side of the column
            d.arrow((cx, y_r - 16), (cx, y_c + 12), color=REV, width=1.6)
            d.arrow((cx + 29, y_f - 8), (cx + 44, y_f - 8), (cx + 44, y_c), (cx + 25, y_c), color=FWD, width=1.6)
            d.box(cx, y_c, 48, 24, "[ ; ]", fill="white", size=14, rx=5)
        d.text(8, (y_f + y_r) / 2, f"layer {layer}", size=14, anchor="start", color=INK)
        prev_y = y_c - 12
    y_out = prev_y - 30
    for k in range(T):
        cx = x0 + dx * k
        d.arrow((cx, prev_y), (cx, y_out + 12))
        d.text(cx, y_out, f"y_{{{k + 1}}}", size=15)
    d.text(x0 + dx * (T - 1) / 2, height - 22,
           "[ ; ]: each output is [→ state ; ← state]; the next layer reads both", size=14, color=INK)
    return d


def seq2seq_attention(weights=(0.05, 0.1, 0.25, 0.6)) -> Diagram:
    """An encoder-decoder with attention: decoder step t scores every encoder state and reads their average."""
    T = len(weights)
    d = Diagram(600, 380, "An encoder-decoder with attention")
    ys, xe = 275, [60 + 80 * k for k in range(T)]
    for k, x in enumerate(xe):
        d.box(x, 345, 46, 28, f"x_{{{k + 1}}}", fill=FILL["io"])
        d.arrow((x, 331), (x, ys + 19))
        d.box(x, ys, 56, 36, f"s_{{{k + 1}}}", fill=FILL["cell"])
        if k:
            d.arrow((xe[k - 1] + 28, ys), (x - 28, ys))
    xd = [420, 520]
    d.arrow((xe[-1] + 28, ys), (xd[0] - 30, ys))
    d.text((xe[-1] + xd[0]) / 2, ys + 18, "s_{T}", size=14)
    for k, x in enumerate(xd):
        d.box(x, ys, 60, 36, f"h_{{{k + 1}}}", fill=FILL["dec"])
        if k:
            d.arrow((xd[k - 1] + 30, ys), (x - 30, ys))
    # attention of decoder step 2 over the encoder states
    cx, cy = 360, 150
    for x, a in zip(xe, weights):
        d.arrow((x, ys - 19), (cx - 14, cy + 8), color=BWD, width=1 + 7 * a, head=False)
        d.text(x - 16, ys - 34, f"{a:.2f}", size=13, color=BWD)
    d.op(cx, cy, "Σ", r=16, stroke=BWD)
    d.text(cx - 2, cy - 32, "context c_{2}", size=15, color=BWD)
    d.arrow((xd[1], ys - 19), (xd[1], 200), (cx + 40, 200), (cx + 16, cy + 6), color=BWD, dash=True)
    d.text(470, 214, "scores s_{j} W h_{2}^T", size=13, color=BWD)
    d.box(520, 70, 100, 34, "[h_{2} ; c_{2}]", fill=FILL["att"], size=15)
    d.arrow((cx + 16, cy - 4), (470, 82), color=BWD)
    d.arrow((xd[1] + 10, ys - 19), (xd[1] + 10, 88))
    d.arrow((520, 53), (520, 22))
    d.text(560, 22, "y_{2}", size=15)
    d.text(12, 22, "attention weights α_{2,j} (line width)", size=14, color=BWD, anchor="start")
    d.text(150, 372 - 0, "encoder", size=14, color=GREY)
    d.text(470, 322, "decoder", size=14, color=GREY)
    return d


ALL = {"unrolled_rnn": unrolled_rnn, "lstm_cell": lstm_cell, "gru_cell": gru_cell,
       "gradient_highway": gradient_highway, "bidirectional_stack": bidirectional_stack,
       "seq2seq_attention": seq2seq_attention}
