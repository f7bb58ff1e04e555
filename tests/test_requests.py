"""The rule of issue 18: no hidden-test source, reference function or trusted object is ever sent to
or executed in the student's process. Every request the trusted side sent while the whole course was
graded (every chapter's reference and released stubs: ``graded_course``) is checked here: only the
engine's own operations, with arguments that are plain data (arrays, numbers, strings, None, tuples,
lists, str-keyed dicts) or handles to the student's own objects; cells only from the submitted
notebook or the release."""
from __future__ import annotations

import json

PLAIN = {"arr", "npscalar", "tensor_in", "handle", "tuple", "list", "dict", "none", "bool", "int", "float", "str"}


def _trees(v):
    if isinstance(v, dict) and "t" in v:
        yield v
        for x in v.get("v", []) if isinstance(v.get("v"), list) else []:
            yield from _trees(x)


def test_every_request_sent_while_grading_the_course_is_plain_data(graded_course):
    from autograder.core.engine import ALLOWED_OPS

    audit = graded_course.parent / "requests.jsonl"
    lines = [json.loads(l) for l in audit.read_text().splitlines()]
    assert len(lines) > 500, len(lines)  # the whole course went through the audit
    ops = {l["op"] for l in lines}
    assert ops <= ALLOWED_OPS | {"cb_reply"}, ops - ALLOWED_OPS  # cb_reply: the plain-data answer to a forwarder
    assert "define" not in ALLOWED_OPS and "call" in ops and "run_cell" in ops
    # a one-edit correction bound in place (testkit/corrected_modules.py): a name and an edit number only,
    # and never asked for while correct code or a released stub is graded
    assert "bind" in ALLOWED_OPS and "bind" not in ops and "variant" not in ops
    for l in lines:
        assert set(l["keys"]) <= {"op", "id", "seed", "block", "i", "src", "target", "method", "args", "kwargs", "keep",
                                  "return_args", "stand_ins", "names", "h", "attr", "handles", "grads", "name", "k",
                                  "cb_reply", "ok", "value", "error", "re"}, l["keys"]
        bad = [t for t in l["types"] if t not in PLAIN]
        assert not bad, (l["op"], bad)
        if l["op"] == "run_cell":
            assert l["from"] == "plan", l  # cells come from the notebook plan only
