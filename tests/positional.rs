//! Lesson 2's model: the table, the buffer kinds, casts, and the errors of bad input.

use candle_core::{DType, Device, Tensor};
use understanding_buffers::prelude::*;

fn ids() -> Tensor {
    Tensor::new(&[[5u32, 17, 42, 7, 99]], &Device::Cpu).unwrap()
}

#[test]
fn the_table_follows_the_formula() {
    let (max_len, d) = (50, 16);
    let pe = sinusoidal_table(max_len, d)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (pos, row) in pe.iter().enumerate() {
        for i in 0..d / 2 {
            let angle = pos as f64 / 10000f64.powf(2.0 * i as f64 / d as f64);
            assert!((row[2 * i] as f64 - angle.sin()).abs() < 1e-6);
            assert!((row[2 * i + 1] as f64 - angle.cos()).abs() < 1e-6);
        }
    }
}

#[test]
fn buffer_kinds_decide_what_is_saved() {
    let keys =
        |m: &dyn TorchModule| -> Vec<String> { m.state_dict().keys().map(String::from).collect() };
    let buffered = PositionalEncodingWithBuffer::new(100, 8, 10, 0).unwrap();
    let non_persistent = PositionalEncodingWithNonPersistentBuffer::new(100, 8, 10, 0).unwrap();
    let plain = PositionalEncodingWithPlainField::new(100, 8, 10, 0).unwrap();
    assert_eq!(keys(&buffered), ["pe", "embedding.weight"]);
    assert_eq!(keys(&non_persistent), ["embedding.weight"]);
    assert_eq!(keys(&plain), ["embedding.weight"]);
    let buffers = |m: &dyn TorchModule| -> Vec<String> {
        m.named_buffers().into_iter().map(|(n, _)| n).collect()
    };
    assert_eq!(
        buffers(&non_persistent),
        ["pe"],
        "non-persistent buffers are still buffers"
    );
    assert!(buffers(&plain).is_empty());
    let kind = |m: &dyn TorchModule| m.diagnostics().rows()[0].kind;
    assert_eq!(
        [kind(&buffered), kind(&non_persistent), kind(&plain)],
        [
            TensorKind::Buffer,
            TensorKind::NonPersistentBuffer,
            TensorKind::PlainField
        ]
    );
}

#[test]
fn a_non_persistent_table_is_recomputed_and_the_embedding_loaded() {
    let saved = PositionalEncodingWithNonPersistentBuffer::new(100, 8, 10, 3).unwrap();
    let state = saved.state_dict();
    let mut restored = PositionalEncodingWithNonPersistentBuffer::new(100, 8, 10, 4).unwrap();
    assert!(restored
        .load_state_dict(&state, LoadMode::Strict)
        .unwrap()
        .is_empty());
    assert_eq!(
        restored.embedding.weight.to_vec2::<f32>().unwrap(),
        saved.embedding.weight.to_vec2::<f32>().unwrap()
    );
    assert_eq!(
        restored.pe.to_vec2::<f32>().unwrap(),
        sinusoidal_table(10, 8).unwrap().to_vec2::<f32>().unwrap()
    );
}

#[test]
fn the_three_models_differ_in_the_table_field_only() {
    use understanding_buffers::notebook::lesson_code::difference;
    let changed = |a: &str, b: &str| -> Vec<String> {
        let diff = difference(a, b).unwrap();
        diff.text()
            .lines()
            .skip(2)
            .filter(|l| l.starts_with(['-', '+']))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        changed(
            "PositionalEncodingWithBuffer",
            "PositionalEncodingWithPlainField"
        ),
        ["-    pub pe: Buffer,", "+    pub pe: Tensor,"]
    );
    assert_eq!(
        changed(
            "PositionalEncodingWithBuffer",
            "PositionalEncodingWithNonPersistentBuffer"
        ),
        ["+    #[module(persistent = false)]"]
    );
}

#[test]
fn output_is_embedding_plus_positions() {
    let model = PositionalEncodingWithBuffer::new(1000, 16, 50, 0).unwrap();
    let out = model.forward(&ids()).unwrap().squeeze(0).unwrap();
    let emb = model
        .embedding
        .weight
        .index_select(&ids().flatten_all().unwrap(), 0)
        .unwrap();
    let pe = sinusoidal_table(50, 16).unwrap().narrow(0, 0, 5).unwrap();
    let by_hand = (emb + pe).unwrap();
    assert_eq!(
        out.to_vec2::<f32>().unwrap(),
        by_hand.to_vec2::<f32>().unwrap()
    );
}

#[test]
fn seeded_embeddings_are_reproducible() {
    let a = PositionalEncodingWithBuffer::new(50, 4, 10, 7).unwrap();
    let b = PositionalEncodingWithBuffer::new(50, 4, 10, 7).unwrap();
    let c = PositionalEncodingWithBuffer::new(50, 4, 10, 8).unwrap();
    let w = |m: &PositionalEncodingWithBuffer| m.embedding.weight.to_vec2::<f32>().unwrap();
    assert_eq!(w(&a), w(&b));
    assert_ne!(w(&a), w(&c));
}

#[test]
fn bad_input_says_what_is_wrong() {
    let model = PositionalEncodingWithBuffer::new(100, 16, 4, 0).unwrap();
    let err = model.forward(&ids()).unwrap_err().to_string();
    assert_eq!(
        err,
        "input has 5 tokens but the positional-encoding table covers 4 (max_len = 4)"
    );
    let flat = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let err = model.forward(&flat).unwrap_err().to_string();
    assert_eq!(
        err,
        "expected token ids of shape (batch, seq_len), got shape [2]"
    );
    let too_big = Tensor::new(&[[100u32]], &Device::Cpu).unwrap();
    let err = model.forward(&too_big).unwrap_err().to_string();
    assert_eq!(
        err,
        "token id 100 is out of range: the embedding has 100 rows (valid ids are 0 to 99)"
    );
    let floats = Tensor::new(&[[1f32]], &Device::Cpu).unwrap();
    let err = model.forward(&floats).unwrap_err().to_string();
    assert!(
        err.starts_with("token ids must have an integer dtype"),
        "{err}"
    );
}

#[test]
fn every_mask_strategy_computes_the_same_attention() {
    use understanding_buffers::lesson::cost::{MaskRun, MaskStrategy};
    let mut run = MaskRun::new(2, 5, 3, &Device::Cpu).unwrap();
    let outputs: Vec<Vec<f32>> = MaskStrategy::ALL
        .iter()
        .map(|&s| {
            let out = run.forward(s).unwrap();
            assert_eq!(out.dims(), [2, 5, 3]);
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    assert!(outputs[0].iter().all(|v| v.is_finite()));
}

#[test]
fn mask_costs() {
    use understanding_buffers::lesson::cost::{forward_time_ms, mask_bytes, MaskStrategy};
    assert_eq!(mask_bytes(4096, Some(DType::F32)), 64 << 20);
    assert_eq!(mask_bytes(4096, Some(DType::U8)), 16 << 20);
    assert_eq!(mask_bytes(4096, None), 0);
    for s in MaskStrategy::ALL {
        let ms = forward_time_ms(s, 1, 4, 2, 3, &Device::Cpu).unwrap();
        assert!(ms > 0.0 && ms < 10_000.0, "{s:?}: {ms} ms");
    }
    let err = forward_time_ms(MaskStrategy::BufferOnDevice, 1, 4, 2, 0, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("repeats >= 1"), "{err}");
}

#[test]
fn side_by_side_mask_costs() {
    use understanding_buffers::lesson::cost::forward_times_ms;
    let times = forward_times_ms(1, 4, 2, 3, &Device::Cpu).unwrap();
    for ms in times {
        assert!(ms > 0.0 && ms < 10_000.0, "{times:?}");
    }
    let err = forward_times_ms(1, 4, 2, 0, &Device::Cpu).unwrap_err();
    assert!(
        err.to_string()
            .contains("forward_times_ms needs at least one timed call"),
        "{err}"
    );
}

#[test]
fn the_table_matches_pytorchs() {
    // PyTorch 2.15's tables, saved with the article's model by bench/make_positional.py.
    for (d_model, max_len, tolerance) in [(8, 6, 1e-7), (16, 50, 1e-6)] {
        let path = reference_file(&format!("pytorch_pe_d{d_model}_len{max_len}.pth"));
        let saved = checkpoint::load(&path, &Device::Cpu).unwrap();
        assert_eq!(saved.keys().collect::<Vec<_>>(), ["pe", "embedding.weight"]);
        let pytorch = saved.get("pe").unwrap();
        let ours = sinusoidal_table(max_len, d_model).unwrap();
        let largest = (ours - pytorch)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            largest < tolerance,
            "{d_model} x {max_len}: largest difference {largest}"
        );
        // The file loads strictly into the crate's model, and its table replaces ours.
        let mut model = PositionalEncodingWithBuffer::new(100, d_model, max_len, 0).unwrap();
        assert!(model.load(&path, LoadMode::Strict).unwrap().is_empty());
        assert_eq!(
            model.pe.to_vec2::<f32>().unwrap(),
            pytorch.to_vec2::<f32>().unwrap()
        );
    }
    // Row 5 of the article's table (d_model = 8, max_seq_len = 6), as PyTorch prints it.
    let row5 = sinusoidal_table(6, 8)
        .unwrap()
        .get(5)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let article = [-0.958_924_3_f32, 0.283_662_2, 0.479_425_5, 0.877_582_55];
    for (ours, theirs) in row5.iter().zip(article) {
        assert!((ours - theirs).abs() < 1e-7, "{row5:?}");
    }
}
