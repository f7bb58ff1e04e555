"""Instructor-only: a from-scratch PyTorch LSTM (a loop over time, one fused gate GEMM per step).

NOT course material (chapter 4 grades ``LSTM``); used by benchmarks/bench_models.py only. Parameters
and their names are torch.nn.LSTM's (``weight_ih_l0 (4H, D)``, ..., gates i, f, g, o), batch first.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


class ScratchLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        k = 1.0 / math.sqrt(hidden_size)
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size).uniform_(-k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size).uniform_(-k, k))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))

    def forward(self, x, hx=None):
        N, T, _ = x.shape
        H = self.hidden_size
        if hx is None:
            h = x.new_zeros(N, H)
            c = x.new_zeros(N, H)
        else:
            h, c = hx[0][0], hx[1][0]
        xw = torch.addmm(self.bias_ih_l0 + self.bias_hh_l0, x.reshape(N * T, -1),
                         self.weight_ih_l0.t()).view(N, T, 4 * H)  # every step's input projection
        w_hh_t = self.weight_hh_l0.t()
        outs = []
        for t in range(T):
            gates = torch.addmm(xw[:, t], h, w_hh_t)  # (N, 4H): one fused GEMM per step
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1), (h[None], c[None])
