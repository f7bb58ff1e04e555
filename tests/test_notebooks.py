"""The notebooks follow the course's rules: nbgrader metadata, no outputs, markers in bodies,
exercises/ exactly what nbgrader generates from solutions/."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CHAPTERS, REPO

ALL_NOTEBOOKS = sorted(p.relative_to(REPO) for d in ("solutions", "exercises") for p in (REPO / d).rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=str)
def test_committed_without_outputs(path):
    nb = json.load(open(REPO / path))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", [p for p in ALL_NOTEBOOKS if p.parts[0] == "solutions"], ids=str)
def test_solution_notebook_structure(path):
    nb = json.load(open(REPO / path))
    ids = []
    for i, c in enumerate(nb["cells"]):
        src = "".join(c["source"])
        meta = c.get("metadata", {}).get("nbgrader")
        if c["cell_type"] == "code":
            assert meta and meta.get("grade_id"), f"{path}: code cell {i} has no nbgrader metadata"
            ids.append(meta["grade_id"])
            if meta.get("solution"):
                assert "### BEGIN SOLUTION" in src, f"{path}: answer cell {meta['grade_id']} has no solution markers"
                for line in src.splitlines():
                    if "### BEGIN SOLUTION" in line:
                        assert line.startswith((" ", "\t")), (
                            f"{path}: {meta['grade_id']}: solution markers belong inside the function body, "
                            "so that the stub keeps its signature and docstring")
    assert len(ids) == len(set(ids)), f"{path}: duplicate grade_ids"


@pytest.fixture(scope="module")
def nbgrader_release(tmp_path_factory):
    """`nbgrader generate_assignment` of every chapter of solutions/, in one nbgrader process (its
    assignment argument is a glob): one start instead of one per chapter."""
    root = tmp_path_factory.mktemp("release")
    for chapter in CHAPTERS:
        shutil.copytree(REPO / "solutions" / chapter, root / "solutions" / chapter)
    shutil.copy(REPO / "nbgrader_config.py", root)
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "nbgrader"), "generate_assignment", "*",
                        "--force"], cwd=root, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return root


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_match_nbgrader_release(nbgrader_release, chapter):
    """exercises/<chapter> is exactly what `nbgrader generate_assignment` makes from solutions/."""
    tmp_path = nbgrader_release
    fresh = sorted(p.name for p in (tmp_path / "exercises" / chapter).glob("*.ipynb"))
    committed = sorted(p.name for p in (REPO / "exercises" / chapter).glob("*.ipynb"))
    assert fresh == committed, f"exercises/{chapter} holds {committed}, nbgrader makes {fresh}: run `make release`"
    for name in fresh:
        a = json.load(open(tmp_path / "exercises" / chapter / name))
        b = json.load(open(REPO / "exercises" / chapter / name))
        assert a == b, f"exercises/{chapter}/{name} differs from nbgrader's release of solutions/: run `make release`"
