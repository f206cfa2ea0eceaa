//! The modules a learner writes in lesson 1 behave exactly as the crate's own copies.
//!
//! `tests/notebook_modules/01-understanding-buffers.rs` is generated from the lesson's source
//! (`scripts/notebooks.py build`; `check` fails when it is stale), so this compiles and runs
//! the very text of the notebook's definition cells. They shadow the prelude's modules of the
//! same names, as they do in the notebook; the crate's are reached by their full path.

use understanding_buffers::lesson::attention as crate_modules;
use understanding_buffers::prelude::*;

include!("notebook_modules/01-understanding-buffers.rs");

fn batch() -> Tensor {
    example_batch(&Device::Cpu).unwrap()
}

fn keys<M: TorchModule>(m: &M) -> Vec<String> {
    m.state_dict().keys().map(String::from).collect()
}

fn values(t: &Tensor) -> Vec<Vec<Vec<f32>>> {
    t.to_vec3::<f32>().unwrap()
}

#[test]
fn the_learners_module_without_buffers_is_the_crates() {
    let file = reference_file("seed123_without_buffer.safetensors");
    let mut ours = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    ours.load(&file, LoadMode::Strict).unwrap();
    let mut theirs =
        crate_modules::CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    theirs.load(&file, LoadMode::Strict).unwrap();

    assert_eq!(keys(&ours), keys(&theirs));
    assert_eq!(
        keys(&ours),
        ["W_query.weight", "W_key.weight", "W_value.weight"]
    );
    let (a, b) = (
        ours.forward(&batch()).unwrap(),
        theirs.forward(&batch()).unwrap(),
    );
    assert_eq!(values(&a), values(&b));
    // PyTorch's first row, as the notebook prints it.
    let first = &values(&a)[0][0];
    assert!(
        (first[0] + 0.4519).abs() < 5e-5 && (first[1] - 0.2216).abs() < 5e-5,
        "{first:?}"
    );
    // The plain field is listed as one, and stays behind on a cast.
    ours.to_dtype(DType::F16).unwrap();
    assert_eq!(ours.mask.dtype(), DType::F32);
    assert_eq!(ours.diagnostics().dtype_strays().len(), 1);
}

#[test]
fn the_learners_module_with_a_buffer_is_the_crates() {
    let file = reference_file("seed123_with_buffer.safetensors");
    let mut ours = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    ours.load(&file, LoadMode::Strict).unwrap();
    let mut theirs = crate_modules::CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    theirs.load(&file, LoadMode::Strict).unwrap();

    assert_eq!(keys(&ours), keys(&theirs));
    assert_eq!(
        keys(&ours),
        ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
    );
    assert_eq!(
        values(&ours.forward(&batch()).unwrap()),
        values(&theirs.forward(&batch()).unwrap())
    );
    // The buffer follows a cast, and a backward pass reaches the weights only.
    ours.to_dtype(DType::F16).unwrap();
    assert_eq!(ours.mask.dtype(), DType::F16);
    assert!(ours.diagnostics().dtype_strays().is_empty());
    let m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let grads = m
        .gradients(&m.forward(&batch()).unwrap().sum_all().unwrap())
        .unwrap();
    assert_eq!(
        grads.with_gradient(),
        ["W_query.weight", "W_key.weight", "W_value.weight"]
    );
}

#[test]
fn the_learners_modules_refuse_too_many_tokens_as_the_crates_do() {
    let short = CausalAttentionWithBuffer::new(3, 2, 4, 0.0, false).unwrap();
    let err = short.forward(&batch()).unwrap_err().to_string();
    assert!(
        err.contains("input has 6 tokens but the mask covers 4"),
        "{err}"
    );
}

#[test]
fn the_learners_modules_print_as_the_crates() {
    let ours = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let theirs = crate_modules::CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    assert_eq!(ours.to_string(), theirs.to_string());
}
