//! On a real GPU (`--features cuda`): the lesson's bug and its fix, for real.
//!
//! Build here with `../shared/gpu` and run on a GPU machine (see the README, "GPU").
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor};
use common::{at, expected, floats, max_abs_diff, reference};
use understanding_buffers::prelude::*;

fn gpu() -> Device {
    // Candle appends a backtrace to error texts when RUST_BACKTRACE is set; the messages
    // compared here are the ones a learner sees without it.
    std::env::set_var("RUST_BACKTRACE", "0");
    Device::new_cuda(0).expect("a CUDA device: run this test on a GPU machine")
}

fn loaded<M: TorchModule>(mut m: M, file: &str) -> M {
    m.load(reference(file), LoadMode::Strict).unwrap();
    m
}

#[test]
fn best_device_is_the_gpu() {
    assert_eq!(device_name(&best_device()), "cuda:0");
}

#[test]
fn unbuffered_module_fails_with_candles_device_mismatch() {
    let device = gpu();
    let mut m = loaded(
        CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap(),
        "seed123_without_buffer.safetensors",
    );
    m.to_device(&device).unwrap();
    let batch = example_batch(&device).unwrap();
    let err = m.forward(&batch).unwrap_err().to_string();
    println!("unbuffered forward on the GPU: {err}");
    assert_eq!(
        err,
        "device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }"
    );

    // The diagnostics name the stray mask.
    let report = m.diagnostics();
    println!("{report}");
    let strays: Vec<&str> = report
        .device_strays()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(strays, ["mask"]);
    let err = m.check_devices().unwrap_err().to_string();
    assert!(err.contains("mask (plain field, on cpu)"), "{err}");

    // Fixed by hand, it gives the CPU's numbers.
    m.mask = m.mask.to_device(&device).unwrap();
    let out = m.forward(&batch).unwrap();
    let exp = expected();
    let diff = max_abs_diff(&out, &floats(at(&exp, "without_buffer/context_vecs")));
    assert!(diff <= 1e-5, "max |GPU - PyTorch| = {diff}");
}

#[test]
fn buffered_module_runs_on_the_gpu_and_matches_the_cpu() {
    let device = gpu();
    let cpu_model = loaded(
        CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap(),
        "seed123_with_buffer.safetensors",
    );
    let cpu_out = cpu_model
        .forward(&example_batch(&Device::Cpu).unwrap())
        .unwrap();
    let mut m = cpu_model.clone();
    m.to_device(&device).unwrap();
    assert_eq!(device_name(m.mask.device()), "cuda:0");
    assert!(m.check_devices().is_ok());
    let out = m.forward(&example_batch(&device).unwrap()).unwrap();
    assert_eq!(device_name(out.device()), "cuda:0");
    let cpu_values: Vec<f32> = cpu_out.flatten_all().unwrap().to_vec1().unwrap();
    let diff = max_abs_diff(&out, &cpu_values);
    println!("buffered module: max |GPU - CPU| = {diff:e}");
    assert!(diff <= 1e-5);
    let printed = TensorRepr(&out).to_string();
    assert!(printed.ends_with(", device='cuda:0')"), "{printed}");
}

#[test]
fn a_cpu_checkpoint_loads_into_a_cuda_module() {
    let device = gpu();
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    m.to_device(&device).unwrap();
    m.load(reference("model_with_buffer_mask2.pth"), LoadMode::Strict)
        .unwrap();
    let mask = m.mask.as_tensor();
    assert_eq!(device_name(mask.device()), "cuda:0");
    assert_eq!(
        mask.to_device(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()[0],
        [0.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    );
    // ...and a module saved from the GPU loads back on the CPU.
    let path = std::env::temp_dir().join("ub-gpu-model.pth");
    m.save(&path).unwrap();
    let mut back = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    back.load(&path, LoadMode::Strict).unwrap();
    assert_eq!(back.mask.to_vec2::<f32>().unwrap()[0][1], 2.0);
}

#[test]
fn a_second_handle_of_the_same_gpu_is_the_same_place() {
    let device = gpu();
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    m.to_device(&device).unwrap();
    let before = m.mask.as_tensor().clone();
    let other_handle = Device::new_cuda(0).unwrap();
    assert!(
        !device.same_device(&other_handle),
        "candle sees two devices"
    );
    m.to_device(&other_handle).unwrap();
    assert_eq!(m.mask.id(), before.id(), "no copy was made");
}

#[test]
fn lesson_two_dtype_mismatch_also_happens_on_the_gpu() {
    let device = gpu();
    let mut plain = PositionalEncodingWithPlainField::new(100, 16, 50, 0).unwrap();
    plain.to_device(&device).unwrap();
    let ids = Tensor::new(&[[1u32, 2, 3]], &device).unwrap();
    // The table stayed on the CPU: a device mismatch first.
    let err = plain.forward(&ids).unwrap_err().to_string();
    println!("plain-field table on the GPU: {err}");
    assert!(err.contains("device mismatch"), "{err}");
    let mut model = PositionalEncodingWithBuffer::new(100, 16, 50, 0).unwrap();
    model.to_device(&device).unwrap();
    model.to_dtype(DType::BF16).unwrap();
    let out = model.forward(&ids).unwrap();
    assert_eq!(
        (out.dtype(), device_name(out.device()).as_str()),
        (DType::BF16, "cuda:0")
    );
}

#[test]
fn to_device_moves_parameters_and_buffers_and_leaves_plain_fields() {
    let device = gpu();
    let mut with = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let mut without = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    let plain_mask = without.mask.clone();
    with.to_device(&device).unwrap();
    without.to_device(&device).unwrap();
    assert!(with.mask.device().is_cuda() && with.w_query.weight.device().is_cuda());
    assert!(without.w_query.weight.device().is_cuda());
    assert!(without.mask.device().is_cpu());
    assert_eq!(
        without.mask.id(),
        plain_mask.id(),
        "the plain field is untouched"
    );
}

#[test]
fn an_optimizer_built_before_to_device_keeps_training_the_cpu_variables() {
    use candle_nn::{Optimizer, SGD};
    let device = gpu();
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let old = m.parameters();
    let mut sgd = SGD::new(old.clone(), 0.5).unwrap();
    m.to_device(&device).unwrap();
    assert!(m.parameters().iter().all(|v| v.device().is_cuda()));
    assert!(old.iter().all(|v| v.device().is_cpu()));
    let before = m
        .w_query
        .weight
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let loss = old[0].sqr().unwrap().sum_all().unwrap();
    sgd.backward_step(&loss).unwrap();
    let after = m
        .w_query
        .weight
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(
        before, after,
        "the module's GPU weights are not the optimizer's"
    );
}

/// Ids on the GPU are checked there (smallest and largest id, two numbers copied back); ids
/// on the CPU are checked on the CPU and then moved. Both ends, in both places.
#[test]
fn embedding_checks_ids_at_both_ends_on_the_gpu_and_from_the_cpu() {
    let gpu = gpu();
    let mut embedding = Embedding::new(10, 4, 0).unwrap();
    embedding.to_device(&gpu).unwrap();
    let range = "the embedding has 10 rows (valid ids are 0 to 9)";
    for device in [&gpu, &Device::Cpu] {
        let negative = Tensor::new(&[[3i64, -1, 2]], device).unwrap();
        let err = embedding.forward(&negative).unwrap_err().to_string();
        assert_eq!(err, format!("token id -1 is out of range: {range}"));
        let too_big = Tensor::new(&[[9u32, 10]], device).unwrap();
        let err = embedding.forward(&too_big).unwrap_err().to_string();
        assert_eq!(err, format!("token id 10 is out of range: {range}"));
        let ids = Tensor::new(&[[0u32, 9]], device).unwrap();
        let vectors = embedding.forward(&ids).unwrap();
        assert_eq!(device_name(vectors.device()), "cuda:0");
        assert_eq!(vectors.dims(), &[1, 2, 4]);
    }
}
