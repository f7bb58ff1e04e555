"""A quick subset of the mutation check (the full run: `python tools/mutation.py`): a deterministic
sample of mutants of every graded name must all lose points."""
import subprocess
import sys

from conftest import REPO


def test_hidden_tests_kill_sampled_mutants():
    r = subprocess.run([sys.executable, "tools/mutation.py", "--quick", "3", "--target", "1.0"], cwd=REPO,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
    assert "overall" in r.stdout
