"""Chapter 5's experiment: LSTM against GRU (torch.nn) on the adding problem at T = 100.

    RNNBOOK_FULL=1 python book/experiments/ch05_lstm_vs_gru.py   # the committed run (a few minutes, 1 core)
    python book/experiments/ch05_lstm_vs_gru.py                   # a smoke run, writes nothing

Same task, hidden size, optimiser, seeds and number of steps as chapter 4's experiment (whose `train`
it reuses), for both models and two seeds. Writes book/data/ch05_lstm_vs_gru.json: validation curves,
recurrent parameter counts, milliseconds per training step (forward, backward and update, batch 64,
one CPU thread), and the first step at which the validation MSE falls below 0.01.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ch04_adding import CONFIG, FULL, ROOT, train  # noqa: E402

SEEDS = [0, 1] if FULL else [0]


def first_below(steps, mses, level=0.01):
    return next((s for s, m in zip(steps, mses) if m < level), None)


def main():
    torch.set_num_threads(1)
    runs = {}
    for kind in ("lstm", "gru"):
        runs[kind] = []
        for seed in SEEDS:
            r = train(kind, dict(CONFIG, seed=seed))
            r["seed"] = seed
            r["first_step_below_0.01"] = first_below(r["steps"], r["val_mse"])
            runs[kind].append(r)
    results = {"config": CONFIG, "seeds": SEEDS, "baseline_mse": 1 / 6, "torch": torch.__version__, "runs": runs}
    if FULL:
        path = ROOT / "book" / "data" / "ch05_lstm_vs_gru.json"
        path.write_text(json.dumps(results) + "\n")
        print("wrote", path)
    else:
        print("smoke run done; RNNBOOK_FULL=1 for the committed run")


if __name__ == "__main__":
    main()
