"""The class at a glance: ``python -m autograder report RESULTS_DIR [--roster CSV] [--late-policy FILE]
[--out FILE.html]``.

One self-contained HTML page (no external file, script or font; figures are matplotlib PNGs embedded
as base64), readable on a laptop and on a phone (400 px: wide tables scroll inside their own box):
- who is missing (rostered students without a result, and results where nothing was submitted), listed
  apart and left out of every statistic and pass rate;
- the scores after the course's late policy (autograder/latepolicy.py), and their distribution, among
  the students who submitted;
- the pass rate of every graded name among the students who attempted it (a released stub left as it is
  counts as "not attempted", not as a failure), and of every hidden test;
- the most frequent failure messages, counted per student, with "not submitted" and "not implemented"
  grouped apart from real mistakes;
- a per-student table: score, lateness, isolation level of the sandbox, grader faults;
- grader faults and timeouts.
Every text that comes from results (student ids, messages produced by student code) is HTML-escaped.
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

from .export import ClassResults, Roster, class_rows, load_inputs

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


def fig_score_distribution(res: ClassResults, present) -> str:
    plt = _pyplot()
    assignments = res.assignments
    fig, axes = plt.subplots(len(assignments), 1, figsize=(7, 1.6 * len(assignments) + 0.6), squeeze=False,
                             sharex=True)
    for ax, a in zip(axes[:, 0], assignments):
        pct = [100 * d["final_score"] / d["max_score"] if d["max_score"] else 0.0 for d in present(a)]
        ax.hist(pct, bins=[i * 5 for i in range(21)], color="#3b6ea5", edgecolor="white")
        ax.set_ylabel(a, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1, 0].set_xlabel("score (% of the assignment's points)")
    axes[0, 0].set_title("Score distribution per assignment (students who submitted)", fontsize=10)
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
    ax.set_xlabel("% of students who attempted it passing every test of that name")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _norm_message(m: str) -> str:
    """Group messages that differ only in numbers (max abs error 0.013 vs 0.027)."""
    m = " ".join(m.split())[:300]
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", m)


def kind(t: dict) -> str:
    """'passed', 'not submitted' (the notebook or the name is missing), 'not implemented' (the released stub
    raised NotImplementedError) or 'mistake' (a real failure, error or timeout)."""
    if t["status"] == "passed":
        return "passed"
    if t["status"] == "missing":
        return "not submitted"
    if t["message"].startswith("NotImplementedError"):
        return "not implemented"
    return "mistake"


def submitted(d: dict) -> bool:
    """Something was handed in: at least one test found the student's code."""
    return any(kind(t) != "not submitted" for t in d["tests"])


def analyse(res: ClassResults, roster: Roster | None = None) -> dict:
    per_function = defaultdict(lambda: [0, 0, 0])  # (assignment, function) -> [passed, attempted, not attempted]
    per_test = defaultdict(Counter)  # (assignment, test, function) -> Counter(status)
    messages = defaultdict(set)  # (assignment, function, normalised message) -> students
    example = {}
    grouped = defaultdict(set)  # (assignment, function, "not submitted"/"not implemented") -> students
    faults, timeouts = [], []
    absent = []  # (student, assignment, why)
    for d in res.docs:
        if not submitted(d):
            absent.append((d["student_id"], d["assignment"], "no notebook submitted"))
            continue
        by_f = defaultdict(list)
        for t in d["tests"]:
            k = kind(t)
            by_f[t["function"]].append(k)
            per_test[(d["assignment"], t["name"], t["function"])][t["status"]] += 1
            if k == "mistake" and t["message"]:
                key = (d["assignment"], t["function"], _norm_message(t["message"]))
                messages[key].add(d["student_id"])
                example.setdefault(key, " ".join(t["message"].split())[:300])
            elif k in ("not submitted", "not implemented"):
                grouped[(d["assignment"], t["function"], k)].add(d["student_id"])
            if t.get("grader_fault"):
                faults.append((d["student_id"], d["assignment"], t["name"], t["message"]))
            if t["status"] == "timeout":
                timeouts.append((d["student_id"], d["assignment"], t["name"], t["message"]))
        for f, kinds in by_f.items():
            e = per_function[(d["assignment"], f)]
            if all(k in ("not submitted", "not implemented") for k in kinds):
                e[2] += 1
            else:
                e[1] += 1
                e[0] += all(k == "passed" for k in kinds)
    if roster is not None:
        rows = class_rows(res, roster)
        for r in rows:
            for a in res.assignments:
                if a not in r.docs:
                    absent.append((r.student_id, a, "no result (on the roster)"))
    present_keys = {(d["student_id"], d["assignment"]) for d in res.docs if submitted(d)}
    return {"per_function": per_function, "per_test": per_test, "messages": messages, "example": example,
            "grouped": grouped, "faults": faults, "timeouts": timeouts, "absent": sorted(absent),
            "present": present_keys}


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
p,li,h1,h2,h3{overflow-wrap:anywhere}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4;white-space:nowrap}td{overflow-wrap:break-word;max-width:40em}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
img{max-width:100%;height:auto}code{font-size:.95em}.low{color:#c0392b;font-weight:600}.muted{color:#777}
@media (max-width:600px){body{margin:1em auto;padding:0 .5em}h1{font-size:1.3em}table{font-size:.78em}}
"""


def _table(head: list[str], rows: list[str]) -> str:
    return ("<div class=\"scroll\"><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(rows) + "</table></div>")


def _missing_section(an: dict) -> list[str]:
    """Who has no submission for an assignment (left out of every statistic)."""
    parts = []
    parts.append(f"<h2 id=\"missing\">Missing ({len(an['absent'])})</h2>")
    if an["absent"]:
        parts.append("<p>Left out of every statistic and pass rate below.</p>")
        parts.append(_table(["student", "assignment", "why"],
                            [f"<tr><td>{_e(s)}</td><td>{_e(a)}</td><td>{_e(w)}</td></tr>" for s, a, w in an["absent"]]))
    else:
        parts.append("<p>Nobody: every student has a submission for every assignment.</p>")
    return parts


def _scores_section(res: ClassResults, present, present_keys: set) -> list[str]:
    """Each assignment's scores after the late policy, among the students who submitted; their histogram."""
    parts = []
    parts.append("<h2 id=\"scores\">Scores</h2><p>After the late policy, among the students who submitted.</p>")
    srows = []
    for a in res.assignments:
        sc = [d["final_score"] for d in present(a)]
        mx = res.max_score(a)
        if not sc:
            srows.append(f"<tr><td>{_e(a)}</td><td class=n>0</td><td class=n>{mx:g}</td>" + "<td>-</td>" * 6 + "</tr>")
            continue
        full = sum(1 for s in sc if mx and s >= mx)
        late = sum(1 for d in present(a) if d["lateness"].late)
        srows.append(f"<tr><td>{_e(a)}</td><td class=n>{len(sc)}</td><td class=n>{mx:g}</td>"
                     f"<td class=n>{statistics.mean(sc):.1f}</td><td class=n>{statistics.median(sc):g}</td>"
                     f"<td class=n>{min(sc):g}</td><td class=n>{max(sc):g}</td><td class=n>{full}</td>"
                     f"<td class=n>{late}</td></tr>")
    parts.append(_table(["assignment", "submitted", "points", "mean", "median", "min", "max", "full marks", "late"],
                        srows))
    if present_keys:
        parts.append(f"<img id=\"fig-scores\" alt=\"Histogram of the scores of the students who submitted, for each "
                     f"assignment\" src=\"{fig_score_distribution(res, present)}\">")
    return parts


def _graded_names_section(an: dict) -> list[str]:
    """The pass rate of each graded name, lowest first (a chart and a table)."""
    parts = []
    rated = {k: v for k, v in an["per_function"].items() if v[1]}
    rows = sorted(((f"{a}: {f}", ok / n) for (a, f), (ok, n, _na) in rated.items()), key=lambda r: r[1])
    parts.append("<h2 id=\"functions\">Pass rate per graded name</h2><p>A graded name passes when every hidden "
                 "test about it passes; the rate is among the students who attempted it (a stub left as released "
                 "is \"not attempted\"); lowest first: where the class struggles.</p>")
    if rows:
        parts.append(f"<img id=\"fig-functions\" alt=\"Bar chart of the pass rate of each graded name\" "
                     f"src=\"{fig_pass_rate(rows, 'Pass rate per graded name')}\">")
    frows = []
    for (a, f), (ok, n, na) in sorted(an["per_function"].items(), key=lambda kv: (kv[1][0] / kv[1][1]) if kv[1][1] else 2):
        rate = f"{100 * ok / n:.0f} %" if n else "-"
        cls = " class=\"n low\"" if n and ok / n < 0.5 else " class=n"
        frows.append(f"<tr><td>{_e(a)}: <code>{_e(f)}</code></td><td class=n>{ok}</td><td class=n>{n}</td>"
                     f"<td class=n>{na}</td><td{cls}>{rate}</td></tr>")
    parts.append(_table(["graded name", "passing", "attempted", "not attempted", "pass rate"], frows))
    return parts


def _hidden_tests_section(an: dict) -> list[str]:
    """The pass rate of each hidden test."""
    parts = []
    trows = []
    for (a, name, f), c in sorted(an["per_test"].items(), key=lambda kv: kv[1]["passed"] / sum(kv[1].values())):
        n = sum(c.values())
        trows.append(f"<tr><td>{_e(a)}: <code>{_e(name)}</code></td><td><code>{_e(f)}</code></td>"
                     + "".join(f"<td class=n>{c.get(s, 0)}</td>" for s in ("passed", "failed", "error", "timeout",
                                                                          "missing"))
                     + f"<td class=n>{100 * c['passed'] / n:.0f} %</td></tr>")
    parts.append("<h2 id=\"tests\">Pass rate per hidden test</h2><p>Among the students who submitted.</p>")
    parts.append(_table(["test", "graded name", "passed", "failed", "error", "timeout", "missing", "pass rate"], trows))
    return parts


def _messages_section(an: dict) -> list[str]:
    """The most frequent failure messages, and the names not submitted or not implemented."""
    parts = []
    parts.append(f"<h2 id=\"messages\">Most frequent mistakes</h2><p>The {TOP_MESSAGES} most frequent failure "
                 "messages, counted in students (not tests), grouped when they differ only in numbers (one example "
                 "shown). Names not submitted or not implemented are listed apart, below.</p>")
    mrows = []
    for key, who in sorted(an["messages"].items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP_MESSAGES]:
        a, f, _ = key
        mrows.append(f"<tr><td class=n>{len(who)}</td><td>{_e(a)}: <code>{_e(f)}</code></td>"
                     f"<td>{_e(an['example'][key])}</td></tr>")
    parts.append(_table(["students", "graded name", "message"], mrows) if mrows else "<p>No mistake: every "
                 "attempted name passes.</p>")
    grows = [f"<tr><td class=n>{len(who)}</td><td>{_e(a)}: <code>{_e(f)}</code></td><td>{_e(k)}</td>"
             f"<td>{_e(', '.join(sorted(who)[:12]))}{' ...' if len(who) > 12 else ''}</td></tr>"
             for (a, f, k), who in sorted(an["grouped"].items(), key=lambda kv: (kv[0][2], -len(kv[1]), kv[0]))]
    parts.append("<h3 id=\"not-attempted\">Not submitted or not implemented</h3>")
    parts.append(_table(["students", "graded name", "why", "who"], grows) if grows else "<p>None.</p>")
    return parts


def _students_section(res: ClassResults, rows_all: list, present_keys: set) -> list[str]:
    """One row per student and assignment: score, lateness, isolation, grader faults."""
    parts = []
    parts.append("<h2 id=\"students\">Students</h2><p>Score after the late policy / maximum; the isolation level "
                 "of the sandbox that graded the submission; grader faults (not the student's doing).</p>")
    prow = []
    for r in rows_all:
        name = r.person.name if r.person is not None else ""
        for a in res.assignments:
            d = r.docs.get(a)
            if d is None or (d["student_id"], a) not in present_keys:
                prow.append(f"<tr><td>{_e(r.student_id)}</td><td>{_e(name)}</td><td>{_e(a)}</td>"
                            f"<td class=n>-</td><td>missing</td><td>-</td><td class=n>-</td></tr>")
                continue
            lat = d["lateness"]
            late = lat.words if lat.submitted is not None or lat.due is not None else "-"
            nf = len(d["grader_faults"]) or sum(1 for t in d["tests"] if t.get("grader_fault"))
            prow.append(f"<tr><td>{_e(r.student_id)}</td><td>{_e(name)}</td><td>{_e(a)}</td>"
                        f"<td class=n>{d['final_score']:g} / {d['max_score']:g}</td><td>{_e(late)}</td>"
                        f"<td>{_e(d['isolation'])}</td><td class=n>{nf}</td></tr>")
    parts.append(_table(["student", "name", "assignment", "score", "late", "isolation", "grader faults"], prow))
    return parts


def _faults_section(res: ClassResults, an: dict) -> list[str]:
    """Grader faults, timeouts and unreadable results."""
    parts = []
    for hid, title, items, none in (
            ("faults", "Grader faults", an["faults"], "No grader fault: every result is the student's own."),
            ("timeouts", "Timeouts", an["timeouts"], "No test timed out.")):
        parts.append(f"<h2 id=\"{hid}\">{title} ({len(items)})</h2>")
        if not items:
            parts.append(f"<p>{none}</p>")
            continue
        parts.append(_table(["student", "assignment", "test", "message"],
                            [f"<tr><td>{_e(s)}</td><td>{_e(a)}</td><td><code>{_e(t)}</code></td>"
                             f"<td>{_e(' '.join(m.split())[:300])}</td></tr>" for s, a, t, m in items[:200]]))
    if res.bad:
        parts.append(f"<h2 id=\"unreadable\">Unreadable results ({len(res.bad)})</h2><ul>"
                     + "".join(f"<li><code>{_e(p)}</code>: {_e(w)}</li>" for p, w in res.bad) + "</ul>")
    return parts


def render(res: ClassResults, source: str = "", roster: Roster | None = None) -> str:
    an = analyse(res, roster)
    present_keys = an["present"]

    def present(a):
        return [d for d in res.docs if d["assignment"] == a and (d["student_id"], d["assignment"]) in present_keys]

    rows_all = class_rows(res, roster)
    n_students = len(rows_all)
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"<title>Class report: {_e(source)}</title><style>{CSS}</style></head><body>",
             f"<h1>Class report</h1><p class=\"muted\">{n_students} students"
             f"{' on the roster' if roster is not None else ''}, {len(present_keys)} submissions graded, "
             f"{len(an['absent'])} missing, {len(res.assignments)} assignment(s); from <code>{_e(source)}</code>, "
             f"{_e(datetime.now().strftime('%Y-%m-%d %H:%M'))}. Late policy: {_e(res.policy.describe())}</p>"]
    parts += _missing_section(an)
    parts += _scores_section(res, present, present_keys)
    parts += _graded_names_section(an)
    parts += _hidden_tests_section(an)
    parts += _messages_section(an)
    parts += _students_section(res, rows_all, present_keys)
    parts += _faults_section(res, an)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def command(a) -> int:
    """``python -m autograder report RESULTS_DIR [--out FILE.html]`` (see autograder/cli.py)."""
    got = load_inputs(a)
    if isinstance(got, int):
        return got
    res, roster = got
    if roster is not None:
        class_rows(res, roster, warn=lambda m: print(f"autograder: {m}", file=sys.stderr))
    out = a.out or a.results / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(res, str(a.results), roster))
    print(f"autograder: report of {len(res.students)} students, {len(res.assignments)} assignments -> {out}",
          file=sys.stderr)
    return 0
