"""Chapter 4: what the trained LSTM's forget gates do on the adding problem.

    RNNBOOK_FULL=1 python book/experiments/ch04_forget_gates.py   # the committed run (a few minutes, 1 core)
    python book/experiments/ch04_forget_gates.py                   # a smoke run (seconds), writes nothing

Trains the LSTM of chapter 4's experiment again (ch04_adding.train, the same configuration and seeds, so
the same model as book/data/ch04_adding.json's LSTM), then runs it over validation sequences and records
its forget gates f_t (PyTorch's gate order i, f, g, o): the mean of every unit over all sequences and
steps, the mean of every unit on the two marked steps and on the others, and the gates of every unit
along one sequence with its marker positions. Writes book/data/ch04_forget_gates.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ch04_adding import CONFIG, FULL, ROOT, adding_batch, train  # noqa: E402


def gates(lstm, x):
    """Input and forget gates (N, T, H) of a one-layer nn.LSTM over x (N, T, D), recomputed step by step."""
    W_ih, W_hh, b = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0
    N, T, _ = x.shape
    h = c = x.new_zeros(N, lstm.hidden_size)
    ins, fs = [], []
    for t in range(T):
        i, f, g, o = (x[:, t] @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=1)  # (N, H) each
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        ins.append(i)
        fs.append(f)
    return torch.stack(ins, 1), torch.stack(fs, 1)


def main():
    torch.set_num_threads(1)
    keep = {}
    run = train("lstm", CONFIG, log=lambda s: None if not s.endswith("0.0000") else print(s), keep=keep)
    model = keep["model"]
    xv, yv = adding_batch(1000, CONFIG["T"], torch.Generator().manual_seed(12345))  # the validation set
    with torch.no_grad():
        i, f = gates(model.rnn, xv)  # (N, T, H)
        mse = float(((model(xv) - yv) ** 2).mean())
    marked = xv[:, :, 1] > 0  # (N, T)
    on = marked[..., None].float()
    mean_f_marked = (f * on).sum((0, 1)) / on.sum((0, 1))  # (H,)
    mean_f_other = (f * (1 - on)).sum((0, 1)) / (1 - on).sum((0, 1))
    mean_i_marked = (i * on).sum((0, 1)) / on.sum((0, 1))
    mean_i_other = (i * (1 - on)).sum((0, 1)) / (1 - on).sum((0, 1))
    r = lambda v: [round(float(a), 4) for a in v]
    out = {"config": CONFIG, "torch": torch.__version__, "val_mse": round(mse, 6), "final_mse_of_run": run["final_mse"],
           "mean_f": r(f.mean((0, 1))), "mean_f_marked": r(mean_f_marked), "mean_f_other": r(mean_f_other),
           "mean_i_marked": r(mean_i_marked), "mean_i_other": r(mean_i_other),
           "example": {"markers": marked[0].nonzero().flatten().tolist(), "f": [r(row) for row in f[0]]}}
    print(f"val MSE {mse:.5f}; units with mean f > 0.95: {int((f.mean((0, 1)) > 0.95).sum())} of {f.shape[2]}")
    if FULL:
        path = ROOT / "book" / "data" / "ch04_forget_gates.json"
        path.write_text(json.dumps(out) + "\n")
        print("wrote", path)
    else:
        print("smoke run done; RNNBOOK_FULL=1 for the committed run")


if __name__ == "__main__":
    main()
