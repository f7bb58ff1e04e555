"""Fair credit on code the tests were not written for (issue 20): a correct solution in another style
scores 100 %, and each classic mistake injected into it costs points on its own graded name only."""
import importlib
import json

import pytest

from conftest import REPO
from tools.course import answer_cells, grade, make_class, results, student_copy

CASES = [("ch02_rnn", "rnn_numpy", "ch02_dict_cache"), ("ch04_lstm", "lstm_numpy", "ch04_class_cache"),
         ("ch05_gru", "gru_numpy", "ch05_closure_cache"), ("ch04_lstm", "lstm_torch", "ch04_torch_reference"),
         ("ch05_gru", "gru_torch", "ch05_torch_reference"),
         ("ch02_rnn", "rnn_torch", "ch02_torch_reference"), ("ch01_gradients", "gradients_numpy", "ch01_reference_layers")]


def _nb(chapter, notebook, style, edit=None):
    src = dict(style)
    if edit:
        name, (old, new) = edit[:2]
        if name not in src:  # a cell the style keeps as the reference writes it
            ref = student_copy(chapter, notebook)
            src[name] = ref["cells"][answer_cells(ref)[name]]["source"]
        assert old in src[name], (name, old)
        src[name] = src[name].replace(old, new)
    return student_copy(chapter, notebook, {k: v.strip() + "\n" for k, v in src.items()})


@pytest.fixture(scope="module")
def graded_styles(tmp_path_factory):
    """Every style and every mutant of it, graded in ONE run of the grader (one start, one zygote:
    a start costs about 4 CPU-s, and the styles' students are independent of each other):
    {style: (out folder, {student: (mistake, the graded name that owns it)})}."""
    tmp = tmp_path_factory.mktemp("styles")
    students, names = {}, {}
    for chapter, notebook, style in CASES:
        mod = importlib.import_module(f"styles.{style}")
        students[style] = {chapter: {notebook: _nb(chapter, notebook, mod.STYLE)}}
        names[style] = {}
        for i, (desc, edit) in enumerate(mod.MUTANTS.items()):
            students[f"{style}-m{i}"] = {chapter: {notebook: _nb(chapter, notebook, mod.STYLE, edit)}}
            names[style][f"{style}-m{i}"] = (desc, edit[2] if len(edit) > 2 else edit[0])  # who owns the mistake
    sub = make_class(tmp / "submitted", students)
    grade(sub, tmp / "out", "--workers", "1", check=True)
    return {style: (tmp / "out", names[style]) for style in names}


@pytest.mark.slow
@pytest.mark.parametrize("chapter, notebook, style", CASES)
def test_style_full_marks_and_no_spill(graded_styles, chapter, notebook, style):
    mod = importlib.import_module(f"styles.{style}")
    out, names = graded_styles[style]
    per = {s: {f: v for f, v in results(out, s, chapter)["subtotals"]["functions"].items()
               if v.get("notebook") == notebook} for s in [style, *names]}
    full = per[style]
    lines, bad = [], []
    for f, v in full.items():
        if v["score"] != v["max_score"]:
            bad.append(f"style: {f} {v['score']}/{v['max_score']}")
    for s, (desc, own) in names.items():
        lost = {f: v["max_score"] - v["score"] for f, v in per[s].items() if v["score"] < v["max_score"]}
        lines.append(f"{desc}: lost {lost}")
        if own not in lost:
            bad.append(f"{desc}: nothing lost on {own}")
        # a step backward's tests need the step forward's cache: a step forward that raises leaves
        # them nothing to run (COUPLED lists such pairs, with the reason)
        # "<notebook>:together" is the whole chain's own graded name (issue 20): any mistake shows there
        spill = {f: n for f, n in lost.items() if f != own and (own, f) not in getattr(mod, "COUPLED", {})
                 and not f.endswith(":together")}
        if spill:
            bad.append(f"{desc}: spills onto {spill}")
    print("\n".join(lines))
    assert not bad, "\n".join(bad + lines)
