"""Every benchmark of the course in one run, printed as one table with the machine it ran on.

    python benchmarks/run_all.py [--students 40] [--nbgrader-students 4] [--skip-book] [--json OUT]

1. A clean book build (executed-notebook cache emptied first): total seconds, and each chapter's
   execution time from jupyter-cache (budget: 60 s per chapter, 5 min for the whole build).
2. Grading throughput (benchmarks/bench_grading.py): 1 and 2 workers, overhead per notebook, and the
   ratio to `nbgrader autograde` on the same class.
3. Model speed (benchmarks/bench_models.py): the NumPy reference LSTM and the from-scratch PyTorch
   LSTM against torch.nn.LSTM (and cuDNN / torch.compile when a GPU is present).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; Python {platform.python_version()}"


def book_times() -> dict:
    cache = REPO / "_build" / ".jupyter_cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), PATH=f"{BIN}:{os.environ['PATH']}")
    t0 = time.perf_counter()
    r = subprocess.run([str(BIN / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"], cwd=REPO, env=env,
                       capture_output=True, text=True)
    total = time.perf_counter() - t0
    from jupyter_cache import get_cache

    per = {}
    for rec in get_cache(str(cache)).list_cache_records():
        name = Path(rec.uri).stem
        per[name] = max(per.get(name, 0.0), float(rec.data.get("execution_seconds", 0.0)))
    return {"ok": r.returncode == 0, "total_s": total, "chapters": dict(sorted(per.items()))}


def run_json(script: str, *args) -> dict:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "--json", str(out)], cwd=REPO,
                           capture_output=True, text=True)
        print(r.stdout, end="")
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            return {}
        return json.loads(out.read_text() or "{}")
    finally:
        out.unlink(missing_ok=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--nbgrader-students", type=int, default=4)
    p.add_argument("--skip-book", action="store_true")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    report = {"machine": machine()}
    if not a.skip_book:
        report["book"] = book_times()
    report["grading"] = run_json("bench_grading.py", "--students", str(a.students), "--nbgrader-students",
                                 str(a.nbgrader_students))
    report["models"] = run_json("bench_models.py")

    rows = []
    if "book" in report:
        b = report["book"]
        rows.append(("book: clean build, every chapter executed", f"{b['total_s']:.0f} s",
                     "budget 300 s" + ("" if b["ok"] else "  (BUILD FAILED)")))
        for ch, s in b["chapters"].items():
            rows.append((f"  execution of {ch}", f"{s:.1f} s", "budget 60 s"))
    g = report["grading"]
    if g:
        rows += [("grading: seconds per notebook, 1 worker", f"{g['ours_1_worker_s_per_nb']:.3f} s", ""),
                 ("grading: speed-up with 2 workers", f"{g['speedup_2_workers']:.2f}x", "target >= 1.8x"),
                 ("grading: overhead per notebook", f"{g['overhead_s_per_nb']:.3f} s", "target < 0.1 s")]
        if "throughput_vs_nbgrader_2_workers" in g:
            rows.append(("grading: throughput vs nbgrader autograde", f"{g['throughput_vs_nbgrader_2_workers']:.1f}x",
                         f"2 workers; {g['throughput_vs_nbgrader_1_worker']:.1f}x with 1; target >= 5x"))
    for k, v in (report.get("models") or {}).items():
        if isinstance(v, (int, float)) and ("ratio" in k or k.endswith("_x")):
            rows.append((f"models: {k}", f"{v:.2f}x", ""))
    print()
    print(f"Benchmarks on {report['machine']}")
    width = max(len(r[0]) for r in rows) if rows else 20
    for name, val, note in rows:
        print(f"  {name:{width}s}  {val:>9s}  {note}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
