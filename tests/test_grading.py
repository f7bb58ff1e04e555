"""Every reference solution scores full marks; every released stub scores zero; the output format
is the CONTRACT's."""
import csv

import pytest

from conftest import CHAPTERS, load_results

STATUSES = {"passed", "failed", "error", "timeout", "missing"}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_scores_full_marks(graded_course, chapter):
    r = load_results(graded_course, "reference", chapter)
    off = [(t["name"], t["status"], t["message"]) for t in r["tests"] if t["status"] != "passed"]
    assert not off, off
    assert r["score"] == r["max_score"] > 0
    errors = {nb: rep["cell_errors"] for nb, rep in r["notebooks"].items() if rep["cell_errors"]}
    assert not errors, f"reference notebooks must run cleanly: {errors}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_released_stub_scores_zero(graded_course, chapter):
    r = load_results(graded_course, "stub", chapter)
    earned = [(t["name"], t["points"]) for t in r["tests"] if t["points"]]
    assert not earned, earned
    assert r["score"] == 0
    assert all(t["status"] != "passed" for t in r["tests"])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_results_follow_the_contract(graded_course, chapter):
    ref, stub = load_results(graded_course, "reference", chapter), load_results(graded_course, "stub", chapter)
    for r in (ref, stub):
        assert {"student_id", "assignment", "score", "max_score", "tests"} <= set(r)
        for t in r["tests"]:
            assert set(t) >= {"name", "function", "points", "max_points", "status", "message"}
            assert t["status"] in STATUSES
            assert 0 <= t["points"] <= t["max_points"]
        assert r["score"] == sum(t["points"] for t in r["tests"])
    # every test is listed for every student, so max_score is the same
    assert [t["name"] for t in ref["tests"]] == [t["name"] for t in stub["tests"]]
    assert ref["max_score"] == stub["max_score"]


def test_grades_csv(graded_course):
    rows = list(csv.reader(open(graded_course / "grades.csv")))
    assert rows[0] == ["student_id", "assignment", "score", "max_score"]
    body = {(r[0], r[1]): (float(r[2]), float(r[3])) for r in rows[1:]}
    assert len(body) == 2 * len(CHAPTERS)
    for c in CHAPTERS:
        score, mx = body[("reference", c)]
        assert score == mx > 0
        assert body[("stub", c)] == (0.0, mx)


def test_every_test_names_a_graded_function_with_an_answer_cell(graded_course):
    import json
    from pathlib import Path

    from conftest import REPO

    for c in CHAPTERS:
        r = load_results(graded_course, "reference", c)
        ids = set()
        for nb in (REPO / "solutions" / c).glob("*.ipynb"):
            ids |= {cell["metadata"].get("nbgrader", {}).get("grade_id") for cell in json.load(open(nb))["cells"]}
        # "<notebook>:together" (the whole chain's check, issue 20) has no answer cell, by design
        missing = {t["function"] for t in r["tests"] if not t["function"].endswith(":together")} - ids
        assert not missing, f"{c}: graded names without an answer cell of that grade_id: {missing}"
