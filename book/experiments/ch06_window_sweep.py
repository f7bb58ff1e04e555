"""Chapter 6 experiment: how much does reading the future help, as the label looks further ahead?

Task (the chapter's "windowed majority"): x is a sequence of random bits; the label at position t is
the majority of the five bits x[t-4+f], ..., x[t+f] (zeros outside the sequence), so it depends on f
future inputs (f = 0: only the past; f = 2: a centred window; f = 4: only the present and future).
For each f we train, with several seeds, a unidirectional GRU, a two-layer unidirectional GRU and a
bidirectional GRU (torch.nn, same hidden size), and record the test accuracy next to the best
accuracy that any model reading only the past can reach (computed exactly).

Run from the repository root (about 15 minutes on 2 busy CPU cores; it took 891 s for the committed result):

    RNNBOOK_FULL=1 python book/experiments/ch06_window_sweep.py

It writes book/data/ch06_window_sweep.json (a few KB), which the chapter plots.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "data" / "ch06_window_sweep.json"
WIDTH, T, HIDDEN, BATCH, LR = 5, 24, 32, 64, 1e-2


def majority_batch(n, T, future, generator):
    """Bits x (n, T, 1) and labels y (n, T): majority of x[t-WIDTH+1+future .. t+future]."""
    bits = torch.randint(0, 2, (n, T), generator=generator).float()
    past = WIDTH - 1 - future
    padded = nn.functional.pad(bits, (past, future))  # zeros outside the sequence
    y = (padded.unfold(1, WIDTH, 1).sum(-1) > WIDTH // 2).long()  # (n, T)
    return bits.unsqueeze(-1), y


def causal_bound(T, future):
    """Best accuracy of a model that sees x[0..t] at position t (Bayes-optimal, exact)."""
    total = 0.0
    for t in range(T):
        lo, hi = t - (WIDTH - 1 - future), t + future
        known = sum(1 for s in range(lo, min(hi, t) + 1) if 0 <= s < T)
        unknown = sum(1 for s in range(t + 1, hi + 1) if s < T)
        for k in range(known + 1):  # k ones among the known bits
            pk = math.comb(known, k) / 2 ** known
            p1 = sum(math.comb(unknown, u) for u in range(unknown + 1) if k + u > WIDTH // 2) / 2 ** unknown
            total += pk * max(p1, 1 - p1)
    return total / T


class Tagger(nn.Module):
    def __init__(self, layers=1, bidirectional=False, hidden=HIDDEN):
        super().__init__()
        self.rnn = nn.GRU(1, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0])  # (N, T, 2)


def train(model, future, steps, seed, eval_every=0, test=None):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(1000 + seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    curve = []
    for step in range(1, steps + 1):
        x, y = majority_batch(BATCH, T, future, g)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, 2), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if eval_every and step % eval_every == 0:
            curve.append((step, accuracy(model, *test)))
    return curve


@torch.no_grad()
def accuracy(model, x, y):
    return (model(x).argmax(-1) == y).float().mean().item()


MODELS = {"unidirectional": dict(layers=1, bidirectional=False),
          "unidirectional, 2 layers": dict(layers=2, bidirectional=False),
          "bidirectional": dict(layers=1, bidirectional=True)}


def main(steps=600, seeds=(0, 1, 2), futures=(0, 1, 2, 3, 4)):
    torch.set_num_threads(1)
    t0 = time.time()
    results = {"task": f"majority of {WIDTH} bits x[t-{WIDTH - 1}+f .. t+f], T={T}",
               "hidden": HIDDEN, "steps": steps, "batch": BATCH, "seeds": list(seeds),
               "futures": list(futures), "causal_bound": [round(causal_bound(T, f), 4) for f in futures],
               "accuracy": {}}
    for name, kw in MODELS.items():
        results["accuracy"][name] = []
        for f in futures:
            g = torch.Generator().manual_seed(12345)
            test = majority_batch(2000, T, f, g)
            accs = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = Tagger(**kw)
                train(model, f, steps, seed)
                accs.append(round(accuracy(model, *test), 4))
            results["accuracy"][name].append(accs)
            print(f"{name:26s} f={f}: {accs}  ({time.time() - t0:.0f} s)", flush=True)
    results["seconds"] = round(time.time() - t0)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    if os.environ.get("RNNBOOK_FULL") != "1":
        sys.exit("this is the long run: set RNNBOOK_FULL=1 (see the docstring)")
    main()
