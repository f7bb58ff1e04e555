"""Feedback a student can read: every test, its status and a message; never hidden-test source."""
from __future__ import annotations

ICON = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "missing": "MISSING"}


def render_markdown(doc: dict) -> str:
    lines = [f"# {doc['assignment']}: {doc['student_id']}", "",
             f"**Score: {doc['score']:g} / {doc['max_score']:g}**", ""]
    for nb, rep in doc.get("notebooks", {}).items():
        if rep.get("notes") or rep.get("cell_errors"):
            lines += [f"## Notebook `{nb}`", ""]
            lines += [f"- {n}" for n in rep.get("notes", [])]
            lines += [f"- {e}" for e in rep.get("cell_errors", [])]
            lines.append("")
    lines += ["| test | function | points | status | message |", "|---|---|---|---|---|"]
    for t in doc["tests"]:
        msg = (t["message"] or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{t['name']}` | `{t['function']}` | {t['points']:g}/{t['max_points']:g} | "
                     f"{ICON.get(t['status'], t['status'])} | {msg} |")
    lines += ["", f"_Graded with: {doc.get('sandbox', '')}_", ""]
    return "\n".join(lines)
