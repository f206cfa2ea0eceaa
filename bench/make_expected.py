#!/usr/bin/env python3
"""Write tests/fixtures/pytorch/expected.json: what PyTorch itself shows for lesson 1.

The Rust tests compare the crate's numbers, printed tensors, state dicts and error
messages against this file, so it must come from PyTorch and nothing else.

Re-run (from the repository root) with any Python that has torch, numpy and safetensors:

    python3 -m venv /work/torch-venv            # once; any venv will do
    /work/torch-venv/bin/pip install torch numpy safetensors
    /work/torch-venv/bin/python bench/make_expected.py

Last generated with torch 2.15.0 (the PyPI manylinux wheel, "2.15.0+cu132", run on the
CPU), numpy 2.4.6, safetensors 0.8.0, Python 3.11.7. The script records the versions it
ran with in the file's "generated_by" entry.

What it does:
  * defines the two modules of the "Understanding PyTorch Buffers" notebook exactly as the
    original does (the mask a plain attribute vs `register_buffer("mask", ...)`);
  * loads the reference weights in data/reference/ (exported from PyTorch 2.11) and runs
    both modules on the lesson's (2, 6, 3) batch, recording outputs and attention weights;
  * checks whether `torch.manual_seed(123)` followed by constructing the unbuffered and then
    the buffered module reproduces those reference weights;
  * records `print()` strings (tensors, state dicts, modules) and the exact text of the
    errors the lessons show (strict loading, size mismatch, too many tokens).

Floats are stored as Python floats converted from float32, so each one is the exact value
of the f32 (e.g. -0.45190000534057617); `float(np.float32(v))` gives back the same bits.
"""

import json
import os
import platform
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "data", "reference")
OUT = os.path.join(ROOT, "tests", "fixtures", "pytorch", "expected.json")


from lesson_modules import CausalAttentionWithBuffer, CausalAttentionWithoutBuffers  # noqa: E402


# --- helpers -------------------------------------------------------------------------------
def floats(t):
    """A tensor as nested lists of Python floats (exact f32 values)."""
    return t.detach().cpu().to(torch.float32).tolist()


def error_text(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - we record whatever PyTorch raises
        return {"type": type(e).__name__, "message": str(e)}
    raise AssertionError("expected an error, got none")


def sd_record(sd):
    from IPython.lib.pretty import pretty  # what Jupyter shows for a cell's `model.state_dict()`

    return {
        "keys": list(sd.keys()),
        "print": str(sd),
        "pretty": pretty(sd),
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": floats(v)} for k, v in sd.items()},
    }


def main():
    torch.set_printoptions(profile="default")
    inputs = torch.tensor(
        [
            [0.43, 0.15, 0.89],  # Your     (x^1)
            [0.55, 0.87, 0.66],  # journey  (x^2)
            [0.57, 0.85, 0.64],  # starts   (x^3)
            [0.22, 0.58, 0.33],  # with     (x^4)
            [0.77, 0.25, 0.10],  # one      (x^5)
            [0.05, 0.80, 0.55],  # step     (x^6)
        ]
    )
    batch = torch.stack((inputs, inputs), dim=0)
    context_length = batch.shape[1]
    d_in = inputs.shape[1]
    d_out = 2

    ref_without = load_file(os.path.join(REF, "seed123_without_buffer.safetensors"))
    ref_with = load_file(os.path.join(REF, "seed123_with_buffer.safetensors"))
    pth_without = torch.load(os.path.join(REF, "seed123_without_buffer.pth"), map_location="cpu")
    pth_with = torch.load(os.path.join(REF, "seed123_with_buffer.pth"), map_location="cpu")

    # 1. Does the seed reproduce the reference weights?
    torch.manual_seed(123)
    seeded_without = CausalAttentionWithoutBuffers(d_in, d_out, context_length, 0.0)
    seeded_with = CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0)

    def same(module, ref):
        sd = module.state_dict()
        return set(sd) == set(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)

    seed_check = {
        "procedure": "torch.manual_seed(123); CausalAttentionWithoutBuffers(3, 2, 6, 0.0); then CausalAttentionWithBuffer(3, 2, 6, 0.0)",
        "without_buffer_matches_reference": same(seeded_without, ref_without),
        "with_buffer_matches_reference": same(seeded_with, ref_with),
        "pth_equals_safetensors_without_buffer": all(torch.equal(pth_without[k], ref_without[k]) for k in ref_without),
        "pth_equals_safetensors_with_buffer": all(torch.equal(pth_with[k], ref_with[k]) for k in ref_with),
        "pth_key_order_without_buffer": list(pth_without.keys()),
        "pth_key_order_with_buffer": list(pth_with.keys()),
    }

    # 2. The modules with the reference weights, in eval mode, no grad.
    ca_without_buffer = CausalAttentionWithoutBuffers(d_in, d_out, context_length, 0.0)
    ca_without_buffer.load_state_dict(pth_without)
    ca_with_buffer = CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0)
    ca_with_buffer.load_state_dict(pth_with)
    with torch.no_grad():
        out_without, w_without = ca_without_buffer.attention(batch)
        out_with, w_with = ca_with_buffer.attention(batch)

    # 3. The mask round trip (lesson 1 step 10) and the files PyTorch saved from CUDA.
    mask2 = torch.load(os.path.join(REF, "model_with_buffer_mask2.pth"), map_location="cpu")
    nobuf = torch.load(os.path.join(REF, "model_without_buffer.pth"), map_location="cpu")
    new_ca_with_buffer = CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0)
    load_mask2_result = new_ca_with_buffer.load_state_dict(mask2)
    new_ca_without_buffer = CausalAttentionWithoutBuffers(d_in, d_out, context_length, 0.0)
    load_nobuf_result = new_ca_without_buffer.load_state_dict(nobuf)

    # In-place mask edit as in the original: mask[mask == 1.] = 2.
    edited = CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0)
    edited.load_state_dict(pth_with)
    edited.mask[edited.mask == 1.0] = 2.0

    # 4. Errors.
    errors = {
        "strict_missing_mask": error_text(
            lambda: CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0).load_state_dict(pth_without)
        ),
        "strict_unexpected_mask": error_text(
            lambda: CausalAttentionWithoutBuffers(d_in, d_out, context_length, 0.0).load_state_dict(pth_with)
        ),
        "size_mismatch_with_buffer_d_out_3": error_text(
            # d_out = 3 model (mask 6x6 still matches), checkpoint weights [2, 3]
            lambda: CausalAttentionWithBuffer(d_in, 3, context_length, 0.0).load_state_dict(pth_with)
        ),
        "size_mismatch_without_buffer_d_out_3": error_text(
            lambda: CausalAttentionWithoutBuffers(d_in, 3, context_length, 0.0).load_state_dict(pth_without)
        ),
        "size_mismatch_non_strict_with_buffer_d_out_3": error_text(
            lambda: CausalAttentionWithBuffer(d_in, 3, context_length, 0.0).load_state_dict(pth_with, strict=False)
        ),
        "too_many_tokens_context_4_tokens_6_with_buffer": error_text(
            lambda: CausalAttentionWithBuffer(d_in, d_out, 4, 0.0)(batch)
        ),
        "too_many_tokens_context_4_tokens_6_without_buffer": error_text(
            lambda: CausalAttentionWithoutBuffers(d_in, d_out, 4, 0.0)(batch)
        ),
    }
    non_strict = {
        "with_buffer_loading_without_buffer_sd": repr(
            CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0).load_state_dict(pth_without, strict=False)
        ),
        "without_buffer_loading_with_buffer_sd": repr(
            CausalAttentionWithoutBuffers(d_in, d_out, context_length, 0.0).load_state_dict(pth_with, strict=False)
        ),
        "all_keys_matched": repr(load_mask2_result),
        "all_keys_matched_without_buffer": repr(load_nobuf_result),
    }

    # 5. Casts: .half() converts a float buffer; a plain attribute stays f32.
    half_with = CausalAttentionWithBuffer(d_in, d_out, context_length, 0.0).half()
    half_without = CausalAttentionWithoutBuffers(d_in, d_out, context_length, 0.0).half()
    casts = {
        "with_buffer_half_mask_dtype": str(half_with.mask.dtype),
        "with_buffer_half_weight_dtype": str(half_with.W_query.weight.dtype),
        "without_buffer_half_mask_dtype": str(half_without.mask.dtype),
        "bool_buffer_after_half": str(_bool_buffer_after_half()),
    }

    result = {
        "generated_by": {
            "script": "bench/make_expected.py",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": "cpu",
        },
        "inputs": floats(inputs),
        "batch_shape": list(batch.shape),
        "batch_print": str(batch),
        "d_in": d_in,
        "d_out": d_out,
        "context_length": context_length,
        "seed_check": seed_check,
        "reference_weights": {
            "without_buffer": {k: floats(v) for k, v in pth_without.items()},
            "with_buffer": {k: floats(v) for k, v in pth_with.items()},
        },
        "without_buffer": {
            "context_vecs": floats(out_without),
            "context_vecs_print": str(out_without),
            "attn_weights": floats(w_without),
            "attn_weights_print": str(w_without),
            "state_dict": sd_record(ca_without_buffer.state_dict()),
            "module_print": str(ca_without_buffer),
            "named_parameters": [n for n, _ in ca_without_buffer.named_parameters()],
            "named_buffers": [n for n, _ in ca_without_buffer.named_buffers()],
            "mask_print": str(ca_without_buffer.mask),
        },
        "with_buffer": {
            "context_vecs": floats(out_with),
            "context_vecs_print": str(out_with),
            "attn_weights": floats(w_with),
            "attn_weights_print": str(w_with),
            "state_dict": sd_record(ca_with_buffer.state_dict()),
            "module_print": str(ca_with_buffer),
            "named_parameters": [n for n, _ in ca_with_buffer.named_parameters()],
            "named_buffers": [n for n, _ in ca_with_buffer.named_buffers()],
            "mask_print": str(ca_with_buffer.mask),
        },
        "mask_round_trip": {
            "edited_mask_print": str(edited.mask),
            "edited_state_dict_print": str(edited.state_dict()),
            "model_with_buffer_mask2_pth": sd_record(mask2),
            "loaded_with_buffer_mask_print": str(new_ca_with_buffer.mask),
            "model_without_buffer_pth": sd_record(nobuf),
            "loaded_without_buffer_mask_print": str(new_ca_without_buffer.mask),
        },
        "errors": errors,
        "load_state_dict_non_strict": non_strict,
        "casts": casts,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)} with torch {torch.__version__}", file=sys.stderr)


def _bool_buffer_after_half():
    """Integer/boolean buffers keep their dtype under .half(), as lesson 2 says."""
    m = nn.Module()
    m.register_buffer("flags", torch.ones(2, dtype=torch.bool))
    return m.half().flags.dtype


if __name__ == "__main__":
    main()
