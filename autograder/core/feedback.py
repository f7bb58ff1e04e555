"""Feedback a student can read: subtotals, every test, its status and a message; never hidden-test
source. Every piece of text that came near student code is escaped (Markdown and HTML), so that a
message cannot render as a table, a heading, a link or markup."""
from __future__ import annotations

import html
import re

ICON = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "missing": "MISSING"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~!])")


def esc(text) -> str:
    """Plain text for a Markdown table cell or list item: one line, HTML and Markdown escaped."""
    s = str(text).encode("utf-8", "replace").decode("utf-8")
    s = " ".join(s.split())  # no newline can start a block, no run of spaces a code block
    s = html.escape(s, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", s)


def code(text) -> str:
    """A name as a code span: shown literally (no Markdown, no HTML), one line, no cell break."""
    s = " ".join(str(text).encode("utf-8", "replace").decode("utf-8").split())[:300].replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _n(x) -> str:
    return f"{float(x):g}"


def render_markdown(doc: dict) -> str:
    lines = [f"# {esc(doc['assignment'])}: {esc(doc['student_id'])}", "",
             f"**Score: {_n(doc['score'])} / {_n(doc['max_score'])}**", ""]
    sub = doc.get("subtotals") or {}
    if sub.get("notebooks"):
        lines += ["| notebook | score |", "|---|---|"]
        for nb, e in sub["notebooks"].items():
            file = (doc.get("notebooks", {}).get(nb) or {}).get("file")
            shown = code(nb) + ("" if file else " (not submitted)")
            lines.append(f"| {shown} | {_n(e['score'])} / {_n(e['max_score'])} |")
        lines.append("")
    if sub.get("functions"):
        lines += ["| graded name | notebook | score |", "|---|---|---|"]
        for fn, e in sub["functions"].items():
            lines.append(f"| {code(fn)} | {code(e.get('notebook', ''))} | {_n(e['score'])} / {_n(e['max_score'])} |")
        lines.append("")
    for nb, rep in doc.get("notebooks", {}).items():
        if rep.get("notes") or rep.get("cell_errors"):
            lines += [f"## Notebook {code(nb)}", ""]
            lines += [f"- {esc(n)}" for n in rep.get("notes", [])]
            lines += [f"- {esc(e)}" for e in rep.get("cell_errors", [])]
            lines.append("")
    lines += ["## Tests", "", "| test | function | points | status | message |", "|---|---|---|---|---|"]
    for t in doc["tests"]:
        lines.append(f"| {code(t['name'])} | {code(t['function'])} | {_n(t['points'])}/{_n(t['max_points'])} | "
                     f"{ICON.get(t['status'], esc(t['status']))} | {esc(t['message'] or '')} |")
    if doc.get("grader_faults"):
        lines += ["", "Some tests could not be run because of a fault of the grader (not of your work); "
                      "your instructor has been told."]
    lines += ["", f"_Graded with: {esc(doc.get('sandbox', ''))}_", ""]
    return "\n".join(lines)
