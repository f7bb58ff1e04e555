"""Mutation score of the hidden tests: how many small bugs in each reference answer they catch.

    python tools/mutation.py [CHAPTER ...] [--quick N] [--json OUT] [--workers 2]

For every answer cell of every reference notebook, an AST mutator makes one change at a time inside
the solution region (never in the signature or docstring): operator and sign swaps, a constant
changed by one (indices, axes, gate offsets), a dropped `.T` transpose, a dropped term of a sum or
product, `+=` turned into `=` (a gradient no longer accumulated), `reversed(...)` dropped, a
`range` shortened by one, a comparison flipped, a slice bound moved. Each mutant becomes a
"student" whose notebook differs from the reference in that one cell; the whole set is graded in one
run. A mutant is killed when it loses points; it is killed *on its own function* when a test of the
mutated graded name loses points. It *spills over* when it costs points on another graded name (the
tests listed in a hidden-test file's ``WORKS_TOGETHER``, which run the student's functions together
on purpose, do not count; since the composition design, issue 20, no chapter lists any): the spill%
column is the share of a name's mutants that spill over. Sequence functions, two_layer_net and the
torch modules are judged on the student's own steps, layers and cells (autograder/testkit/compose.py,
modules.composed_run); a backward runs on its own forward's cache, repaired when that forward is wrong
and, when it raises (or leaves a cache the backward cannot run on), built in the layout its forward
shows on probe inputs where it runs (autograder/testkit/repair.py). What still spills is a dependency
that raises on every probe (no layout to learn), a torch module on a module that raises or cannot load
its weights, a model before its training, or a helper two cells share. Tests of a ``<notebook>:together``
name run the whole chain on purpose (a mistake anywhere shows there) and are not counted as spill.
tests/test_styles.py measures the same on solutions written in other styles (tests/styles/).

Equivalent mutants (no observable change: e.g. `x + 0` style rewrites, or a constant in a message)
are listed with a reason in tools/mutation_equivalents.json and excluded from the score.
`--quick N` grades N mutants per graded name (a deterministic sample) for CI.
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.testkit import manifest  # noqa: E402
from tools.course import (answer_cells, grade, load, make_class, results, solution_line_numbers,  # noqa: E402
                          strip_markers, student_copy)

EQUIV_FILE = Path(__file__).with_name("mutation_equivalents.json")
SPILL_FILE = Path(__file__).with_name("spill_exceptions.json")  # {"chapter/name": "why its mutants spill"}

SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.MatMult: ast.Mult,
        ast.Pow: ast.Mult, ast.FloorDiv: ast.Div}
CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}


def candidates(tree: ast.AST, lines: set[int]):
    """(node path, kind, label) for every mutation site inside the solution lines."""
    out = []
    for node in ast.walk(tree):
        ln = getattr(node, "lineno", None)
        if ln is None or ln not in lines:
            continue
        if isinstance(node, ast.BinOp):
            if type(node.op) in SWAP:
                out.append((node, "binop", f"{type(node.op).__name__}->{SWAP[type(node.op)].__name__}"))
            out.append((node, "drop_right", "keep left operand"))
            out.append((node, "drop_left", "keep right operand"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            out.append((node, "unary", "drop minus"))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in CMP:
            out.append((node, "compare", f"{type(node.ops[0]).__name__}->{CMP[type(node.ops[0])].__name__}"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            out.append((node, "const+1", f"{node.value}->{node.value + 1}"))
            if node.value != 0:
                out.append((node, "const0", f"{node.value}->0"))
        elif isinstance(node, ast.Attribute) and node.attr == "T":
            out.append((node, "dropT", "drop .T"))
        elif isinstance(node, ast.AugAssign):
            out.append((node, "augassign", f"{type(node.op).__name__}= -> ="))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "reversed":
            out.append((node, "unreverse", "drop reversed()"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and node.args:
            out.append((node, "range-1", "range one shorter"))
        elif isinstance(node, ast.Slice) and (node.lower is not None or node.upper is not None):
            out.append((node, "slice", "move slice bound"))
        elif isinstance(node, ast.keyword) and node.arg in ("axis", "dim", "keepdims", "keepdim"):
            out.append((node, "keyword", f"drop {node.arg}="))
    return out


def apply(tree: ast.AST, target: ast.AST, kind: str) -> ast.AST | None:
    """A copy of ``tree`` with ``target`` mutated (found again by identity after the deep copy)."""
    nodes_before = list(ast.walk(tree))
    idx = nodes_before.index(target)
    new = copy.deepcopy(tree)
    node = list(ast.walk(new))[idx]
    parent_of = {child: parent for parent in ast.walk(new) for child in ast.iter_child_nodes(parent)}

    def replace(old, repl):
        parent = parent_of[old]
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, repl)
                return True
            if isinstance(value, list) and old in value:
                value[value.index(old)] = repl
                return True
        return False

    if kind == "binop":
        node.op = SWAP[type(node.op)]()
    elif kind == "drop_right":
        replace(node, node.left)
    elif kind == "drop_left":
        replace(node, node.right)
    elif kind == "unary":
        replace(node, node.operand)
    elif kind == "compare":
        node.ops[0] = CMP[type(node.ops[0])]()
    elif kind == "const+1":
        node.value = node.value + 1
    elif kind == "const0":
        node.value = 0
    elif kind == "dropT":
        replace(node, node.value)
    elif kind == "augassign":
        replace(node, ast.Assign(targets=[node.target if not isinstance(node.target, ast.Name)
                                          else ast.Name(node.target.id, ast.Store())], value=node.value,
                                 lineno=node.lineno))
    elif kind == "unreverse":
        replace(node, node.args[0])
    elif kind == "range-1":
        if len(node.args) == 1:
            node.args[0] = ast.BinOp(node.args[0], ast.Sub(), ast.Constant(1))
        else:
            node.args[0] = ast.BinOp(node.args[0], ast.Add(), ast.Constant(1))
    elif kind == "slice":
        if node.lower is not None:
            node.lower = ast.BinOp(node.lower, ast.Add(), ast.Constant(1))
        else:
            node.upper = ast.BinOp(node.upper, ast.Sub(), ast.Constant(1))
    elif kind == "keyword":
        parent = parent_of[node]
        parent.keywords.remove(node)
    return ast.fix_missing_locations(new)


def mutants_of(src: str):
    """[(mutant id, label, mutated source)] for one answer cell."""
    keep = solution_line_numbers(src)  # in the source without its marker lines
    tree = ast.parse(strip_markers(src))
    base = ast.unparse(tree)
    out, seen = [], set()
    for node, kind, label in candidates(tree, keep):
        try:
            mutated = ast.unparse(apply(tree, node, kind))
        except Exception:
            continue
        if mutated == base or mutated in seen:
            continue
        seen.add(mutated)
        line = getattr(node, "lineno", 0)
        import difflib

        changed = [l[1:].strip() for l in difflib.unified_diff(base.splitlines(), mutated.splitlines(), lineterm="", n=0)
                   if l.startswith("+") and not l.startswith("+++")]
        label = f"{label}: {' / '.join(changed)[:160]}"
        mid = f"L{line}:{kind}:{hashlib.sha1(mutated.encode()).hexdigest()[:6]}"
        out.append((mid, f"line {line}: {label}", mutated))
    return out


def build(chapters, quick: int | None, root: Path, only=None, ids=None):
    """Write one student folder per mutant; returns {student_id: (chapter, notebook, function, mid, label)}."""
    index = {}
    for ch in chapters:
        for nbpath in sorted((REPO / "solutions" / ch).glob("*.ipynb")):
            nb = load(nbpath)
            for fn, ci in answer_cells(nb).items():
                if only and fn not in only:
                    continue
                muts = mutants_of(nb["cells"][ci]["source"])
                if quick:
                    muts = sorted(muts, key=lambda m: hashlib.sha1(m[0].encode()).hexdigest())[:quick]
                for mid, label, mutated in muts:
                    if ids and mid not in ids:
                        continue
                    sid = f"m{len(index):05d}"
                    copy_ = student_copy(ch, nbpath.stem, {fn: mutated})
                    make_class(root, {sid: {ch: {nbpath.stem: copy_}}})
                    index[sid] = (ch, nbpath.stem, fn, mid, label)
                    CELLS[sid] = [c["source"] for c in copy_["cells"]]
    return index


CELLS: dict[str, list[str]] = {}
CITED: dict = {"lines": 0, "bad": []}  # student id -> the sources of its notebook's cells
CITE = re.compile(r"\(in ([\w.<>]+), cell (\d+) line (\d+): ")


def cited_lines_ok(sid: str, message: str) -> tuple[int, list[str]]:
    """(lines cited, the citations that do not point at a line the check ran): a message cites
    ``(in FN, cell C line L: TEXT)`` from the traceback of the call that raised; it is right when cell
    C's line L reads TEXT and lies in FN (defined at or above it in that cell; a ``<lambda>``, on a line
    that holds one). A stand-in's or a stale cell's line fails this."""
    cells, bad, n = CELLS.get(sid, []), [], 0
    code = [c for c in cells if c.strip()]
    for m in CITE.finditer(message):
        n += 1
        fn, c, ln = m.group(1), int(m.group(2)), int(m.group(3))
        rest = message[m.end():]
        text = rest.split(")")[0].strip() if ")" in rest else rest.strip()
        ok = False
        for pool in (cells, code):
            if not 1 <= c <= len(pool):
                continue
            lines = pool[c - 1].splitlines()
            if not 1 <= ln <= len(lines):
                continue
            above = "\n".join(lines[:ln])
            line_ok = not text or lines[ln - 1].strip().startswith(text[:40]) or text[:40] in lines[ln - 1]
            fn_ok = (fn == "<module>" or re.search(rf"(def|class)\s+{re.escape(fn.split('.')[-1])}\b", above)
                     or (fn == "<lambda>" and "lambda" in lines[ln - 1]))  # a lambda: no def, its own line
            ok |= bool(line_ok and fn_ok)
        if not ok:
            bad.append(f"in {fn}, cell {c} line {ln}: {text[:60]}")
    return n, bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chapters", nargs="*")
    p.add_argument("--quick", type=int, default=None, help="mutants per graded name (deterministic sample)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path)
    p.add_argument("--target", type=float, default=0.95, help="kill rate every graded name must reach")
    p.add_argument("--spill-target", type=float, default=None,
                   help="share of each graded name's mutants that must cost nothing elsewhere (names listed in "
                        "tools/spill_exceptions.json, with their reason, are reported but not held to it)")
    p.add_argument("--only", nargs="*", default=None, help="only the mutants of these graded names (e.g. ctc_forward)")
    p.add_argument("--ids", nargs="*", default=None, help="only the mutants of these ids (as the report prints them)")
    a = p.parse_args(argv)
    chapters = a.chapters or manifest.chapter_ids("exercises")
    equiv = json.loads(EQUIV_FILE.read_text()) if EQUIV_FILE.exists() else {}
    tmp = Path(tempfile.mkdtemp(prefix="mutation-"))
    try:
        index = build(chapters, a.quick, tmp / "submitted", a.only, set(a.ids or ()))
        print(f"{len(index)} mutants in {len(chapters)} chapters; grading...", file=sys.stderr)
        r = grade(tmp / "submitted", tmp / "out", "--workers", str(a.workers), "--cell-timeout", "20",
                  "--call-timeout", "10", timeout=None)
        if r.returncode:
            sys.stderr.write(r.stderr)
            return r.returncode
        together = works_together(chapters)
        stats = defaultdict(lambda: {"mutants": 0, "killed": 0, "own": 0, "equivalent": 0, "spill": 0,
                                     "survivors": [], "spilled": []})
        for sid, (ch, nb, fn, mid, label) in index.items():
            doc = results(tmp / "out", sid, ch)
            key = f"{ch}/{fn}"
            st = stats[key]
            mine = [t for t in doc["tests"] if t["function"] == fn]
            own = any(t["status"] != "passed" for t in mine)
            killed = own or doc["score"] < doc["max_score"] - _missing_other_notebooks(doc, nb)
            if f"{key}:{mid}" in equiv:
                st["equivalent"] += 1
                continue
            st["mutants"] += 1
            st["killed"] += killed
            st["own"] += own
            if not killed:
                st["survivors"].append(f"{mid} ({label})")
            lost, how = {}, set()
            for t in doc["tests"]:
                if t["status"] != "passed":
                    n, bad = cited_lines_ok(sid, t.get("message", ""))
                    CITED["lines"] += n
                    CITED["bad"] += [f"{key}:{mid} {t['name']}: {b}" for b in bad]
                if t["name"] in together or t["function"].endswith(":together"):
                    continue  # runs the student's functions together by design (its own graded name)
                if t["function"] != fn and t["points"] < t["max_points"] and not (
                        t["status"] == "missing" and "was not submitted" in t["message"]):
                    lost[t["function"]] = lost.get(t["function"], 0.0) + t["max_points"] - t["points"]
                    how.add(_why(t, fn))
            if lost:
                st["spill"] += 1
                st["spilled"].append(f"{mid} ({label}): " + ", ".join(f"{k} -{v:g}" for k, v in sorted(lost.items()))
                                     + "".join(f"\n        {h}" for h in sorted(how)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = {"mutants": 0, "killed": 0}
    ok = True
    spill_ok = json.loads(SPILL_FILE.read_text()) if SPILL_FILE.exists() else {}
    print(f"{'graded name':45s} {'mutants':>7s} {'killed':>7s} {'own fn':>7s} {'equiv':>6s} {'score':>7s} "
          f"{'spill':>6s} {'spill%':>7s}")
    for key in sorted(stats):
        st = stats[key]
        score = st["killed"] / st["mutants"] if st["mutants"] else 1.0
        ok &= score >= a.target
        total["mutants"] += st["mutants"]
        total["killed"] += st["killed"]
        spill = st["spill"] / st["mutants"] if st["mutants"] else 0.0
        if a.spill_target is not None and 1 - spill < a.spill_target:
            if key in spill_ok:
                st["spill_reason"] = spill_ok[key]
            else:
                ok = False
        total["spill"] = total.get("spill", 0) + st["spill"]
        print(f"{key:45s} {st['mutants']:7d} {st['killed']:7d} {st['own']:7d} {st['equivalent']:6d} {100 * score:6.1f}% "
              f"{st['spill']:6d} {100 * spill:6.1f}%")
        for s in st["survivors"]:
            print(f"    survived: {s}")
        for s in st["spilled"]:
            print(f"    spilled: {s}")
        if st.get("spill_reason"):
            print(f"    spill-over accepted: {st['spill_reason']}")
    overall = total["killed"] / total["mutants"] if total["mutants"] else 1.0
    tspill = total.get("spill", 0)
    print(f"{'overall':45s} {total['mutants']:7d} {total['killed']:7d} {'':7s} {'':6s} {100 * overall:6.1f}% "
          f"{tspill:6d} {100 * tspill / max(total['mutants'], 1):6.1f}%")
    print(f"messages: {CITED['lines']} cited lines, {len(CITED['bad'])} that do not point at a line the check ran")
    for b in CITED["bad"][:50]:
        print(f"    not exercised: {b}")
    if a.json:
        a.json.write_text(json.dumps({"per_name": stats, "overall": overall, "cited_lines": CITED["lines"],
                                      "cited_not_exercised": CITED["bad"]}, indent=1))
    return 0 if ok else 1


def works_together(chapters) -> set[str]:
    """Tests that run the student's functions together on purpose (``WORKS_TOGETHER`` in a hidden-test
    file): a step's mistake may cost their few points, so they do not count as spill-over."""
    import importlib

    out = set()
    for ch in chapters:
        for f in sorted((REPO / "autograder" / "tests" / ch).glob("test_*.py")):
            out |= set(getattr(importlib.import_module(f"autograder.tests.{ch}.{f.stem}"), "WORKS_TOGETHER", []))
    return out


def _why(t: dict, fn: str) -> str:
    """Why a test of another graded name lost points to a mutant of ``fn``: its own function raised
    on what the mutant gave it (e.g. a cache), a dependency raised inside it, or it returned values
    that differ (judged on the mutant's cache or outputs)."""
    test = t["name"].rsplit("::", 1)[-1]
    if t["status"] == "failed":
        return f"{test}: wrong values (on what {fn} gave it)"
    m = re.search(r"\(in (\w+), cell", t["message"])
    where = m.group(1) if m else "?"
    first = t["message"].split("\n")[0][:80]
    return f"{test}: {t['status']} raised in {where} ({first})"


def _missing_other_notebooks(doc: dict, nb: str) -> float:
    """Points of the assignment's other notebooks (not submitted by a mutant student)."""
    return sum(t["max_points"] for t in doc["tests"] if t["status"] == "missing"
               and "was not submitted" in t["message"])


if __name__ == "__main__":
    sys.exit(main())
