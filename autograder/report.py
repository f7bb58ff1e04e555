"""The class at a glance: ``python -m autograder report RESULTS_DIR [--out FILE.html]``.

One self-contained HTML page (no external file, script or font; figures are matplotlib PNGs embedded
as base64): the score distribution of each assignment, the pass rate of every graded name (which
functions the class struggles with) and of every hidden test, the most frequent failure messages,
grader faults and timeouts. Every text that comes from results (student ids, messages produced by
student code) is HTML-escaped. Reads the CONTRACT's keys of results.json, plus ``grader_fault`` on a
test and ``subtotals`` when present.
"""
from __future__ import annotations

import base64
import html
import io
import re
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime

from .export import ClassResults, load_results

TOP_MESSAGES = 15


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def fig_score_distribution(res: ClassResults) -> str:
    plt = _pyplot()
    assignments = res.assignments
    fig, axes = plt.subplots(len(assignments), 1, figsize=(7, 1.6 * len(assignments) + 0.6), squeeze=False,
                             sharex=True)
    for ax, a in zip(axes[:, 0], assignments):
        pct = [100 * d["score"] / d["max_score"] if d["max_score"] else 0.0 for d in res.docs if d["assignment"] == a]
        ax.hist(pct, bins=[i * 5 for i in range(21)], color="#3b6ea5", edgecolor="white")
        ax.set_ylabel(a, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1, 0].set_xlabel("score (% of the assignment's points)")
    axes[0, 0].set_title("Score distribution per assignment (number of students)", fontsize=10)
    return _png(fig)


def fig_pass_rate(rows: list[tuple[str, float]], title: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(rows) + 0.9))
    names = [r[0] for r in rows][::-1]
    rates = [100 * r[1] for r in rows][::-1]
    colors = ["#c0392b" if r < 50 else "#e6a23c" if r < 80 else "#3c9a5f" for r in rates]
    ax.barh(range(len(rows)), rates, color=colors)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of submissions passing every test of that name")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _norm_message(m: str) -> str:
    """Group messages that differ only in numbers (max abs error 0.013 vs 0.027)."""
    m = " ".join(m.split())[:300]
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", m)


def analyse(res: ClassResults) -> dict:
    per_function = defaultdict(lambda: [0, 0])  # (assignment, function) -> [all tests passed, submissions]
    per_test = defaultdict(Counter)  # (assignment, test) -> Counter(status)
    messages = Counter()
    example = {}
    faults, timeouts = [], []
    for d in res.docs:
        by_f = defaultdict(list)
        for t in d["tests"]:
            by_f[t["function"]].append(t["status"] == "passed")
            per_test[(d["assignment"], t["name"], t["function"])][t["status"]] += 1
            if t["status"] != "passed" and t["message"]:
                key = (d["assignment"], t["function"], _norm_message(t["message"]))
                messages[key] += 1
                example.setdefault(key, " ".join(t["message"].split())[:300])
            if t.get("grader_fault"):
                faults.append((d["student_id"], d["assignment"], t["name"], t["message"]))
            if t["status"] == "timeout":
                timeouts.append((d["student_id"], d["assignment"], t["name"], t["message"]))
        for f, oks in by_f.items():
            per_function[(d["assignment"], f)][0] += all(oks)
            per_function[(d["assignment"], f)][1] += 1
    return {"per_function": per_function, "per_test": per_test, "messages": messages, "example": example,
            "faults": faults, "timeouts": timeouts}


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%}code{font-size:.95em}.low{color:#c0392b;font-weight:600}.muted{color:#777}
"""


def render(res: ClassResults, source: str = "") -> str:
    an = analyse(res)
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>Class report: {_e(source)}</title><style>{CSS}</style></head><body>",
             f"<h1>Class report</h1><p class=\"muted\">{_e(len(res.students))} students, {_e(len(res.docs))} "
             f"graded submissions, {_e(len(res.assignments))} assignments; from <code>{_e(source)}</code>, "
             f"{_e(datetime.now().strftime('%Y-%m-%d %H:%M'))}.</p>"]
    # ----- scores
    parts.append("<h2 id=\"scores\">Scores</h2><table><tr><th>assignment</th><th>submissions</th><th>points</th>"
                 "<th>mean</th><th>median</th><th>min</th><th>max</th><th>full marks</th></tr>")
    for a in res.assignments:
        sc = [d["score"] for d in res.docs if d["assignment"] == a]
        mx = res.max_score(a)
        full = sum(1 for s in sc if mx and s >= mx)
        parts.append(f"<tr><td>{_e(a)}</td><td class=n>{len(sc)}</td><td class=n>{mx:g}</td>"
                     f"<td class=n>{statistics.mean(sc):.1f}</td><td class=n>{statistics.median(sc):g}</td>"
                     f"<td class=n>{min(sc):g}</td><td class=n>{max(sc):g}</td><td class=n>{full}</td></tr>")
    parts.append("</table>")
    parts.append(f"<img id=\"fig-scores\" alt=\"Histogram of scores for each assignment\" "
                 f"src=\"{fig_score_distribution(res)}\">")
    # ----- graded names
    rows = sorted(((f"{a}: {f}", ok / n) for (a, f), (ok, n) in an["per_function"].items()), key=lambda r: r[1])
    parts.append("<h2 id=\"functions\">Pass rate per graded name</h2><p>A graded name passes when every hidden "
                 "test about it passes; lowest first: where the class struggles.</p>")
    parts.append(f"<img id=\"fig-functions\" alt=\"Bar chart of the pass rate of each graded name\" "
                 f"src=\"{fig_pass_rate(rows, 'Pass rate per graded name')}\">")
    parts.append("<table><tr><th>graded name</th><th>passing</th><th>submissions</th><th>pass rate</th></tr>")
    for (a, f), (ok, n) in sorted(an["per_function"].items(), key=lambda kv: kv[1][0] / kv[1][1]):
        cls = " class=\"n low\"" if ok / n < 0.5 else " class=n"
        parts.append(f"<tr><td>{_e(a)}: <code>{_e(f)}</code></td><td class=n>{ok}</td><td class=n>{n}</td>"
                     f"<td{cls}>{100 * ok / n:.0f} %</td></tr>")
    parts.append("</table>")
    # ----- hidden tests
    parts.append("<h2 id=\"tests\">Pass rate per hidden test</h2><table><tr><th>test</th><th>graded name</th>"
                 "<th>passed</th><th>failed</th><th>error</th><th>timeout</th><th>missing</th><th>pass rate</th></tr>")
    for (a, name, f), c in sorted(an["per_test"].items(), key=lambda kv: kv[1]["passed"] / sum(kv[1].values())):
        n = sum(c.values())
        parts.append(f"<tr><td>{_e(a)}: <code>{_e(name)}</code></td><td><code>{_e(f)}</code></td>"
                     + "".join(f"<td class=n>{c.get(s, 0)}</td>" for s in ("passed", "failed", "error", "timeout",
                                                                          "missing"))
                     + f"<td class=n>{100 * c['passed'] / n:.0f} %</td></tr>")
    parts.append("</table>")
    # ----- messages
    parts.append(f"<h2 id=\"messages\">Most frequent failure messages</h2><p>The {TOP_MESSAGES} most frequent, "
                 "grouped when they differ only in numbers (one example shown).</p>"
                 "<table><tr><th>count</th><th>graded name</th><th>message</th></tr>")
    for key, n in an["messages"].most_common(TOP_MESSAGES):
        a, f, _ = key
        parts.append(f"<tr><td class=n>{n}</td><td>{_e(a)}: <code>{_e(f)}</code></td>"
                     f"<td>{_e(an['example'][key])}</td></tr>")
    parts.append("</table>")
    # ----- faults and timeouts
    for hid, title, items, none in (
            ("faults", "Grader faults", an["faults"], "No grader fault: every result is the student's own."),
            ("timeouts", "Timeouts", an["timeouts"], "No test timed out.")):
        parts.append(f"<h2 id=\"{hid}\">{title} ({len(items)})</h2>")
        if not items:
            parts.append(f"<p>{none}</p>")
            continue
        parts.append("<table><tr><th>student</th><th>assignment</th><th>test</th><th>message</th></tr>")
        for s, a, t, m in items[:200]:
            parts.append(f"<tr><td>{_e(s)}</td><td>{_e(a)}</td><td><code>{_e(t)}</code></td>"
                         f"<td>{_e(' '.join(m.split())[:300])}</td></tr>")
        parts.append("</table>")
    if res.bad:
        parts.append(f"<h2 id=\"unreadable\">Unreadable results ({len(res.bad)})</h2><ul>"
                     + "".join(f"<li><code>{_e(p)}</code>: {_e(w)}</li>" for p, w in res.bad) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def command(a) -> int:
    """``python -m autograder report RESULTS_DIR [--out FILE.html]`` (see autograder/cli.py)."""
    if not a.results.is_dir():
        print(f"autograder: error: RESULTS_DIR {a.results} is not a directory", file=sys.stderr)
        return 2
    res = load_results(a.results)
    if not res.docs:
        print(f"autograder: error: no results.json under {a.results}/<student>/<assignment>/", file=sys.stderr)
        return 2
    out = a.out or a.results / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(res, str(a.results)))
    print(f"autograder: report of {len(res.students)} students, {len(res.assignments)} assignments -> {out}",
          file=sys.stderr)
    return 0
