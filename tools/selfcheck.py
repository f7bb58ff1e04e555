"""Grade the reference solutions and the released stubs of chapters; print every test that is off.

    python tools/selfcheck.py [CHAPTER ...]      (default: every chapter with exercises in chapters.yml)

Reference notebooks must pass every hidden test; released stubs must earn zero. Exit status 1 if not.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.testkit import manifest  # noqa: E402
from tools.course import grade, make_class, results  # noqa: E402


def main(chapters: list[str]) -> int:
    chapters = chapters or manifest.chapter_ids("exercises")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        sub, out = Path(tmp) / "submitted", Path(tmp) / "results"
        make_class(sub, {"reference": {ch: REPO / "solutions" / ch for ch in chapters},
                         "stub": {ch: REPO / "exercises" / ch for ch in chapters}})
        r = grade(sub, out, "--workers", "2")
        sys.stderr.write(r.stderr)
        if r.returncode:
            return r.returncode
        for ch in chapters:
            for who in ("reference", "stub"):
                doc = results(out, who, ch)
                print(f"{ch:22s} {who:9s} {doc['score']:g}/{doc['max_score']:g} ({len(doc['tests'])} tests)")
                for t in doc["tests"]:
                    if (who == "reference") != (t["status"] == "passed") or (who == "stub" and t["points"]):
                        ok = False
                        print(f"    {t['name']}: {t['status']}: {t['message'][:300]}")
                for nb, rep in doc["notebooks"].items():
                    if who == "reference" and rep.get("cell_errors"):
                        ok = False  # a reference notebook must run cleanly from top to bottom
                    for line in rep.get("notes", []) + (rep.get("cell_errors", []) if who == "reference" else []):
                        print(f"    [{nb}] {line[:300]}")
    print("selfcheck:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
