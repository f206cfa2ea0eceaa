//! Shared helpers for the integration tests: the PyTorch expectations and reference files.
#![allow(dead_code)]

pub mod pickle;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde_json::Value;

/// The crate's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
}

/// A file of `data/reference/` (checkpoints PyTorch wrote).
pub fn reference(name: &str) -> PathBuf {
    root().join("data/reference").join(name)
}

/// `tests/fixtures/pytorch/expected.json`, written by `bench/make_expected.py` from PyTorch.
pub fn expected() -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/pytorch/expected.json"))
        .expect("tests/fixtures/pytorch/expected.json is readable");
    serde_json::from_str(&text).expect("expected.json is valid JSON")
}

/// Walks a `/`-separated path into `value`.
pub fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('/').fold(value, |v, key| {
        v.get(key)
            .unwrap_or_else(|| panic!("expected.json has no {path}"))
    })
}

/// The string at `path`.
pub fn text(value: &Value, path: &str) -> String {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string"))
        .to_string()
}

/// Flattens nested JSON number arrays.
pub fn floats(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("a number") as f32],
        other => panic!("not a number array: {other}"),
    }
}

/// The largest absolute difference between `t` and `expected`.
pub fn max_abs_diff(t: &Tensor, expected: &[f32]) -> f32 {
    let got = t
        .to_device(&Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .expect("tensor readable on the CPU");
    assert_eq!(got.len(), expected.len(), "element counts differ");
    got.iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
