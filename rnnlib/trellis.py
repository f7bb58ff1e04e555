"""The CTC trellis (chapter 10), drawn as SVG with :class:`rnnlib.diagrams.Diagram`.

Rows are the states of the extended label sequence (a blank before, between and after the labels),
columns the time steps. A state is drawn solid when at least one complete path (from one of the two
start states at step 0 to one of the two end states at the last step) passes through it, grey
otherwise; the arrows are the allowed moves between such states: stay, advance by one, and skip a
blank between two *different* labels. One path can be highlighted.
"""
from __future__ import annotations

from rnnlib.diagrams import BWD, FWD, GREY, INK, Diagram, _legend


def extended(label, blank="-"):
    """The extended label sequence: ``[blank, l1, blank, l2, ..., lU, blank]``."""
    out = [blank]
    for c in label:
        out += [c, blank]
    return out


def moves(ext, blank="-"):
    """{s: [s' reachable from s in one step]}: stay, advance, and the skip s -> s + 2 when it jumps over a
    blank between two different labels."""
    out = {}
    for s in range(len(ext)):
        nxt = [s]
        if s + 1 < len(ext):
            nxt.append(s + 1)
        if s + 2 < len(ext) and ext[s + 2] != blank and ext[s + 2] != ext[s]:
            nxt.append(s + 2)
        out[s] = nxt
    return out


def alive(ext, T, blank="-"):
    """alive[t][s]: is state s at step t on at least one complete path of T steps?"""
    L, mv = len(ext), moves(ext, blank)
    fwd = [[False] * L for _ in range(T)]
    for s in range(min(2, L)):
        fwd[0][s] = True
    for t in range(1, T):
        for s in range(L):
            if fwd[t - 1][s]:
                for s2 in mv[s]:
                    fwd[t][s2] = True
    bwd = [[False] * L for _ in range(T)]
    for s in (L - 1, L - 2):
        if 0 <= s:
            bwd[T - 1][s] = True
    for t in range(T - 2, -1, -1):
        for s in range(L):
            bwd[t][s] = any(bwd[t + 1][s2] for s2 in mv[s])
    return [[fwd[t][s] and bwd[t][s] for s in range(L)] for t in range(T)]


def ctc_trellis(label="773", T=7, path=None, blank="-") -> Diagram:
    """The trellis of ``label`` over ``T`` steps; ``path``: a string of T symbols (e.g. '7-7-33-') to
    highlight, which must read ``label`` under CTC's collapse rule."""
    ext = extended(list(label), blank)
    L = len(ext)
    ok = alive(ext, T, blank)
    mv = moves(ext, blank)
    dx, dy, x0, y0 = 64, 40, 112, 52
    width = x0 + dx * (T - 1) + 50
    height = y0 + dy * (L - 1) + 120
    d = Diagram(width, height, f"The CTC trellis of the label {label} over {T} steps: the extended "
                f"sequence {' '.join(ext)} down, time across")
    for s, sym in enumerate(ext):
        d.text(34, y0 + dy * s, f"{s}", size=15, color=GREY)
        d.text(70, y0 + dy * s, "blank" if sym == blank else sym, size=15, italic=sym == blank)
    for t in range(T):
        d.text(x0 + dx * t, y0 - 32, f"t={t}", size=15, color=GREY)
    on_path = set()
    if path is not None:
        s = 0 if path[0] == blank else 1
        on_path.add((0, s))
        for t in range(1, T):
            for s2 in mv[s]:
                if ext[s2] == path[t] and ok[t][s2]:
                    s = s2
                    break
            on_path.add((t, s))
    for t in range(T - 1):  # arrows first, nodes on top
        for s in range(L):
            if not ok[t][s]:
                continue
            for s2 in mv[s]:
                if not ok[t + 1][s2]:
                    continue
                hot = (t, s) in on_path and (t + 1, s2) in on_path
                x1, y1, x2, y2 = x0 + dx * t, y0 + dy * s, x0 + dx * (t + 1), y0 + dy * s2
                k = 11 / max(1.0, ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5)
                d.arrow((x1 + (x2 - x1) * k, y1 + (y2 - y1) * k), (x2 - (x2 - x1) * k, y2 - (y2 - y1) * k),
                        color=BWD if hot else (FWD if s2 == s + 2 else INK), width=3 if hot else 1.2)
    for t in range(T):
        for s in range(L):
            cx, cy = x0 + dx * t, y0 + dy * s
            fill = "#ffffff" if ok[t][s] else "#eeeeee"
            stroke = BWD if (t, s) in on_path else (INK if ok[t][s] else "#c8c8c8")
            d.items.append(f'<circle cx="{cx}" cy="{cy}" r="8" fill="{fill}" stroke="{stroke}" stroke-width="1.6"/>')
    entries = [(INK, False, "stay, or advance by one state"), (FWD, False, "skip a blank between different labels")]
    if path is not None:
        entries.append((BWD, False, f"one path: {path}"))
    _legend(d, 30, y0 + dy * (L - 1) + 36, entries)
    return d
