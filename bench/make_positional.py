#!/usr/bin/env python3
"""Write PyTorch's positional-encoding checkpoints for lesson 2 (data/reference/pytorch_pe_*.pth).

Lesson 2 compares candle's sinusoidal table (`sinusoidal_table` in src/lesson/positional.rs)
with PyTorch's: the lesson loads these files and shows the largest difference, and
tests/positional.rs asserts it. So the tables must come from PyTorch and nothing else.

Re-run (from the repository root) with any Python that has torch:

    .venv/bin/python -m pip install torch numpy     # once
    .venv/bin/python bench/make_positional.py

Last generated with torch 2.15.0 (the PyPI manylinux wheel, run on the CPU), Python 3.11.7.
torch.save writes a random serialization id into each file, so a re-run changes the files'
bytes but not the tensors in them.

What it does:
  * defines the article's model: a token embedding (a parameter) plus the sinusoidal table
    registered as the buffer `pe`, the table computed in float32 the usual PyTorch way
    (`div_term = exp(arange(0, d, 2) * (-log(10000) / d))`, sines in the even columns,
    cosines in the odd ones);
  * saves `torch.save(model.state_dict(), path)` for two sizes: the article's table
    (d_model = 8, max_seq_len = 6) and the lesson's (d_model = 16, 50 positions), each with a
    vocabulary of 100 tokens drawn after `torch.manual_seed(0)`; the keys are `pe` then
    `embedding.weight`, the order of the crate's `PositionalEncodingWithBuffer`;
  * checks on the way the PyTorch facts the lesson states: row 5 of the article's table, the
    keys, what `named_buffers` and `state_dict` show of a `None` buffer, and which tensors a
    backward pass gives a gradient (a parameter; neither a buffer nor a plain attribute).
"""

import math
import os
import sys

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "data", "reference")
SIZES = [(8, 6), (16, 50)]  # (d_model, max_seq_len)
VOCAB = 100


def sinusoidal_table(max_seq_len, d_model):
    pe = torch.zeros(max_seq_len, d_model)
    position = torch.arange(0, max_seq_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


class PositionalEncodingModel(nn.Module):
    """Token embedding plus the table as a buffer: forward(ids) = embedding(ids) + pe[:seq_len]."""

    def __init__(self, vocab_size, d_model, max_seq_len):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.register_buffer("pe", sinusoidal_table(max_seq_len, d_model))

    def forward(self, ids):
        return self.embedding(ids) + self.pe[: ids.shape[1]]


class PlainAttribute(nn.Module):
    """The same with the table as a plain tensor attribute."""

    def __init__(self, vocab_size, d_model, max_seq_len):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pe = sinusoidal_table(max_seq_len, d_model)

    forward = PositionalEncodingModel.forward


def check_facts():
    row5 = sinusoidal_table(6, 8)[5, :4].tolist()
    want = [-0.95892429, 0.28366220, 0.47942552, 0.87758255]
    assert all(abs(a - b) < 5e-9 for a, b in zip(row5, want)), row5

    lazy = nn.Module()
    lazy.register_buffer("pe", None)
    assert list(lazy.state_dict()) == [] and list(lazy.named_buffers()) == []
    lazy.pe = torch.zeros(2)
    assert list(lazy.state_dict()) == ["pe"] and [n for n, _ in lazy.named_buffers()] == ["pe"]

    ids = torch.tensor([[5, 17, 42]])
    for model in (PositionalEncodingModel(VOCAB, 8, 6), PlainAttribute(VOCAB, 8, 6)):
        model(ids).sum().backward()
        assert model.embedding.weight.grad is not None
        assert model.pe.grad is None and not model.pe.requires_grad
    print("facts checked: row 5, None buffer, gradients", file=sys.stderr)


def main():
    check_facts()
    for d_model, max_seq_len in SIZES:
        torch.manual_seed(0)
        model = PositionalEncodingModel(VOCAB, d_model, max_seq_len)
        sd = model.state_dict()
        assert list(sd) == ["pe", "embedding.weight"], list(sd)
        path = os.path.join(REF, f"pytorch_pe_d{d_model}_len{max_seq_len}.pth")
        torch.save(sd, path)
        print(f"wrote {os.path.relpath(path, ROOT)} with torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
