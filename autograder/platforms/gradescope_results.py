"""Gradescope's results.json (the page the student and the instructor see) from the grader's results.json and
the bundle's settings (``gradescope.json``): one test case per hidden test at its visibility, a subtotal per
notebook, the late penalty on Gradescope's timestamps (the course's ``autograder.platforms.latepolicy``), the
instructors' line, and the top-level output that says what the student's files did.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from .gradescope_upload import Upload

VISIBILITY = ("visible", "after_due_date", "after_published", "hidden")  # from the least to the most hidden


def _most_hidden(*vs: str) -> str:
    return max(vs, key=lambda v: VISIBILITY.index(v) if v in VISIBILITY else len(VISIBILITY))


def _where(up: Upload | None, name: str | None) -> str:
    if not name:
        return ""
    origin = up.files.get(name, name) if up else name
    return origin if origin == name else f"{name} (from {origin})"



def _test_cases(result: dict, cfg: dict, nb_order: list, nb_of_fn: dict) -> tuple[list, dict]:
    """One test case per hidden test (numbered by notebook), and {notebook: the visibilities of its cases}."""
    vis_shown, vis_hidden = cfg.get("visible_tests", "visible"), cfg.get("hidden_tests", "after_due_date")
    mirror = set(cfg.get("mirror_tests") or [])
    tests, vis_of_nb, counters = [], {}, {}
    for t in result.get("tests") or []:
        fn, status, msg = str(t.get("function", "")), str(t.get("status", "")), str(t.get("message") or "")
        nbn = nb_of_fn.get(fn) or "?"
        i = nb_order.index(nbn) + 1 if nbn in nb_order else len(nb_order) + 1
        counters[i] = counters.get(i, 0) + 1
        vis = vis_shown if t.get("name") in mirror else vis_hidden
        vis_of_nb.setdefault(nbn, []).append(vis)
        out = f"{status}: {msg}" if msg else status
        if t.get("grader_fault"):
            out += "\n(a fault of the grader, not of your code: your instructor has been told)"
        tests.append({"name": f"{fn}: {t.get('name', '')}", "number": f"{i}.{counters[i]}",
                      "score": float(t.get("points", 0.0)), "max_score": float(t.get("max_points", 0.0)),
                      "status": "passed" if status == "passed" else "failed", "output": out,
                      "tags": [fn, f"{nbn}.ipynb"], "visibility": vis})
    return tests, vis_of_nb


def _subtotal_cases(nb_order: list, per_nb: dict, per_fn: dict, score_vis: str, vis_of_nb: dict,
                    vis_hidden: str) -> list:
    """An informational case (no points) per notebook: its graded names' subtotals."""
    info = []
    for nbn in nb_order:
        s = per_nb.get(nbn)
        if not isinstance(s, dict):
            continue
        lines = [f"{f}: {v['score']:g} / {v['max_score']:g}" for f, v in per_fn.items()
                 if isinstance(v, dict) and v.get("notebook") == nbn]
        info.append({"name": f"Subtotal of {nbn}.ipynb: {s['score']:g} / {s['max_score']:g} points",
                     "number": f"{nb_order.index(nbn) + 1}.0",
                     "status": "passed" if s["score"] >= s["max_score"] else "failed",
                     "output": "\n".join(lines), "tags": ["subtotal", f"{nbn}.ipynb"],
                     "visibility": _most_hidden(score_vis, *vis_of_nb.get(nbn, [vis_hidden]))})
    return info


def _instructors_case(result: dict, up: Upload | None, seconds: float | None, nb_order: list) -> dict:
    """The instructors' line: Gradescope always shows instructors every test case; "hidden" keeps it from
    students."""
    iso = result.get("isolation") or "unknown"
    inst = [f"Isolation: {iso} ({result.get('sandbox', 'not recorded')})"]
    if result.get("limits"):
        inst.append(f"Limits enforced: {json.dumps(result['limits'], sort_keys=True)}")
    if result.get("grader_faults"):
        inst.append("Grader faults (traces in the run's log, /autograder/results/stdout): "
                    + ", ".join(map(str, result["grader_faults"])))
    if up is not None:
        inst.append("Graded folder: " + (", ".join(f"{k} <- {v}" for k, v in up.files.items()) or "(empty)"))
    if seconds is not None:
        inst.append(f"Time to results: {seconds:.1f} s")
    return {"name": f"For instructors: isolation {iso}", "number": f"{len(nb_order) + 2}.0",
                 "status": "failed" if iso in ("weak", "unknown") or result.get("grader_faults") else "passed",
                 "output": "\n".join(inst), "tags": ["instructors"], "visibility": "hidden"}


def _student_lines(result: dict, cfg: dict, nb_order: list, up: Upload | None, lateness, tests: list) -> list[str]:
    """What the student's files did: shown at once, no scores."""
    vis_hidden = cfg.get("hidden_tests", "after_due_date")
    reports = result.get("notebooks") if isinstance(result.get("notebooks"), dict) else {}
    lines = []
    expected = cfg.get("notebooks", [])
    not_found = []
    for nbn in nb_order:
        rep = reports.get(nbn) if isinstance(reports.get(nbn), dict) else {}
        name = rep.get("file")
        if name:
            lines.append(f"{nbn}.ipynb: graded {_where(up, name)}.")
        else:
            not_found.append(f"{nbn}.ipynb")
        for n in rep.get("notes") or []:
            lines.append(f"  {n}")
        for n in rep.get("cell_errors") or []:
            lines.append(f"  A cell raised an error: {n}")
    if up is not None:
        for n in up.ignored:
            lines.append(f"Not graded: {n}.")
        for n in up.refused:
            lines.append(f"Not read: {n}.")
    if not_found:
        held = sorted(up.others)[:10] if up is not None else []
        lines.append(f"Not found in your upload: {', '.join(not_found)}. Expected file names: "
                     f"{', '.join(expected)} (at the top of the upload, in a folder, or in a .zip; a renamed copy "
                     "such as 'Copy of ...' is found by its cells)."
                     + (f" Your upload held: {', '.join(held)}." if up is not None and not up.files else ""))
    if lateness is not None and (lateness.late or lateness.minutes_late > 0):
        lines.append(f"Lateness: {lateness.words}.")
    hidden_n = sum(1 for t in tests if t["visibility"] != "visible")
    if hidden_n:
        when = {"after_due_date": "after the due date", "after_published": "when grades are published",
                "hidden": "never (your instructor sees them)"}
        lines.append(f"{len(tests) - hidden_n} of {len(tests)} tests are shown now; the other {hidden_n} "
                     f"{when.get(vis_hidden, vis_hidden)}, and with them the score.")
    return lines


def results_page(result: dict, cfg: dict, up: Upload | None = None, lateness=None,
                 seconds: float | None = None) -> dict:
    """Gradescope's results.json from the grader's results.json (``result``) and the bundle's settings.

    - one test case per hidden test (``<graded name>: <test>``, its points, status and message); those that
      mirror the notebook's visible tests at ``visible_tests``, the rest at ``hidden_tests``;
    - informational cases (no points): a subtotal per notebook (its graded names' subtotals in its output),
      the late penalty, and one line for instructors only (the isolation level, the grader's faults);
    - the top-level output, shown at once, says only what the student's files did: which copy was graded,
      which were ignored or refused, which cells raised, which notebooks were not found (and the names
      expected), the lateness in the policy's words; never a score the visibility settings hide.
    """
    vis_shown, vis_hidden = cfg.get("visible_tests", "visible"), cfg.get("hidden_tests", "after_due_date")
    score_vis = cfg.get("score_visibility") or _most_hidden(vis_shown, vis_hidden)
    subtotals = result.get("subtotals") if isinstance(result.get("subtotals"), dict) else {}
    per_fn = subtotals.get("functions") if isinstance(subtotals.get("functions"), dict) else {}
    per_nb = subtotals.get("notebooks") if isinstance(subtotals.get("notebooks"), dict) else {}
    reports = result.get("notebooks") if isinstance(result.get("notebooks"), dict) else {}
    nb_order = list(dict.fromkeys([Path(n).stem for n in cfg.get("notebooks", [])] + list(per_nb) + list(reports)))
    nb_of_fn = {f: v.get("notebook") for f, v in per_fn.items() if isinstance(v, dict)}

    tests, vis_of_nb = _test_cases(result, cfg, nb_order, nb_of_fn)
    raw = float(result.get("score", sum(t["score"] for t in tests)))
    maximum = float(result.get("max_score", sum(t["max_score"] for t in tests)))
    every_vis = [t["visibility"] for t in tests] or [vis_hidden]

    info = _subtotal_cases(nb_order, per_nb, per_fn, score_vis, vis_of_nb, vis_hidden)

    final = raw
    late_d = None
    if lateness is not None:
        late_d = lateness.to_dict()
        final = lateness.apply(raw, maximum)
        if lateness.late:
            info.append({"name": f"Late penalty: -{raw - final:g} points",
                         "number": f"{len(nb_order) + 1}.0", "status": "failed",
                         "output": f"{lateness.words[:1].upper()}{lateness.words[1:]}.\nScore from the tests: "
                                   f"{raw:g} / {maximum:g}; after the late penalty: {final:g} / {maximum:g}.",
                         "tags": ["late"], "visibility": _most_hidden(score_vis, *every_vis)})

    iso = result.get("isolation") or "unknown"
    info.append(_instructors_case(result, up, seconds, nb_order))
    lines = _student_lines(result, cfg, nb_order, up, lateness, tests)
    doc = {"score": round(final, 6), "output": html.escape("\n".join(lines), quote=False), "output_format": "simple_format",
           "test_output_format": "text", "test_name_format": "text", "visibility": score_vis,
           "stdout_visibility": "hidden", "tests": sorted(tests + info, key=lambda t: _num_key(t["number"])),
           "extra_data": {"raw_score": raw, "max_score": maximum, "late": late_d, "isolation": iso,
                          "graded_files": dict(up.files) if up else {}, "subtotals": subtotals}}
    if seconds is not None:
        doc["execution_time"] = round(seconds, 3)
    return doc


def _num_key(n: str):
    return tuple(int(x) for x in n.split("."))


def _lateness(cfg: dict, metadata: dict, student: str):
    """The course's late policy on Gradescope's timestamps: ``created_at`` (so a regrade gives the same
    answer) against the user's own ``assignment.due_date`` when Gradescope lists one (an extension; in a
    group, the latest), else the assignment's; with none, the policy's own due date and extensions."""
    from .latepolicy import LatePolicy, parse_time

    if cfg.get("late_policy") is None:
        return None
    policy = LatePolicy.from_dict(cfg["late_policy"], source="the bundle's late policy")
    dues = [parse_time((u.get("assignment") or {}).get("due_date")) for u in metadata.get("users") or []
            if isinstance(u, dict) and isinstance(u.get("assignment"), dict)]
    dues = [d for d in dues if d] or [parse_time((metadata.get("assignment") or {}).get("due_date"))]
    due = max((d for d in dues if d), default=None)
    return policy.assess(cfg["assignment"], student, metadata.get("created_at"), due)
