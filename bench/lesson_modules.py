"""The lesson's two PyTorch modules, as the original "Understanding PyTorch Buffers" notebook
defines them (the mask a plain attribute vs `register_buffer("mask", ...)`). Shared by
bench/make_expected.py (expected values for the tests) and bench/attention_torch.py (benchmark)."""

import torch
import torch.nn as nn

class CausalAttentionWithoutBuffers(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.mask = torch.triu(torch.ones(context_length, context_length), diagonal=1)

    def attention(self, x):
        """The forward pass, returning (context_vec, attn_weights)."""
        b, num_tokens, d_in = x.shape
        keys = self.W_key(x)
        queries = self.W_query(x)
        values = self.W_value(x)
        attn_scores = queries @ keys.transpose(1, 2)
        attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec = attn_weights @ values
        return context_vec, attn_weights

    def forward(self, x):
        return self.attention(x)[0]


class CausalAttentionWithBuffer(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        # Old: self.mask = torch.triu(torch.ones(context_length, context_length), diagonal=1)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    attention = CausalAttentionWithoutBuffers.attention

    def forward(self, x):
        return self.attention(x)[0]
