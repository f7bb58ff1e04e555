"""Chapter 8, full run: encoder-decoder GRUs with and without attention on sequence reversal.

    RNNBOOK_FULL=1 python book/experiments/ch08_seq2seq.py      (a few minutes on one CPU core)

Trains both models on reversal of random digit strings of several lengths for longer than the chapter
can afford, and writes book/data/ch08_seq2seq.json (accuracies per length and per output position),
which the chapter reads. Without RNNBOOK_FULL=1 it does a tiny smoke run and writes nothing.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

V, BOS = 10, 10  # digits 0..9; token 10 starts the decoder
OUT = Path(__file__).resolve().parent.parent / "data" / "ch08_seq2seq.json"


def reversal_batch(n, T, gen):
    src = torch.randint(0, V, (n, T), generator=gen)
    return src, src.flip(1)


class EncoderDecoder(nn.Module):
    """GRU encoder; GRUCell decoder reading the previous token; optional dot-product attention."""

    def __init__(self, attention: bool, hidden=64, emb=16):
        super().__init__()
        self.attention = attention
        self.embed = nn.Embedding(V + 1, emb)
        self.encoder = nn.GRU(emb, hidden, batch_first=True)
        self.decoder = nn.GRUCell(emb, hidden)
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.readout = nn.Linear(2 * hidden if attention else hidden, V)

    def step(self, token, h, memory):
        h = self.decoder(self.embed(token), h)
        if not self.attention:
            return self.readout(h), h, None
        weights = torch.softmax(torch.einsum("nth,nh->nt", memory, self.query(h)), dim=1)  # (N, T)
        context = torch.einsum("nt,nth->nh", weights, memory)  # (N, H)
        return self.readout(torch.cat([h, context], dim=1)), h, weights

    def forward(self, src, tgt):
        memory, h_T = self.encoder(self.embed(src))
        h = h_T[0]
        prev = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)  # teacher forcing
        scores = []
        for t in range(tgt.shape[1]):
            s, h, _ = self.step(prev[:, t], h, memory)
            scores.append(s)
        return torch.stack(scores, dim=1)  # (N, T, V)

    @torch.no_grad()
    def greedy(self, src):
        memory, h_T = self.encoder(self.embed(src))
        h, token = h_T[0], torch.full_like(src[:, 0], BOS)
        out, maps = [], []
        for _ in range(src.shape[1]):
            s, h, w = self.step(token, h, memory)
            token = s.argmax(dim=1)
            out.append(token)
            maps.append(w)
        return torch.stack(out, 1), (torch.stack(maps, 1) if self.attention else None)


def train(attention, T, steps, seed=0, batch=64):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = EncoderDecoder(attention)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        src, tgt = reversal_batch(batch, T, gen)
        loss = F.cross_entropy(model(src, tgt).reshape(-1, V), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


def evaluate(model, T, n=2000):
    src, tgt = reversal_batch(n, T, torch.Generator().manual_seed(1234))
    pred, _ = model.greedy(src)
    hit = (pred == tgt).float()
    return {"token_accuracy": round(hit.mean().item(), 4), "sequence_accuracy": round(hit.prod(1).mean().item(), 4),
            "by_position": [round(v, 4) for v in hit.mean(0).tolist()]}


def main():
    torch.set_num_threads(1)
    full = os.environ.get("RNNBOOK_FULL") == "1"
    lengths, steps = ((8, 16, 24), 1500) if full else ((6,), 20)
    results = {"task": "reverse a string of random digits", "steps": steps, "batch": 64, "hidden": 64,
               "lengths": list(lengths), "runs": []}
    t0 = time.perf_counter()
    for T in lengths:
        for attention in (False, True):
            model = train(attention, T, steps)
            r = {"T": T, "attention": attention, **evaluate(model, T)}
            results["runs"].append(r)
            print(f"T={T:2d} attention={attention!s:5s} token {r['token_accuracy']:.3f} "
                  f"sequence {r['sequence_accuracy']:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["torch"] = torch.__version__
    if full:
        OUT.write_text(json.dumps(results, indent=1) + "\n")
        print("wrote", OUT)


if __name__ == "__main__":
    main()
