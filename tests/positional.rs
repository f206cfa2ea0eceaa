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
    let keys = |storage| {
        PositionalEncodingModel::new(100, 8, 10, storage, 0)
            .unwrap()
            .state_dict()
            .keys()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(TableStorage::Buffer), ["pe", "embedding.weight"]);
    assert_eq!(
        keys(TableStorage::NonPersistentBuffer),
        ["embedding.weight"]
    );
    assert_eq!(keys(TableStorage::PlainField), ["embedding.weight"]);
    let m = PositionalEncodingModel::new(100, 8, 10, TableStorage::NonPersistentBuffer, 0).unwrap();
    assert_eq!(
        m.named_buffers().len(),
        1,
        "non-persistent buffers are still buffers"
    );
}

#[test]
fn casting_a_plain_field_table_breaks_the_forward_pass() {
    let mut model = PositionalEncodingModel::new(1000, 16, 50, TableStorage::Buffer, 0).unwrap();
    model.to_dtype(DType::BF16).unwrap();
    assert_eq!(model.forward(&ids()).unwrap().dtype(), DType::BF16);

    let mut plain =
        PositionalEncodingModel::new(1000, 16, 50, TableStorage::PlainField, 0).unwrap();
    plain.to_dtype(DType::BF16).unwrap();
    assert_eq!(plain.table().unwrap().dtype(), DType::F32);
    let err = plain.forward(&ids()).unwrap_err();
    assert!(
        matches!(err, Error::Candle(_)),
        "candle's own error: {err:?}"
    );
    assert_eq!(
        err.to_string(),
        "dtype mismatch in add, lhs: BF16, rhs: F32"
    );
}

#[test]
fn output_is_embedding_plus_positions() {
    let model = PositionalEncodingModel::new(1000, 16, 50, TableStorage::Buffer, 0).unwrap();
    let out = model.forward(&ids()).unwrap().squeeze(0).unwrap();
    let emb = model
        .parameter("embedding.weight")
        .unwrap()
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
    let a = PositionalEncodingModel::new(50, 4, 10, TableStorage::Buffer, 7).unwrap();
    let b = PositionalEncodingModel::new(50, 4, 10, TableStorage::Buffer, 7).unwrap();
    let c = PositionalEncodingModel::new(50, 4, 10, TableStorage::Buffer, 8).unwrap();
    let w = |m: &PositionalEncodingModel| {
        m.parameter("embedding.weight")
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    };
    assert_eq!(w(&a), w(&b));
    assert_ne!(w(&a), w(&c));
}

#[test]
fn bad_input_says_what_is_wrong() {
    let model = PositionalEncodingModel::new(100, 16, 4, TableStorage::Buffer, 0).unwrap();
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
fn mask_costs() {
    use understanding_buffers::cost::{mask_bytes, MaskStrategy};
    assert_eq!(mask_bytes(4096, Some(DType::F32)), 64 << 20);
    assert_eq!(mask_bytes(4096, Some(DType::U8)), 16 << 20);
    assert_eq!(mask_bytes(4096, None), 0);
    for s in MaskStrategy::ALL {
        let ms = understanding_buffers::cost::forward_time_ms(s, 1, 4, 2, 1, &Device::Cpu).unwrap();
        assert!(ms.is_finite() && ms >= 0.0);
    }
}
