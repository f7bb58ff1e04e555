"""chapters.yml is the one list of chapters: every generated file is current, every chapter has all its
parts (or is declared book-only), the graded names and points agree with the hidden tests, and the
graded interface (CONTRACT.md) is what the notebooks and hidden tests implement."""
import ast
import re
import shutil

import pytest

from conftest import REPO
from autograder.core import runner
from autograder.testkit import manifest
from tools import chapters as gen
from tools.course import answer_cells, load

DOC = manifest.load()
EXERCISE = [c for c in DOC["chapters"] if c["kind"] == "exercises"]


def test_generated_files_are_current():
    assert not gen.stale(), f"run `python tools/chapters.py generate`: {gen.stale()} differ from chapters.yml"


def test_stale_detects_an_edit(tmp_path):
    """The check above can fail: a chapter added to a copy of the manifest makes every list stale."""
    for f in ("chapters.yml", "_toc.yml", "chapters.mk"):
        shutil.copy(REPO / f, tmp_path / f)
    (tmp_path / "book").mkdir()
    shutil.copy(REPO / "book" / "exercises.md", tmp_path / "book" / "exercises.md")
    assert gen.stale(tmp_path) == []
    with open(tmp_path / "chapters.yml", "a") as f:
        f.write("  - id: ch99_extra\n    title: 99. Extra\n    kind: book-only\n")
    manifest.load.cache_clear()
    try:
        assert set(gen.stale(tmp_path)) == {"_toc.yml", "chapters.mk"}
    finally:
        manifest.load.cache_clear()


def test_toc_lists_every_chapter_and_notebook():
    toc = (REPO / "_toc.yml").read_text()
    for c in DOC["chapters"]:
        assert f"file: book/{c['id']}\n" in toc
        for nb in c.get("notebooks", {}):
            assert f"file: exercises/{c['id']}/{nb}\n" in toc


@pytest.mark.parametrize("chapter", DOC["chapters"], ids=lambda c: c["id"])
def test_every_chapter_has_all_its_parts(chapter):
    cid = chapter["id"]
    assert (REPO / "book" / f"{cid}.md").is_file(), f"book/{cid}.md is missing"
    tests_dir, sol, ex = REPO / "autograder" / "tests" / cid, REPO / "solutions" / cid, REPO / "exercises" / cid
    if chapter["kind"] == "book-only":
        assert not (sol.exists() or ex.exists() or tests_dir.exists()), \
            f"{cid} is declared book-only in chapters.yml but has notebooks or hidden tests"
        return
    nbs = set(chapter["notebooks"])
    assert {p.stem for p in sol.glob("*.ipynb")} == nbs, f"solutions/{cid}/ does not hold exactly {sorted(nbs)}"
    assert {p.stem for p in ex.glob("*.ipynb")} == nbs, f"exercises/{cid}/: run `make release CHAPTERS={cid}`"
    assert {p.stem[len("test_"):] for p in tests_dir.glob("test_*.py")} == nbs, \
        f"autograder/tests/{cid}/ needs one test_<notebook>.py per notebook of {sorted(nbs)}"


def test_nothing_outside_the_manifest():
    ids = {c["id"] for c in DOC["chapters"]}
    exercise_ids = {c["id"] for c in EXERCISE}
    assert set(runner.assignments()) == exercise_ids
    assert {p.name for p in (REPO / "solutions").iterdir() if p.is_dir()} == exercise_ids
    assert {p.stem for p in (REPO / "book").glob("ch*.md")} | {p.stem for p in (REPO / "book").glob("appendix*.md")} <= ids


@pytest.mark.parametrize("chapter", EXERCISE, ids=lambda c: c["id"])
def test_graded_names_and_points_match_the_hidden_tests(chapter):
    declared = {nb: {k: float(v) for k, v in spec["graded"].items()} for nb, spec in chapter["notebooks"].items()}
    actual = {}
    for nbt in runner.load_assignment(chapter["id"]):
        pts = actual.setdefault(nbt.notebook, {})
        for t in nbt.tests:
            pts[t.function] = pts.get(t.function, 0.0) + t.points
    assert actual == declared, "chapters.yml's graded names and points differ from `python -m autograder list`"


TOGETHER = ":together"  # "<notebook>:together": the whole chain's check (issue 20), a graded name with no answer cell


@pytest.mark.parametrize("chapter", EXERCISE, ids=lambda c: c["id"])
def test_every_graded_name_has_an_answer_cell(chapter):
    for nb, spec in chapter["notebooks"].items():
        cells = set(answer_cells(load(REPO / "solutions" / chapter["id"] / f"{nb}.ipynb")))
        together = {n for n in spec["graded"] if n.endswith(TOGETHER)}
        assert together <= {f"{nb}{TOGETHER}"}, f"{chapter['id']}/{nb}: a whole-chain name is {nb}{TOGETHER}, got {together}"
        # explicitly exempt: the whole chain's check has no answer cell of its own, and a small share
        assert all(spec["graded"][n] <= 0.1 * sum(spec["graded"].values()) for n in together), spec["graded"]
        assert cells == set(spec["graded"]) - together, f"{chapter['id']}/{nb}: answer cells {sorted(cells)} != graded names"
        assert set(spec.get("forbidden") or {}) <= cells


# ------------------------------------------------------------------------ the hidden tests' shape
def _hidden_test_files():
    return sorted((REPO / "autograder" / "tests").glob("ch*/*.py"))


@pytest.mark.parametrize("path", _hidden_test_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_hidden_tests_import_only_the_kit(path):
    """No chapter imports another chapter (or a private helper of its own); no registry tricks."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            assert node.level == 0, f"{path.name}: relative import (share code through autograder.testkit)"
            assert not mod.startswith("autograder.tests"), f"{path.name} imports {mod}: use autograder.testkit"
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("autograder.tests") for a in node.names)
        elif isinstance(node, ast.Name):
            assert node.id not in ("globals", "_REGISTRY"), f"{path.name} uses {node.id}"
        elif isinstance(node, ast.Attribute):
            assert node.attr not in ("_REGISTRY", "__module__"), f"{path.name} touches {node.attr}"
        elif isinstance(node, ast.FunctionDef) and node.name == "check_array":
            pytest.fail(f"{path.name} shadows check_array (use the kit's checks, e.g. check_strict)")


def test_every_registered_test_is_written_out_in_its_file():
    for a in runner.assignments():
        for nbt in runner.load_assignment(a):
            src = (REPO / "autograder" / "tests" / a / f"test_{nbt.notebook}.py").read_text()
            for t in nbt.tests:
                assert re.search(rf"^def {re.escape(t.name)}\(", src, flags=re.M), \
                    f"{t.name} is registered but not defined by name in test_{nbt.notebook}.py"
    assert sum(len(nbt.tests) for a in runner.assignments() for nbt in runner.load_assignment(a)) > 100


# -------------------------------------------------------------------------------- the contract
CONTRACT = (REPO / "CONTRACT.md").read_text()


def _contract_rows(section: str):
    body = CONTRACT.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| `")]


def test_contract_numpy_signatures_match_the_notebooks():
    defs = {}
    for c in EXERCISE:
        for nb in c["notebooks"]:
            for cell in load(REPO / "solutions" / c["id"] / f"{nb}.ipynb")["cells"]:
                for node in ast.walk(ast.parse(cell["source"])) if cell["cell_type"] == "code" else ():
                    if isinstance(node, ast.FunctionDef):
                        defs[node.name] = [a.arg for a in node.args.args]
    graded = {n for c in EXERCISE for spec in c["notebooks"].values() for n in spec["graded"]}
    rows = _contract_rows("NumPy")
    assert len(rows) >= 15
    for row in rows:
        m = re.match(r"\| `(\w+)` \| `\(([^)]*)\)", row)
        assert m, row
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]
        assert name in graded, f"CONTRACT.md lists {name}, which no hidden test grades"
        assert defs.get(name) == args, f"{name}: CONTRACT.md says ({', '.join(args)}), the notebook defines {defs.get(name)}"


def test_contract_torch_names_are_graded():
    graded = {n for c in EXERCISE for spec in c["notebooks"].values() for n in spec["graded"]}
    names = [n for row in _contract_rows("PyTorch") for n in re.findall(r"`(\w+)`", row.split("|")[1])]
    assert {"RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "clip_grad_norm_"} <= set(names)
    assert set(names) <= graded, f"CONTRACT.md lists names no hidden test grades: {set(names) - graded}"
