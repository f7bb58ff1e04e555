"""Grade the reference solutions and the released stubs of chapters; print every test that is off.

    python tools/selfcheck.py [CHAPTER ...]      (default: every chapter in solutions/)

Reference notebooks must pass every hidden test; released stubs must earn zero. Exit status 1 if not.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(chapters: list[str]) -> int:
    chapters = chapters or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        sub, out = Path(tmp) / "submitted", Path(tmp) / "results"
        for ch in chapters:
            for who, src in (("reference", REPO / "solutions" / ch), ("stub", REPO / "exercises" / ch)):
                (sub / who / ch).mkdir(parents=True, exist_ok=True)
                for nb in src.glob("*.ipynb"):
                    shutil.copy(nb, sub / who / ch / nb.name)
        r = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sub), "--out", str(out),
                            "--workers", "2", "--no-progress"], cwd=REPO)
        if r.returncode:
            return r.returncode
        for ch in chapters:
            for who in ("reference", "stub"):
                doc = json.loads((out / who / ch / "results.json").read_text())
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
