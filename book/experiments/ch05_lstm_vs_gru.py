"""Chapter 5's experiment: LSTM against GRU (torch.nn) on the adding problem at T = 100.

    RNNBOOK_FULL=1 python book/experiments/ch05_lstm_vs_gru.py   # the committed run (15 minutes, 1 core)
    RNNBOOK_FULL=1 python book/experiments/ch05_lstm_vs_gru.py --timing-only   # redo the timing only
    python book/experiments/ch05_lstm_vs_gru.py                   # a smoke run, writes nothing

Same task, hidden size, optimiser, seeds and number of steps as chapter 4's experiment (whose `train`
it reuses), for both models and two seeds. Writes book/data/ch05_lstm_vs_gru.json: validation curves,
recurrent parameter counts, the first step at which the validation MSE falls below 0.01, and a
separate timing benchmark: milliseconds per training step (forward, backward and update, batch 64,
T = 100, one CPU thread) and per forward pass, measured in alternation (LSTM, GRU, LSTM, ...) so
that the load of a shared machine affects both models alike; the median over rounds is kept.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ch04_adding import CONFIG, FULL, ROOT, Regressor, train  # noqa: E402
from rnnlib.tasks import adding_batch  # noqa: E402

SEEDS = [0, 1] if FULL else [0]


def first_below(steps, mses, level=0.01):
    return next((s for s, m in zip(steps, mses) if m < level), None)


def benchmark(rounds=15 if FULL else 2, steps=10):
    """Median milliseconds per training step and per forward pass, LSTM and GRU in alternation."""
    torch.manual_seed(0)
    models = {k: Regressor(k, CONFIG["hidden"]) for k in ("lstm", "gru")}
    opts = {k: torch.optim.Adam(m.parameters(), lr=CONFIG["lr"]) for k, m in models.items()}
    x, y = adding_batch(CONFIG["batch"], CONFIG["T"], torch.Generator().manual_seed(0))
    train_ms = {k: [] for k in models}
    fwd_ms = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = ((m(x) - y) ** 2).mean()
                opts[k].zero_grad()
                loss.backward()
                opts[k].step()
            train_ms[k].append(1000 * (time.perf_counter() - t0) / steps)
            t0 = time.perf_counter()
            with torch.no_grad():
                for _ in range(steps):
                    m(x)
            fwd_ms[k].append(1000 * (time.perf_counter() - t0) / steps)
    return {k: {"train_step_ms": round(statistics.median(train_ms[k]), 2),
                "forward_ms": round(statistics.median(fwd_ms[k]), 2),
                "recurrent_params": sum(p.numel() for p in models[k].rnn.parameters())} for k in models}


def main():
    torch.set_num_threads(1)
    path = ROOT / "book" / "data" / "ch05_lstm_vs_gru.json"
    if "--timing-only" in sys.argv:
        results = json.loads(path.read_text())
        results["timing"] = benchmark()
        path.write_text(json.dumps(results) + "\n")
        print(results["timing"])
        return
    runs = {}
    for kind in ("lstm", "gru"):
        runs[kind] = []
        for seed in SEEDS:
            r = train(kind, dict(CONFIG, seed=seed))
            r["seed"] = seed
            r["first_step_below_0.01"] = first_below(r["steps"], r["val_mse"])
            runs[kind].append(r)
    results = {"config": CONFIG, "seeds": SEEDS, "baseline_mse": 1 / 6, "torch": torch.__version__, "runs": runs,
               "timing": benchmark()}
    if FULL:
        path.write_text(json.dumps(results) + "\n")
        print("wrote", path)
    else:
        print("smoke run done; RNNBOOK_FULL=1 for the committed run")


if __name__ == "__main__":
    main()
