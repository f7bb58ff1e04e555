"""Chapter 3 experiment: a vanilla RNN on the adding problem as the sequence length T grows.

    RNNBOOK_FULL=1 python book/experiments/ch03_adding.py      (about 5 minutes on a free CPU core)

Writes book/data/ch03_adding.json, which the chapter plots. Without RNNBOOK_FULL=1 it runs a smoke
version (a few steps) and writes nothing. The task is rnnlib.tasks.adding_batch: the variant of Le,
Jaitly and Hinton (2015), one marker in each half of the sequence; predicting 1.0 gives MSE 1/6.

Three recurrent cells of 32 units, each with a linear read-out of the last state, trained with Adam,
gradient clipping at norm 1 and the same budget (3000 steps of 64 sequences) at every length:
- "tanh": torch.nn.RNN with tanh and PyTorch's default initialisation (lr 3e-3);
- "tanh, orthogonal": the same with an orthogonal W_hh (lr 3e-3);
- "ReLU, identity (IRNN)": ReLU units, W_hh = I, zero biases, small input weights (Le et al. 2015; lr 1e-3).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from rnnlib.tasks import adding_batch

FULL = os.environ.get("RNNBOOK_FULL") == "1"
OUT = Path(__file__).resolve().parent.parent / "data" / "ch03_adding.json"
LENGTHS = [10, 20, 40, 80, 160]
CELLS = ["tanh", "tanh, orthogonal", "ReLU, identity (IRNN)"]
HIDDEN, BATCH = 32, 64
STEPS = 3000 if FULL else 20
EVAL_EVERY = 150 if FULL else 10
LR = {"tanh": 3e-3, "tanh, orthogonal": 3e-3, "ReLU, identity (IRNN)": 1e-3}


class Model(nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        self.rnn = nn.RNN(2, HIDDEN, batch_first=True, nonlinearity="relu" if "ReLU" in cell else "tanh")
        self.head = nn.Linear(HIDDEN, 1)
        with torch.no_grad():
            if cell == "tanh, orthogonal":
                nn.init.orthogonal_(self.rnn.weight_hh_l0)
            elif "IRNN" in cell:
                self.rnn.weight_hh_l0.copy_(torch.eye(HIDDEN))
                self.rnn.bias_hh_l0.zero_()
                self.rnn.bias_ih_l0.zero_()
                nn.init.normal_(self.rnn.weight_ih_l0, std=0.001)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def run(cell: str, T: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_test, y_test = adding_batch(500, T, torch.Generator().manual_seed(12345))
    model = Model(cell)
    opt = torch.optim.Adam(model.parameters(), lr=LR[cell])
    steps, mse = [], []
    for step in range(STEPS + 1):
        if step % EVAL_EVERY == 0:
            with torch.no_grad():
                steps.append(step)
                mse.append(round(float(((model(x_test) - y_test) ** 2).mean()), 5))
        if step == STEPS:
            break
        x, y = adding_batch(BATCH, T, gen)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return {"cell": cell, "T": T, "steps": steps, "test_mse": mse}


def main() -> None:
    torch.set_num_threads(1)  # small sequential models: more threads only wait on each other
    t0 = time.time()
    runs = []
    for cell in CELLS:
        for T in LENGTHS:
            r = run(cell, T)
            runs.append(r)
            print(f"{cell:24s} T={T:4d} final test MSE {r['test_mse'][-1]:.4f}  ({time.time() - t0:.0f} s)", flush=True)
    if FULL:
        meta = {"task": "adding problem, rnnlib.tasks.adding_batch (Le et al. 2015 variant)",
                "hidden": HIDDEN, "batch": BATCH, "steps": STEPS, "optimizer": "Adam", "lr": LR,
                "clip_grad_norm": 1.0, "test_set": 500, "baseline_mse": 1 / 6,
                "seconds": round(time.time() - t0)}
        OUT.write_text(json.dumps({"meta": meta, "runs": runs}, separators=(",", ":")))
        print("wrote", OUT)


if __name__ == "__main__":
    main()
