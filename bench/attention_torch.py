#!/usr/bin/env python3
"""PyTorch side of the attention benchmarks (issue 6, items 1 and 2).

Times the forward pass of the lesson's two PyTorch modules (the causal mask as a plain
attribute vs a registered buffer), exactly as the original notebook writes them, and the
three ways of getting the mask into the forward pass that lesson 2 compares (a buffer already
on the device, rebuilt every call, copied from the CPU every call). It prints a table and,
with --json, writes the figures that `examples/bench_attention.rs` reads to print
candle/PyTorch ratios.

Usually run through scripts/bench-attention.sh, which installs torch into the project's
.venv only when the benchmark is asked for and gives both sides the same thread count.
By hand:

    .venv/bin/python bench/attention_torch.py --threads 2 --runs 20 --json bench/results/torch.json

Method: for every case, `--warmup` untimed calls, then `--runs` calls timed one by one with
time.perf_counter (on CUDA with torch.cuda.synchronize() before reading the clock); the
median is the figure reported. Forward passes run under torch.no_grad(), as in the lesson.
"""

import argparse
import json
import platform
import statistics
import sys
import time

import torch
from lesson_modules import CausalAttentionWithBuffer, CausalAttentionWithoutBuffers

# (batch, tokens, d_in, d_out): the lesson's example, then two GPT-2-small-sized ones.
SIZES = [(2, 6, 3, 2), (8, 256, 768, 768), (8, 1024, 768, 768)]


class MaskRebuiltEveryCall(CausalAttentionWithBuffer):
    """Lesson 2's strawman: build the causal mask inside forward, on the input's device."""

    def forward(self, x):
        n = x.shape[1]
        self.mask = torch.triu(torch.ones(n, n, device=x.device), diagonal=1)
        return CausalAttentionWithoutBuffers.forward(self, x)


class MaskCopiedEveryCall(CausalAttentionWithoutBuffers):
    """The plain-attribute mask kept on the CPU and copied to the input's device every call."""

    def forward(self, x):
        cpu_mask = self.mask
        self.mask = cpu_mask.to(x.device)
        try:
            return CausalAttentionWithoutBuffers.forward(self, x)
        finally:
            self.mask = cpu_mask


def time_forward(module, x, warmup, runs, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(warmup):
            module(x)
        sync()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            module(x)
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "mean_ms": statistics.fmean(times),
        "runs": runs,
        "warmup": warmup,
    }


def runs_for(tokens, runs):
    # Keep the whole benchmark within a few minutes on 2 cores: fewer runs for big cases.
    return max(5, runs // 4) if tokens >= 1024 else runs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--sizes", default="all", help="comma list of indexes into the size table, or 'all'")
    p.add_argument("--no-strategies", action="store_true", help="skip the mask-strategy benchmark")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda asked for, but torch.cuda.is_available() is False")
    sizes = SIZES if args.sizes == "all" else [SIZES[int(i)] for i in args.sizes.split(",")]
    torch.manual_seed(123)

    forward = []
    for b, t, d_in, d_out in sizes:
        x = torch.rand(b, t, d_in, device=device)
        for name, cls in [("without_buffer", CausalAttentionWithoutBuffers), ("with_buffer", CausalAttentionWithBuffer)]:
            m = cls(d_in, d_out, t, 0.0).eval().to(device)
            if cls is CausalAttentionWithoutBuffers:
                # The unbuffered module fails on a GPU unless its mask is moved by hand (lesson 1).
                m.mask = m.mask.to(device)
            r = time_forward(m, x, args.warmup, runs_for(t, args.runs), device)
            r.update(module=name, batch=b, tokens=t, d_in=d_in, d_out=d_out)
            forward.append(r)
            print(f"torch {device.type:4} {name:15} ({b},{t},{d_in})->{d_out:<4} median {r['median_ms']:10.4f} ms  min {r['min_ms']:10.4f} ms", flush=True)

    strategies = []
    if not args.no_strategies:
        for b, t, d_in, d_out in sizes:
            x = torch.rand(b, t, d_in, device=device)
            # d_out = d_in here, as understanding_buffers::cost::forward_time_ms builds them.
            for name, cls in [("buffer", CausalAttentionWithBuffer), ("rebuilt", MaskRebuiltEveryCall), ("copied", MaskCopiedEveryCall)]:
                m = cls(d_in, d_in, t, 0.0).eval().to(device)
                r = time_forward(m, x, args.warmup, runs_for(t, args.runs), device)
                r.update(strategy=name, batch=b, tokens=t, d_in=d_in, d_out=d_in)
                strategies.append(r)
                print(f"torch {device.type:4} mask {name:10} ({b},{t},{d_in})->{d_in:<4} median {r['median_ms']:10.4f} ms", flush=True)

    memory = []
    for ctx in [256, 1024, 4096, 16384]:
        for dtype_name, dtype in [("f32", torch.float32), ("u8", torch.uint8), ("bool", torch.bool)]:
            mask = torch.triu(torch.ones(ctx, ctx, dtype=dtype), diagonal=1)
            memory.append({"context_length": ctx, "dtype": dtype_name, "bytes": mask.element_size() * mask.nelement()})
        memory.append({"context_length": ctx, "dtype": "none", "bytes": 0})

    result = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "forward": forward,
        "mask_strategies": strategies,
        "mask_memory": memory,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
