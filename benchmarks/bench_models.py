"""How fast is an LSTM written from scratch? Ratios measured in one run, on this machine.

    python benchmarks/bench_models.py                      # CPU rows; GPU rows when CUDA is present
    python benchmarks/bench_models.py --json book/data/appendix_speed_bench.json   # for the appendix
    python benchmarks/bench_models.py --check-only         # only the correctness checks

Rows (forward + backward of one batch, N=64, T=100, D=H=128 by default, float32 unless stated):
  NumPy, textbook loop (per-gate products)      autograder.testkit.reference.lstm_numpy.py (instructor-only)
  NumPy, fused gates, preallocated (fp32, fp64)  idem
  NumPy, feature-major, chunked backward        benchmarks/lstm_numpy_sequence.py (instructor-only): one
                                                product per step for input, state and bias; gates as
                                                contiguous row blocks; dW and dx one product per chunk
  PyTorch from scratch (loop over time), CPU    autograder.testkit.reference.lstm_torch.py (instructor-only)
  PyTorch, whole sequence, one autograd.Function     LSTMSequence, the code cell of book/appendix_speed.md
                                                (taken from the page, so that the page shows what is timed)
  torch.nn.LSTM on CPU                          the baseline of every CPU ratio
  GPU (only when torch.cuda.is_available()): torch.nn.LSTM (cuDNN), the from-scratch LSTM, and the
  from-scratch LSTM under torch.compile; ratios against cuDNN.

Before timing, every implementation is checked against torch.nn.LSTM with copied weights: outputs,
dx, dh0, dc0 and all four weight gradients (float64, and float32 at the benchmark size).

CPU times are the best of --repeat runs. With one thread (the default, for a fair comparison of
NumPy's BLAS and PyTorch) they are CPU seconds of this process (time.process_time), which other
jobs on a shared machine do not inflate; with --threads > 1, wall-clock seconds. GPU times are
wall-clock, with torch.cuda.synchronize().
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.testkit.reference.lstm_numpy import (lstm_backward, lstm_backward_naive, lstm_forward,  # noqa: E402
                                             lstm_forward_naive)
from autograder.testkit.reference.lstm_torch import ScratchLSTM  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
import lstm_numpy_sequence  # noqa: E402  (instructor-only, beside this script)

PAGE = REPO / "book" / "appendix_speed.md"
SEQUENCE_ROW = "PyTorch, whole sequence, one autograd.Function"
NUMPY_SEQ_ROW = "NumPy, feature-major, chunked backward"


def page_function():
    """LSTMSequence and FastLSTM, executed from the appendix page's code cell that defines them."""
    import re

    text = PAGE.read_text()
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    src = next(c for c in cells if "class LSTMSequence(torch.autograd.Function)" in c)
    namespace = {"torch": torch}
    exec(compile(src, f"{PAGE}:LSTMSequence", "exec"), namespace)  # noqa: S102 (the course's own page)
    return namespace["LSTMSequence"], namespace["FastLSTM"]


# ------------------------------------------------------------------------------- environment
def environment(threads: int) -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
           "machine": platform.machine(), "cpu": _cpu_name(), "cores": os.cpu_count(), "threads": threads,
           "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                       for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        env["blas"] = "threadpoolctl not installed"
    return env


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------------- checks
def _torch_reference(x, h0, c0, params, dh):
    """torch.nn.LSTM with copied weights: h and every gradient, in x's dtype."""
    D, H = x.shape[2], h0.shape[1]
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    lstm = torch.nn.LSTM(D, H, batch_first=True).to(dtype)
    with torch.no_grad():
        for k, v in params.items():
            getattr(lstm, k + "_l0").copy_(torch.from_numpy(v))
    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.from_numpy(h0[None]).requires_grad_()
    c0t = torch.from_numpy(c0[None]).requires_grad_()
    out, _ = lstm(xt, (h0t, c0t))
    out.backward(torch.from_numpy(dh))
    grads = {k: getattr(lstm, k + "_l0").grad.numpy() for k in params}
    return out.detach().numpy(), xt.grad.numpy(), h0t.grad.numpy()[0], c0t.grad.numpy()[0], grads


def _inputs(N, T, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    params = {"weight_ih": rng.uniform(-k, k, (4 * H, D)), "weight_hh": rng.uniform(-k, k, (4 * H, H)),
              "bias_ih": rng.uniform(-k, k, 4 * H), "bias_hh": rng.uniform(-k, k, 4 * H)}
    params = {n: v.astype(dtype) for n, v in params.items()}
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in ((N, T, D), (N, H), (N, H)))
    dh = rng.standard_normal((N, T, H)).astype(dtype)
    return x, h0, c0, params, dh


def _max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(b))))


def check_numpy(fwd, bwd, name, N, T, D, H, dtype, tol):
    x, h0, c0, params, dh = _inputs(N, T, D, H, dtype)
    before = [a.copy() for a in (x, h0, c0, dh)] + [v.copy() for v in params.values()]
    h, cache = fwd(x, h0, c0, params)
    dx, dh0, dc0, grads = bwd(dh, cache)
    after = [x, h0, c0, dh] + list(params.values())
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), f"{name} modified an input"
    ref = _torch_reference(x, h0, c0, params, dh)
    got = {"h": h, "dx": dx, "dh0": dh0, "dc0": dc0, **{f"d{k}": grads[k] for k in params}}
    want = {"h": ref[0], "dx": ref[1], "dh0": ref[2], "dc0": ref[3], **{f"d{k}": ref[4][k] for k in params}}
    worst = 0.0
    for k in want:
        assert got[k].shape == want[k].shape, f"{name}: {k} has shape {got[k].shape}, expected {want[k].shape}"
        assert got[k].dtype == dtype, f"{name}: {k} has dtype {got[k].dtype}, expected {np.dtype(dtype)}"
        err = _max_rel(got[k], want[k])
        assert err < tol, f"{name}: {k} differs from torch.nn.LSTM (max error / max |value| = {err:.2e})"
        worst = max(worst, err)
    return worst


def check_scratch(N, T, D, H):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(D, H, batch_first=True).double()
    mine = ScratchLSTM(D, H).double()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(N, T, D, dtype=torch.float64)
    dh = torch.randn(N, T, H, dtype=torch.float64)
    worst = 0.0
    outs = []
    for m in (ref, mine):
        xi = x.clone().requires_grad_()
        out, _ = m(xi)
        out.backward(dh)
        outs.append([out.detach(), xi.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(outs[1], outs[0]):
        worst = max(worst, _max_rel(a.numpy(), b.numpy()))
    assert worst < 1e-10, f"ScratchLSTM differs from torch.nn.LSTM ({worst:.2e})"
    return worst


def check_sequence_function(N, T, D, H, dtype=torch.float64):
    """The page's FastLSTM against torch.nn.LSTM with the same weights: output, dx and every weight gradient."""
    _, FastLSTM = page_function()
    torch.manual_seed(0)
    ref = torch.nn.LSTM(D, H, batch_first=True).to(dtype)
    mine = FastLSTM(D, H).to(dtype)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(N, T, D, dtype=dtype)
    dh = torch.randn(N, T, H, dtype=dtype)
    outs = []
    for m in (ref, mine):
        xi = x.clone().requires_grad_()
        out, _ = m(xi)
        out.backward(dh)
        outs.append([out.detach(), xi.grad] + [p.grad for p in m.parameters()])
    worst = max(_max_rel(a.numpy(), b.numpy()) for a, b in zip(outs[1], outs[0]))
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert worst < tol, f"LSTMSequence differs from torch.nn.LSTM ({worst:.2e})"
    return worst


def run_checks(N, T, D, H) -> dict:
    res = {
        "numpy fused, float64, small": check_numpy(lstm_forward, lstm_backward, "fused", 3, 5, 4, 6, np.float64, 1e-10),
        "numpy fused, float64, N=1 T=1": check_numpy(lstm_forward, lstm_backward, "fused", 1, 1, 3, 2, np.float64, 1e-10),
        "numpy textbook, float64, small": check_numpy(lstm_forward_naive, lstm_backward_naive, "textbook", 3, 5, 4, 6,
                                                      np.float64, 1e-10),
        "numpy fused, float32, benchmark size": check_numpy(lstm_forward, lstm_backward, "fused", N, T, D, H,
                                                            np.float32, 1e-4),
        **{f"numpy feature-major, float64, N={n} T={t}": check_numpy(
            lstm_numpy_sequence.lstm_forward, lstm_numpy_sequence.lstm_backward, "feature-major", n, t, 4, 6,
            np.float64, 1e-10) for n, t in ((3, 5), (1, 1), (2, 23), (2, 40))},  # T below, at and off a chunk
        "numpy feature-major, float32, benchmark size": check_numpy(
            lstm_numpy_sequence.lstm_forward, lstm_numpy_sequence.lstm_backward, "feature-major", N, T, D, H,
            np.float32, 1e-4),
        "torch from scratch, float64, small": check_scratch(3, 5, 4, 6),
        "torch sequence Function, float64, small": check_sequence_function(3, 5, 4, 6),
        "torch sequence Function, float32, benchmark size": check_sequence_function(N, T, D, H, torch.float32),
    }
    for k, v in res.items():
        print(f"  check {k:46s} OK (max error / max |value| {v:.1e})")
    return res


# ---------------------------------------------------------------------------------- timing
def best(fn, repeat, clock):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return min(ts)


def time_numpy(fwd, bwd, N, T, D, H, dtype, repeat, clock):
    x, h0, c0, params, dh = _inputs(N, T, D, H, dtype)
    cache = {}

    def f():
        cache["c"] = fwd(x, h0, c0, params)[1]

    def b():
        bwd(dh, cache["c"])

    t_f = best(f, repeat, clock)
    t_b = best(b, repeat, clock)
    return t_f, t_b


def time_torch(module, N, T, D, H, device, repeat, clock, sync=lambda: None):
    x = torch.randn(N, T, D, device=device)
    dh = torch.randn(N, T, H, device=device)
    state = {}

    def f():
        out, _ = module(x)
        sync()
        state["out"] = out

    # forward alone (under autograd, as in training), then forward + backward
    t_f = best(f, repeat, clock)
    state.clear()

    def fb():
        out, _ = module(x)
        out.backward(dh)
        sync()

    t_fb = best(fb, repeat, clock)
    for p in module.parameters():
        p.grad = None
    return t_f, max(t_fb - t_f, 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="threads for both NumPy's BLAS and PyTorch")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compile-cpu", action="store_true", help="also time torch.compile on the CPU (slow to compile)")
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--json", type=Path, help="write the results there (e.g. book/data/appendix_speed_bench.json)")
    a = ap.parse_args(argv)
    N, T, D, H = a.N, a.T, a.D, a.H

    torch.set_num_threads(a.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(a.threads, user_api="blas")
    except ImportError:
        print("threadpoolctl is not installed: NumPy's BLAS uses its default number of threads")
    env = environment(a.threads)
    print("environment:", json.dumps(env))
    print("correctness against torch.nn.LSTM with copied weights:")
    checks = run_checks(N, T, D, H)
    if a.check_only:
        return 0

    clock = time.process_time if a.threads == 1 else time.perf_counter
    clock_name = "CPU seconds of this process (best of %d)" % a.repeat if a.threads == 1 else \
        "wall-clock seconds (best of %d)" % a.repeat
    rows = []

    def add(name, device, t_f, t_b, baseline):
        rows.append({"name": name, "device": device, "forward_ms": 1e3 * t_f, "backward_ms": 1e3 * t_b,
                     "total_ms": 1e3 * (t_f + t_b), "baseline": baseline})

    print(f"\ntiming N={N} T={T} D={D} H={H}, float32 unless stated, {a.threads} thread(s), {clock_name}")
    add("NumPy, textbook loop (per-gate products)", "cpu",
        *time_numpy(lstm_forward_naive, lstm_backward_naive, N, T, D, H, np.float32, max(2, a.repeat // 2), clock),
        "torch.nn.LSTM (CPU)")
    add("NumPy, fused gates, preallocated", "cpu",
        *time_numpy(lstm_forward, lstm_backward, N, T, D, H, np.float32, a.repeat, clock), "torch.nn.LSTM (CPU)")
    add(NUMPY_SEQ_ROW, "cpu", *time_numpy(lstm_numpy_sequence.lstm_forward, lstm_numpy_sequence.lstm_backward,
                                          N, T, D, H, np.float32, a.repeat, clock), "torch.nn.LSTM (CPU)")
    add("NumPy, fused gates, preallocated, float64", "cpu",
        *time_numpy(lstm_forward, lstm_backward, N, T, D, H, np.float64, a.repeat, clock), "torch.nn.LSTM (CPU)")
    torch.manual_seed(0)
    add("PyTorch from scratch (loop over time)", "cpu",
        *time_torch(ScratchLSTM(D, H), N, T, D, H, "cpu", a.repeat, clock), "torch.nn.LSTM (CPU)")
    torch.manual_seed(0)
    add(SEQUENCE_ROW, "cpu", *time_torch(page_function()[1](D, H), N, T, D, H, "cpu", a.repeat, clock),
        "torch.nn.LSTM (CPU)")
    if a.compile_cpu:
        add("PyTorch from scratch + torch.compile", "cpu",
            *time_torch(torch.compile(ScratchLSTM(D, H)), N, T, D, H, "cpu", a.repeat, clock), "torch.nn.LSTM (CPU)")
    add("torch.nn.LSTM (CPU)", "cpu", *time_torch(torch.nn.LSTM(D, H, batch_first=True), N, T, D, H, "cpu",
                                                     a.repeat, clock), "torch.nn.LSTM (CPU)")
    gpu_note = None
    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        wall = time.perf_counter
        dev = "cuda"
        add("torch.nn.LSTM (cuDNN)", dev, *time_torch(torch.nn.LSTM(D, H, batch_first=True).to(dev), N, T, D, H,
                                                        dev, a.repeat, wall, sync), "torch.nn.LSTM (cuDNN)")
        add("PyTorch from scratch, GPU", dev, *time_torch(ScratchLSTM(D, H).to(dev), N, T, D, H, dev, a.repeat,
                                                           wall, sync), "torch.nn.LSTM (cuDNN)")
        add("PyTorch from scratch + torch.compile, GPU", dev,
            *time_torch(torch.compile(ScratchLSTM(D, H).to(dev)), N, T, D, H, dev, a.repeat, wall, sync),
            "torch.nn.LSTM (cuDNN)")
    else:
        gpu_note = ("GPU rows skipped: torch.cuda.is_available() is False (no CUDA device), so there is no cuDNN "
                    "and no torch.compile-on-GPU measurement in this run")

    base = {r["name"]: r["total_ms"] for r in rows}
    print(f"\n{'implementation':46s}{'device':>7s}{'fwd ms':>9s}{'bwd ms':>9s}{'total ms':>10s}  ratio")
    for r in rows:
        r["ratio"] = r["total_ms"] / base[r["baseline"]]
        print(f"{r['name']:46s}{r['device']:>7s}{r['forward_ms']:9.1f}{r['backward_ms']:9.1f}{r['total_ms']:10.1f}"
              f"  {r['ratio']:5.2f}x {r['baseline']}")
    if gpu_note:
        print(gpu_note)
    fused = next(r for r in rows if r["name"] == "NumPy, fused gates, preallocated")
    seq = next(r for r in rows if r["name"] == SEQUENCE_ROW)
    npseq = next(r for r in rows if r["name"] == NUMPY_SEQ_ROW)
    # the targets are set at the default size (N=64, T=100, D=H=128, one thread); elsewhere only the ratios
    at_target_size = (N, T, D, H, a.threads) == (64, 100, 128, 128, 1)
    for label, r, limit in (("NumPy fused float32", fused, 3.0), ("NumPy feature-major float32", npseq, 1.0),
                            ("PyTorch whole-sequence Function", seq, 1.5)):
        verdict = (f": {'meets' if r['ratio'] <= limit else 'MISSES'} the target of at most {limit:g}x"
                   if at_target_size else " (the target applies at the default size only)")
        print(f"{label} forward+backward = {r['ratio']:.2f}x torch.nn.LSTM on CPU{verdict}")
    # flat keys for benchmarks/run_all.py, which lists every top-level number whose key holds "ratio"
    slugs = {"NumPy, textbook loop (per-gate products)": "numpy_textbook_vs_torch_cpu_ratio",
             "NumPy, fused gates, preallocated": "numpy_fused_vs_torch_cpu_ratio",
             "NumPy, fused gates, preallocated, float64": "numpy_fused_float64_vs_torch_cpu_ratio",
             NUMPY_SEQ_ROW: "numpy_sequence_vs_torch_cpu_ratio",
             "PyTorch from scratch (loop over time)": "scratch_torch_vs_torch_cpu_ratio",
             "PyTorch from scratch + torch.compile": "scratch_torch_compiled_vs_torch_cpu_ratio",
             SEQUENCE_ROW: "sequence_function_vs_torch_cpu_ratio",
             "PyTorch from scratch, GPU": "scratch_torch_gpu_vs_cudnn_ratio",
             "PyTorch from scratch + torch.compile, GPU": "scratch_torch_compiled_gpu_vs_cudnn_ratio"}
    flat = {slugs[r["name"]]: round(r["ratio"], 3) for r in rows if r["name"] in slugs}
    if a.json:
        doc = {**flat, "shape": {"N": N, "T": T, "D": D, "H": H}, "clock": clock_name, "environment": env,
               "checks": checks, "rows": rows, "gpu_note": gpu_note,
               "target": {"numpy_fused_vs_torch_cpu_at_most": 3.0, "measured": round(fused["ratio"], 3),
                          "numpy_sequence_vs_torch_cpu_at_most": 1.0,
                          "numpy_sequence_measured": round(npseq["ratio"], 3),
                          "sequence_function_vs_torch_cpu_at_most": 1.5,
                          "sequence_function_measured": round(seq["ratio"], 3)},
               "load_average": [round(v, 2) for v in os.getloadavg()],
               "command": "python benchmarks/bench_models.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        a.json.write_text(json.dumps(doc, indent=1) + "\n")
        print("wrote", a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
