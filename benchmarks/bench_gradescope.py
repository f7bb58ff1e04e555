"""A Gradescope submission's time to results: from the start of the zip's ``run_autograder`` to
``results.json`` (its ``execution_time``), for the reference notebooks of one assignment, with bubblewrap
and under Docker's restrictions (emulated by tests/container.py, the grader's container mode).

    python benchmarks/bench_gradescope.py [--assignment ch01_gradients] [--runs 3]
        [--python _build/gradescope-fromzip/setup/venv/bin/python]

``--python``: the environment the zip's own setup.sh built (``tests/test_gradescope.py`` leaves one under
``_build/gradescope-fromzip/setup/``, and its setup time and size in ``_build/gradescope-setup.json``);
default: that one when present, else this interpreter (said in the output).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from autograder.platforms import gradescope as gs  # noqa: E402
import container  # noqa: E402

BUILD = REPO / "_build"
ON_TIME = {"created_at": "2026-11-20T20:00:00-08:00", "assignment": {"due_date": "2026-11-20T23:59:00-08:00"},
           "users": [{"id": 1, "email": "bench@example.com"}]}


def one(bundle: Path, assignment: str, py: Path, wrap: bool, i: int) -> float:
    root = BUILD / "gradescope-bench" / f"{'container' if wrap else 'plain'}-{i}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    for p in sorted((REPO / "solutions" / assignment).glob("*.ipynb")):
        shutil.copy(p, root / "submission" / p.name)
    (root / "submission_metadata.json").write_text(json.dumps(ON_TIME))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": str(py)}
    cmd = [str(root / "run_autograder")]
    r = subprocess.run(container.wrap(cmd) if wrap else cmd, cwd=root, env=env, capture_output=True, text=True)
    doc = json.loads((root / "results" / "results.json").read_text())
    if r.returncode != 0 or doc["score"] != doc["extra_data"]["max_score"]:
        sys.exit(f"the reference did not score full marks: {doc.get('output', '')[:500]}")
    return float(doc["execution_time"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assignment", default="ch01_gradients")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--python", type=Path)
    a = ap.parse_args()
    fromzip = BUILD / "gradescope-fromzip" / "setup" / "venv" / "bin" / "python"
    py = a.python or (fromzip if fromzip.exists() else Path(sys.executable))
    bundle = gs.build_zip(a.assignment, BUILD / "gradescope-bench" / f"{a.assignment}.zip")
    print(f"{a.assignment}, reference notebooks, {a.runs} runs each, interpreter {py}")
    modes = [("bubblewrap (or what this machine allows)", False)]
    if not container.available():
        modes.append(("Docker's restrictions (emulated: container mode)", True))
    for label, wrap in modes:
        times = [one(bundle, a.assignment, py, wrap, i) for i in range(a.runs)]
        print(f"  {label}: time to results.json median {statistics.median(times):.1f} s "
              f"(runs: {', '.join(f'{t:.1f}' for t in times)})")
    setup = BUILD / "gradescope-setup.json"
    if setup.is_file():
        s = json.loads(setup.read_text())
        print(f"  setup.sh (tests/test_gradescope.py, wheels from a local folder): {s['setup_seconds']} s, "
              f"venv {s['venv_mib']} MiB")


if __name__ == "__main__":
    main()
