//! The two attention modules against PyTorch: outputs, printed text, state dicts, the mask
//! round trip, and the errors of bad input.
//!
//! Expected values come from `tests/fixtures/pytorch/expected.json`, which
//! `bench/make_expected.py` wrote by running the original PyTorch modules on the reference
//! weights of `data/reference/` (see the script's header for the version and how to re-run).

mod common;

use candle_core::{DType, Device, Tensor};
use common::{at, expected, floats, max_abs_diff, reference, text};
use understanding_buffers::nn::repr::torch_dtype_name;
use understanding_buffers::notebook::lesson_code::{difference, snippet};
use understanding_buffers::prelude::*;

fn without_buffer() -> CausalAttentionWithoutBuffers {
    let mut m = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    m.load(
        reference("seed123_without_buffer.safetensors"),
        LoadMode::Strict,
    )
    .unwrap();
    m
}

fn with_buffer() -> CausalAttentionWithBuffer {
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    m.load(
        reference("seed123_with_buffer.safetensors"),
        LoadMode::Strict,
    )
    .unwrap();
    m
}

fn batch() -> Tensor {
    example_batch(&Device::Cpu).unwrap()
}

#[test]
fn example_batch_is_the_lessons_input() {
    let exp = expected();
    let mut inputs = floats(at(&exp, "inputs"));
    inputs.extend_from_slice(&inputs.clone());
    assert_eq!(max_abs_diff(&batch(), &inputs), 0.0);
    assert_eq!(batch().dims(), &[2, 6, 3]);
}

#[test]
fn unbuffered_cpu_output_matches_pytorch() {
    let exp = expected();
    let out = without_buffer().forward(&batch()).unwrap();
    let diff = max_abs_diff(&out, &floats(at(&exp, "without_buffer/context_vecs")));
    assert!(diff <= 1e-6, "max |candle - PyTorch| = {diff}");
    assert_eq!(
        TensorRepr(&out).to_string(),
        text(&exp, "without_buffer/context_vecs_print")
    );
}

#[test]
fn buffered_cpu_output_matches_pytorch() {
    let exp = expected();
    let out = with_buffer().forward(&batch()).unwrap();
    let diff = max_abs_diff(&out, &floats(at(&exp, "with_buffer/context_vecs")));
    assert!(diff <= 1e-6, "max |candle - PyTorch| = {diff}");
    assert_eq!(
        TensorRepr(&out).to_string(),
        text(&exp, "with_buffer/context_vecs_print")
    );
}

#[test]
fn attention_weights_match_pytorch() {
    let exp = expected();
    let w = without_buffer().attention_weights(&batch()).unwrap();
    assert!(max_abs_diff(&w, &floats(at(&exp, "without_buffer/attn_weights"))) <= 1e-6);
    let w = with_buffer().attention_weights(&batch()).unwrap();
    assert!(max_abs_diff(&w, &floats(at(&exp, "with_buffer/attn_weights"))) <= 1e-6);
    assert_eq!(
        TensorRepr(&w).to_string(),
        text(&exp, "with_buffer/attn_weights_print")
    );
}

#[test]
fn state_dicts_print_and_order_like_pytorch() {
    let exp = expected();
    let sd = with_buffer().state_dict();
    assert_eq!(
        sd.keys().collect::<Vec<_>>(),
        ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
    );
    assert_eq!(sd.to_string(), text(&exp, "with_buffer/state_dict/pretty"));
    assert_eq!(
        format!("{sd:#}"),
        text(&exp, "with_buffer/state_dict/print")
    );
    let sd = without_buffer().state_dict();
    assert_eq!(
        sd.keys().collect::<Vec<_>>(),
        ["W_query.weight", "W_key.weight", "W_value.weight"]
    );
    assert_eq!(
        sd.to_string(),
        text(&exp, "without_buffer/state_dict/pretty")
    );
    assert_eq!(
        format!("{sd:#}"),
        text(&exp, "without_buffer/state_dict/print")
    );
}

#[test]
fn named_parameters_and_buffers() {
    let m = with_buffer();
    let params: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(params, ["W_query.weight", "W_key.weight", "W_value.weight"]);
    let buffers: Vec<String> = m.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers, ["mask"]);
    assert!(without_buffer().named_buffers().is_empty());
    assert_eq!(m.parameters().len(), 3);
    assert_eq!(m.buffers().len(), 1);
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ub-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn mask_round_trip_keeps_twos_only_with_a_buffer() {
    let exp = expected();
    let dir = scratch_dir("round-trip");
    for file in ["model.pth", "model.safetensors"] {
        let mut m = with_buffer();
        m.mask = Buffer::new((m.mask.as_tensor() * 2.0).unwrap());
        assert_eq!(
            TensorRepr(&m.mask).to_string(),
            text(&exp, "mask_round_trip/edited_mask_print")
        );
        m.save(dir.join(file)).unwrap();
        let mut fresh = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
        fresh.load(dir.join(file), LoadMode::Strict).unwrap();
        assert_eq!(
            TensorRepr(&fresh.mask).to_string(),
            text(&exp, "mask_round_trip/loaded_with_buffer_mask_print")
        );

        let mut m = without_buffer();
        m.mask = (&m.mask * 2.0).unwrap();
        m.save(dir.join(file)).unwrap();
        let mut fresh = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
        fresh.load(dir.join(file), LoadMode::Strict).unwrap();
        assert_eq!(
            TensorRepr(&fresh.mask).to_string(),
            text(&exp, "mask_round_trip/loaded_without_buffer_mask_print")
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pytorch_checkpoint_with_twos_loads_in_order() {
    let exp = expected();
    let state = understanding_buffers::checkpoint::load(
        reference("model_with_buffer_mask2.pth"),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        state.keys().collect::<Vec<_>>(),
        ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
    );
    assert_eq!(
        format!("{state:#}"),
        text(&exp, "mask_round_trip/model_with_buffer_mask2_pth/print")
    );
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    m.load_state_dict(&state, LoadMode::Strict).unwrap();
    assert_eq!(
        m.mask.to_vec2::<f32>().unwrap()[0],
        [0.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    );
}

#[test]
fn strict_load_errors_are_pytorchs() {
    let exp = expected();
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let err = m
        .load_state_dict(&without_buffer().state_dict(), LoadMode::Strict)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        text(&exp, "errors/strict_missing_mask/message")
    );

    let mut m = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    let err = m
        .load_state_dict(&with_buffer().state_dict(), LoadMode::Strict)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        text(&exp, "errors/strict_unexpected_mask/message")
    );

    let mut m = CausalAttentionWithBuffer::new(3, 3, 6, 0.0, false).unwrap();
    let err = m
        .load_state_dict(&with_buffer().state_dict(), LoadMode::Strict)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        text(&exp, "errors/size_mismatch_with_buffer_d_out_3/message")
    );
    let err = m
        .load_state_dict(&with_buffer().state_dict(), LoadMode::NonStrict)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        text(
            &exp,
            "errors/size_mismatch_non_strict_with_buffer_d_out_3/message"
        )
    );
    let mut m = CausalAttentionWithoutBuffers::new(3, 3, 6, 0.0, false).unwrap();
    let err = m
        .load_state_dict(&without_buffer().state_dict(), LoadMode::Strict)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        text(&exp, "errors/size_mismatch_without_buffer_d_out_3/message")
    );
}

#[test]
fn non_strict_load_reports_incompatible_keys_like_pytorch() {
    let exp = expected();
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let keys = m
        .load_state_dict(&without_buffer().state_dict(), LoadMode::NonStrict)
        .unwrap();
    assert_eq!(
        keys.to_string(),
        text(
            &exp,
            "load_state_dict_non_strict/with_buffer_loading_without_buffer_sd"
        )
    );
    let mut m = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    let keys = m
        .load_state_dict(&with_buffer().state_dict(), LoadMode::NonStrict)
        .unwrap();
    assert_eq!(
        keys.to_string(),
        text(
            &exp,
            "load_state_dict_non_strict/without_buffer_loading_with_buffer_sd"
        )
    );
    let keys = m
        .load_state_dict(&without_buffer().state_dict(), LoadMode::Strict)
        .unwrap();
    assert_eq!(
        keys.to_string(),
        text(&exp, "load_state_dict_non_strict/all_keys_matched")
    );
}

#[test]
fn a_failed_load_changes_nothing() {
    let mut m = with_buffer();
    let before = m.state_dict().to_string();
    let mut state = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)
        .unwrap()
        .state_dict();
    // One good key with new values, one problem: nothing may be applied.
    state.insert("extra", Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap());
    assert!(m.load_state_dict(&state, LoadMode::Strict).is_err());
    assert_eq!(m.state_dict().to_string(), before);
    let mut bad = m.state_dict();
    bad.insert(
        "W_key.weight",
        Tensor::zeros((5, 5), DType::F32, &Device::Cpu).unwrap(),
    );
    bad.insert(
        "mask",
        Tensor::zeros((6, 6), DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(m.load_state_dict(&bad, LoadMode::NonStrict).is_err());
    assert_eq!(m.state_dict().to_string(), before);
}

#[test]
fn all_problems_are_reported_at_once() {
    let mut m = CausalAttentionWithBuffer::new(3, 3, 6, 0.0, false).unwrap();
    let mut state = with_buffer().state_dict();
    state.remove("mask");
    state.insert("bias", Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap());
    let err = m
        .load_state_dict(&state, LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Missing key(s) in state_dict: \"mask\". "),
        "{err}"
    );
    assert!(
        err.contains("Unexpected key(s) in state_dict: \"bias\". "),
        "{err}"
    );
    assert_eq!(err.matches("size mismatch for").count(), 3, "{err}");
}

#[test]
fn loaded_values_take_the_modules_dtype() {
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    m.to_dtype(DType::F16).unwrap();
    m.load(
        reference("seed123_with_buffer.safetensors"),
        LoadMode::Strict,
    )
    .unwrap();
    for (_, t) in m.state_dict().iter() {
        assert_eq!(t.dtype(), DType::F16);
    }
}

#[test]
fn bad_input_says_what_is_wrong() {
    let m = CausalAttentionWithBuffer::new(3, 2, 4, 0.0, false).unwrap();
    let err = m.forward(&batch()).unwrap_err().to_string();
    assert!(
        err.starts_with("input has 6 tokens but the mask covers 4 (context_length = 4)"),
        "{err}"
    );
    let m = CausalAttentionWithoutBuffers::new(3, 2, 4, 0.0, false).unwrap();
    let err = m.forward(&batch()).unwrap_err().to_string();
    assert!(
        err.starts_with("input has 6 tokens but the mask covers 4"),
        "{err}"
    );

    let m = with_buffer();
    let two_d = Tensor::zeros((6, 3), DType::F32, &Device::Cpu).unwrap();
    let err = m.forward(&two_d).unwrap_err().to_string();
    assert!(
        err.contains("expects input of shape (batch, tokens, d_in)"),
        "{err}"
    );
    assert!(err.contains("got shape [6, 3] (rank 2)"), "{err}");
    let wrong_d = Tensor::zeros((2, 6, 4), DType::F32, &Device::Cpu).unwrap();
    let err = m.forward(&wrong_d).unwrap_err().to_string();
    assert!(
        err.contains("was built with d_in = 3, but the input's last dimension is 4"),
        "{err}"
    );
    let err = CausalAttentionWithBuffer::new(3, 2, 6, 1.5, false)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "dropout must be in [0, 1), got 1.5");
}

#[test]
fn masked_fill_reads_the_top_left_corner_of_a_larger_mask() {
    // A causal mask's corners look alike; this one does not: a 1 at (0, 3), inside the
    // top-left 4 × 4 corner, and one at (4, 5), outside it (the bottom-right corner would
    // move it to (2, 3)).
    let mut values = vec![0f32; 36];
    values[3] = 1.0;
    values[4 * 6 + 5] = 1.0;
    let mask = Tensor::from_vec(values, (6, 6), &Device::Cpu).unwrap();
    let scores = Tensor::zeros((1, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let filled = masked_fill(&scores, &mask, f32::NEG_INFINITY)
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let hidden: Vec<(usize, usize)> = (0..4)
        .flat_map(|i| (0..4).map(move |j| (i, j)))
        .filter(|&(i, j)| filled[0][i][j] == f32::NEG_INFINITY)
        .collect();
    assert_eq!(hidden, [(0, 3)]);
}

#[test]
fn fewer_tokens_than_the_context_use_the_top_left_of_the_mask() {
    let m = with_buffer();
    let full = m.forward(&batch()).unwrap();
    let first4 = m.forward(&batch().narrow(1, 0, 4).unwrap()).unwrap();
    // Causality: the first four outputs do not depend on later tokens.
    let full4 = full.narrow(1, 0, 4).unwrap();
    let diff = (full4 - first4).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
}

#[test]
fn dropout_acts_only_in_training() {
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.5, false).unwrap();
    m.load(
        reference("seed123_with_buffer.safetensors"),
        LoadMode::Strict,
    )
    .unwrap();
    assert!(m.is_training());
    m.eval();
    assert!(!m.is_training());
    let a = m.forward(&batch()).unwrap().to_vec3::<f32>().unwrap();
    let b = m.forward(&batch()).unwrap().to_vec3::<f32>().unwrap();
    assert_eq!(a, b, "eval mode is deterministic");
    let eval_out = with_buffer()
        .forward(&batch())
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    assert_eq!(a, eval_out, "dropout 0.5 in eval equals dropout 0");
    m.train();
    // In training, dropout zeroes about half the weights: over 20 runs outputs must differ.
    let runs: Vec<Vec<Vec<Vec<f32>>>> = (0..20)
        .map(|_| m.forward(&batch()).unwrap().to_vec3::<f32>().unwrap())
        .collect();
    assert!(runs.iter().any(|r| *r != a));
}

#[test]
fn casts_follow_pytorchs_rules() {
    let exp = expected();
    let mut m = with_buffer();
    m.to_dtype(DType::F16).unwrap();
    // PyTorch's `.half()` turns the float mask buffer into float16, and leaves a plain one.
    assert_eq!(
        torch_dtype_name(m.mask.dtype()),
        text(&exp, "casts/with_buffer_half_mask_dtype")
    );
    assert_eq!(m.w_query.weight.dtype(), DType::F16);
    let out = m.forward(&batch().to_dtype(DType::F16).unwrap()).unwrap();
    assert_eq!(out.dtype(), DType::F16);

    let mut m = without_buffer();
    m.to_dtype(DType::F16).unwrap();
    assert_eq!(
        torch_dtype_name(m.mask.dtype()),
        text(&exp, "casts/without_buffer_half_mask_dtype")
    );
    assert_eq!(m.w_query.weight.dtype(), DType::F16);

    let err = m.to_dtype(DType::U8).unwrap_err().to_string();
    assert!(err.contains("only accepts floating-point dtypes"), "{err}");
}

#[test]
fn an_optimizer_gets_parameters_only() {
    use candle_nn::Optimizer;
    let m = with_buffer();
    let mask_before = m.mask.to_vec2::<f32>().unwrap();
    let w_before = m.w_query.weight.to_vec2::<f32>().unwrap();
    let mut sgd = candle_nn::SGD::new(m.parameters(), 0.1).unwrap();
    let loss = m
        .forward(&batch())
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    sgd.backward_step(&loss).unwrap();
    assert_ne!(m.w_query.weight.to_vec2::<f32>().unwrap(), w_before);
    assert_eq!(m.mask.to_vec2::<f32>().unwrap(), mask_before);
    // The dotted names reach the same tensors.
    assert_eq!(
        m.parameter("W_query.weight").unwrap().id(),
        m.w_query.weight.id()
    );
    assert_eq!(m.buffer("mask").unwrap().id(), m.mask.id());
}

#[test]
fn moving_to_the_same_place_is_a_no_op() {
    let mut m = without_buffer();
    let before = m.state_dict();
    m.to_device(&Device::Cpu).unwrap();
    for ((_, a), (_, b)) in before.iter().zip(m.state_dict().iter()) {
        assert_eq!(a.id(), b.id(), "a tensor already on the CPU is not copied");
    }
    assert!(m.check_devices().is_ok());
    let report = m.diagnostics();
    let kinds: Vec<(String, TensorKind)> = report
        .rows()
        .iter()
        .map(|r| (r.name.clone(), r.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("mask".to_string(), TensorKind::PlainField),
            ("W_query.weight".to_string(), TensorKind::Parameter),
            ("W_key.weight".to_string(), TensorKind::Parameter),
            ("W_value.weight".to_string(), TensorKind::Parameter),
        ]
    );
}

/// The lines of a unified diff that differ (`-`/`+`), without the two file headers.
fn changed_lines(diff: &str) -> Vec<&str> {
    diff.lines()
        .skip(2)
        .filter(|l| l.starts_with(['-', '+']))
        .collect()
}

#[test]
fn the_two_modules_differ_in_the_mask_field_only() {
    let diff = difference("CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer").unwrap();
    let text = diff.text();
    assert_eq!(
        changed_lines(text),
        [
            "-    pub mask: Tensor, // PyTorch: self.mask = torch.triu(...)",
            "+    pub mask: Buffer, // PyTorch: self.register_buffer(\"mask\", torch.triu(...))",
        ],
        "{text}"
    );
    // A unified diff, with the field's context and indentation.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "--- CausalAttentionWithoutBuffers",
            "+++ CausalAttentionWithBuffer",
            "@@ -7,7 +7,7 @@"
        ]
    );
    assert_eq!(lines[3], "     #[module(rename = \"W_value\")]");
    assert_eq!(lines.last(), Some(&" impl CausalAttentionWithBuffer {"));
    // The forward passes are the same code, reading `self.mask`.
    for name in ["CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer"] {
        let code = snippet(name).unwrap();
        let forward = code.text().split("pub fn forward").nth(1).unwrap();
        assert!(forward.contains("masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)"));
    }
}

#[test]
fn a_difference_of_a_snippet_with_itself_is_empty_and_unknown_names_are_errors() {
    let diff = difference("CausalAttentionWithBuffer", "CausalAttentionWithBuffer").unwrap();
    assert_eq!(
        diff.text(),
        "--- CausalAttentionWithBuffer\n+++ CausalAttentionWithBuffer"
    );
    let err = snippet("CausalAttention").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "no lesson snippet named \"CausalAttention\"; known: CausalAttentionWithoutBuffers"
        ),
        "{err}"
    );
}

#[test]
fn modules_print_like_pytorch() {
    let exp = expected();
    assert_eq!(
        without_buffer().to_string(),
        text(&exp, "without_buffer/module_print")
    );
    assert_eq!(
        with_buffer().to_string(),
        text(&exp, "with_buffer/module_print")
    );
    let dropout = Dropout::new(0.1).unwrap();
    assert_eq!(dropout.to_string(), "Dropout(p=0.1, inplace=False)");
    let with_bias = Linear::new(4, 5, true).unwrap();
    assert_eq!(
        with_bias.to_string(),
        "Linear(in_features=4, out_features=5, bias=True)"
    );
}

#[test]
fn the_modules_plug_into_candles_traits() {
    use candle_core::{Module as _, ModuleT as _};
    let x = example_batch(&Device::Cpu).unwrap();
    let m = with_buffer();
    // xs.apply(&module) and candle_nn::seq() take the crate's modules.
    let applied = x.apply(&m).unwrap();
    assert_eq!(
        applied.to_vec3::<f32>().unwrap(),
        m.forward(&x).unwrap().to_vec3::<f32>().unwrap()
    );
    let linear = Linear::new(2, 4, true).unwrap();
    let seq = candle_nn::seq().add(m.clone()).add(linear.clone());
    assert_eq!(seq.forward(&x).unwrap().dims(), [2, 6, 4]);
    // The crate's own errors become candle's, with their message.
    let err = x.apply(&linear).unwrap_err().to_string();
    assert!(err.contains("d_in") || err.contains("3"), "{err}");
    let dropout = Dropout::new(0.5).unwrap();
    assert_eq!(
        dropout
            .forward_t(&x, false)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap(),
        x.to_vec3::<f32>().unwrap()
    );
}
