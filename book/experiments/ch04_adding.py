"""Chapter 4's experiment: the adding problem at T = 100, a tanh RNN against an LSTM (torch.nn).

    RNNBOOK_FULL=1 python book/experiments/ch04_adding.py   # the committed run (a few minutes, 1 CPU core)
    python book/experiments/ch04_adding.py                   # a smoke run (a few seconds), writes nothing

Writes book/data/ch04_adding.json: the configuration, validation MSE every `eval_every` steps for
each model, and the wall-clock seconds per training step. Chapter 5's experiment imports `train`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from rnnlib.tasks import adding_batch  # noqa: E402

FULL = os.environ.get("RNNBOOK_FULL") == "1"
CONFIG = dict(T=100, hidden=64, batch=64, steps=4000 if FULL else 30, lr=3e-3, clip=1.0,
              eval_every=50 if FULL else 10, n_val=1000, seed=0)


class Regressor(nn.Module):
    """A recurrent layer (torch.nn.RNN, LSTM or GRU, batch first) read out from its last hidden state."""

    def __init__(self, kind: str, hidden: int):
        super().__init__()
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cls(2, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)
        if kind == "lstm":  # forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015)
            with torch.no_grad():
                for name, b in self.rnn.named_parameters():
                    if name.startswith("bias_ih"):
                        b[hidden:2 * hidden].fill_(1.0)
                    elif name.startswith("bias_hh"):
                        b[hidden:2 * hidden].zero_()

    def forward(self, x):
        h, _ = self.rnn(x)  # (N, T, H)
        return self.out(h[:, -1]).squeeze(-1)  # (N,)


def train(kind: str, cfg: dict = CONFIG, log=print, keep: dict | None = None) -> dict:
    """Train one model; the record of its run. With `keep`, keep["model"] is the trained model."""
    torch.manual_seed(cfg["seed"])
    g_val = torch.Generator().manual_seed(12345)
    xv, yv = adding_batch(cfg["n_val"], cfg["T"], g_val)
    g = torch.Generator().manual_seed(cfg["seed"] + 1)
    model = Regressor(kind, cfg["hidden"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps, mses, train_seconds = [], [], 0.0
    for step in range(cfg["steps"] + 1):
        if step % cfg["eval_every"] == 0:
            with torch.no_grad():
                mse = float(((model(xv) - yv) ** 2).mean())
            steps.append(step)
            mses.append(round(mse, 5))
            log(f"{kind} step {step:5d} val MSE {mse:.4f}")
        if step == cfg["steps"]:
            break
        x, y = adding_batch(cfg["batch"], cfg["T"], g)
        t0 = time.perf_counter()
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        train_seconds += time.perf_counter() - t0
    if keep is not None:
        keep["model"] = model
    n_params = sum(p.numel() for p in model.rnn.parameters())
    return {"steps": steps, "val_mse": mses, "final_mse": mses[-1], "best_mse": min(mses),
            "ms_per_step": round(1000 * train_seconds / cfg["steps"], 2), "recurrent_params": n_params}


def main():
    torch.set_num_threads(1)
    results = {"config": CONFIG, "baseline_mse": 1 / 6, "torch": torch.__version__,
               "models": {k: train(k) for k in ("rnn", "lstm")}}
    if FULL:
        path = ROOT / "book" / "data" / "ch04_adding.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        print("wrote", path)
    else:
        print("smoke run done; RNNBOOK_FULL=1 for the committed run")


if __name__ == "__main__":
    main()
