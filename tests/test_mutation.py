"""A quick subset of the mutation check (the full run: `make mutation`): a deterministic sample of
mutants of every graded name must all lose points, and a mistake must cost points on its own graded
name only: zero spill-over on at least 95 % of each name's mutants, except the names listed with a
reason in tools/spill_exceptions.json."""
import json
import subprocess
import sys

from conftest import REPO


def test_hidden_tests_kill_sampled_mutants_without_spill_over(tmp_path):
    r = subprocess.run([sys.executable, "tools/mutation.py", "--quick", "3", "--target", "1.0", "--spill-target",
                        "0.95", "--json", str(tmp_path / "m.json")], cwd=REPO, capture_output=True, text=True,
                       timeout=3000)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["per_name"] and all(v["mutants"] > 0 for v in doc["per_name"].values())


def test_spill_exceptions_name_real_graded_names():
    from autograder.testkit import manifest

    names = {f"{c['id']}/{n}" for c in manifest.chapters("exercises") for nb in c["notebooks"].values()
             for n in nb["graded"]}
    exceptions = json.loads((REPO / "tools" / "spill_exceptions.json").read_text())
    assert set(exceptions) <= names and all(len(v) > 20 for v in exceptions.values())
