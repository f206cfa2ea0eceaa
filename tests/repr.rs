//! `TensorRepr` prints candle tensors exactly as PyTorch's `repr(tensor)` does.
//!
//! Every expected string in the `pytorch_*` section below was produced by PyTorch
//! 2.15.0+cu132 (`print(torch.__version__)`) with its default print options, running
//! `repr(t)` on the same values, dtypes and shapes as the candle tensor built in the test,
//! and pasted here unchanged.

use candle_core::{DType, Device, DeviceLocation, Shape, Tensor, WithDType};
use proptest::prelude::*;
use understanding_buffers::nn::repr::{device_suffix, repr, torch_dtype_name, TensorRepr};

type Result<T> = candle_core::Result<T>;

/// A tensor of `shape` from row-major `v`, converted to `dtype` (as PyTorch's
/// `torch.tensor(v).reshape(shape).to(dtype)`).
fn values<T: WithDType>(v: &[T], shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
    Tensor::from_slice(v, shape, &Device::Cpu)?.to_dtype(dtype)
}

/// `torch.triu(torch.ones(n, n), diagonal=1)`: 1 above the diagonal, 0 elsewhere.
fn causal_mask(n: usize) -> Result<Tensor> {
    Tensor::tril2(n, DType::F32, &Device::Cpu)?.affine(-1.0, 1.0)
}

fn check(t: &Tensor, expected: &str) -> Result<()> {
    assert_eq!(TensorRepr(t).to_string(), expected);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// pytorch_*: expected strings produced by PyTorch 2.15.0+cu132.
// ---------------------------------------------------------------------------------------

/// The lesson's (2, 6, 2) context vectors, mixed signs.
#[test]
fn pytorch_context_vectors_2x6x2() -> Result<()> {
    let t = values::<f32>(
        &[
            -0.4519, 0.2216, -0.5874, 0.0058, -0.63, -0.0632, -0.5675, -0.0843, -0.5526, -0.0981,
            -0.5299, -0.1081, -0.4519, 0.2216, -0.5874, 0.0058, -0.63, -0.0632, -0.5675, -0.0843,
            -0.5526, -0.0981, -0.5299, -0.1081,
        ],
        (2, 6, 2),
        DType::F32,
    )?;
    check(
        &t,
        r#"tensor([[[-0.4519,  0.2216],
         [-0.5874,  0.0058],
         [-0.6300, -0.0632],
         [-0.5675, -0.0843],
         [-0.5526, -0.0981],
         [-0.5299, -0.1081]],

        [[-0.4519,  0.2216],
         [-0.5874,  0.0058],
         [-0.6300, -0.0632],
         [-0.5675, -0.0843],
         [-0.5526, -0.0981],
         [-0.5299, -0.1081]]])"#,
    )
}

/// `triu(ones(6, 6), diagonal=1)` as float: a 0/1 mask.
#[test]
fn pytorch_causal_mask_6x6() -> Result<()> {
    let t = causal_mask(6)?;
    check(
        &t,
        r#"tensor([[0., 1., 1., 1., 1., 1.],
        [0., 0., 1., 1., 1., 1.],
        [0., 0., 0., 1., 1., 1.],
        [0., 0., 0., 0., 1., 1.],
        [0., 0., 0., 0., 0., 1.],
        [0., 0., 0., 0., 0., 0.]])"#,
    )
}

/// The round-trip mask with every 1 changed to 2.
#[test]
fn pytorch_mask_of_twos_6x6() -> Result<()> {
    let t = (causal_mask(6)? * 2.0)?;
    check(
        &t,
        r#"tensor([[0., 2., 2., 2., 2., 2.],
        [0., 0., 2., 2., 2., 2.],
        [0., 0., 0., 2., 2., 2.],
        [0., 0., 0., 0., 2., 2.],
        [0., 0., 0., 0., 0., 2.],
        [0., 0., 0., 0., 0., 0.]])"#,
    )
}

/// An int64 matrix (dtype left implicit), negative and wide values aligned.
#[test]
fn pytorch_integers_i64() -> Result<()> {
    let t = values::<i64>(&[0, -5, 10, 300, 7, -1234], (2, 3), DType::I64)?;
    check(
        &t,
        r#"tensor([[    0,    -5,    10],
        [  300,     7, -1234]])"#,
    )
}

/// The extreme int64 values.
#[test]
fn pytorch_integers_i64_extremes() -> Result<()> {
    let t = values::<i64>(
        &[-9223372036854775808, 0, 9223372036854775807],
        (3,),
        DType::I64,
    )?;
    check(
        &t,
        r#"tensor([-9223372036854775808,                    0,  9223372036854775807])"#,
    )
}

/// Whole numbers with max/min > 1000: scientific.
#[test]
fn pytorch_sci_large_whole_numbers() -> Result<()> {
    let t = values::<f32>(&[100000.0, 1.0, -2.0], (3,), DType::F32)?;
    check(&t, r#"tensor([ 1.0000e+05,  1.0000e+00, -2.0000e+00])"#)
}

/// A magnitude below 1e-4: scientific.
#[test]
fn pytorch_sci_small_values() -> Result<()> {
    let t = values::<f32>(&[1.5e-05, 0.25, -3.0], (3,), DType::F32)?;
    check(&t, r#"tensor([ 1.5000e-05,  2.5000e-01, -3.0000e+00])"#)
}

/// A magnitude above 1e8: scientific, even with max/min <= 1000.
#[test]
fn pytorch_sci_huge_values() -> Result<()> {
    let t = values::<f32>(&[1.2345679e+08, 9.8765434e+08], (2,), DType::F32)?;
    check(&t, r#"tensor([1.2346e+08, 9.8765e+08])"#)
}

/// Scientific with mixed signs and zero.
#[test]
fn pytorch_sci_negative_exponent_alignment() -> Result<()> {
    let t = values::<f32>(&[1e-07, -1.0, 0.0, 12345.678], (2, 2), DType::F32)?;
    check(
        &t,
        r#"tensor([[ 1.0000e-07, -1.0000e+00],
        [ 0.0000e+00,  1.2346e+04]])"#,
    )
}

/// f32(1e-4) is just below 1e-4: scientific.
#[test]
fn pytorch_sci_f32_one_ten_thousandth() -> Result<()> {
    let t = values::<f32>(&[1e-04, 0.5], (2,), DType::F32)?;
    check(&t, r#"tensor([1.0000e-04, 5.0000e-01])"#)
}

/// max/min = 1000 exactly is still fixed-point.
#[test]
fn pytorch_fixed_wide_range() -> Result<()> {
    let t = values::<f32>(&[0.01, 10.0, -5.5], (3,), DType::F32)?;
    check(&t, r#"tensor([ 1.0000e-02,  1.0000e+01, -5.5000e+00])"#)
}

/// nan, inf, -inf and -0. among fixed-point values.
#[test]
fn pytorch_nonfinite_and_negative_zero() -> Result<()> {
    let t = values::<f32>(
        &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1.5],
        (5,),
        DType::F32,
    )?;
    check(&t, r#"tensor([   nan,    inf,   -inf, -0.0000, 1.5000])"#)
}

/// nan among whole numbers.
#[test]
fn pytorch_nonfinite_in_int_mode() -> Result<()> {
    let t = values::<f32>(&[f32::NAN, 1.0, -20.0], (3,), DType::F32)?;
    check(&t, r#"tensor([ nan,   1., -20.])"#)
}

/// inf among scientific values.
#[test]
fn pytorch_nonfinite_in_sci_mode() -> Result<()> {
    let t = values::<f32>(&[f32::INFINITY, 1e-06, 3.0], (3,), DType::F32)?;
    check(&t, r#"tensor([       inf, 1.0000e-06, 3.0000e+00])"#)
}

/// Only zeros: no finite nonzero value to size the column.
#[test]
fn pytorch_all_zeros() -> Result<()> {
    let t = values::<f32>(&[0.0, 0.0, 0.0, -0.0], (2, 2), DType::F32)?;
    check(
        &t,
        r#"tensor([[0., 0.],
        [0., -0.]])"#,
    )
}

/// Only nan.
#[test]
fn pytorch_only_nan() -> Result<()> {
    let t = values::<f32>(&[f32::NAN, f32::NAN], (2,), DType::F32)?;
    check(&t, r#"tensor([nan, nan])"#)
}

/// A 1-D vector: the first input embedding of the lesson.
#[test]
fn pytorch_vector_1d() -> Result<()> {
    let t = values::<f32>(&[0.43, 0.15, 0.89], (3,), DType::F32)?;
    check(&t, r#"tensor([0.4300, 0.1500, 0.8900])"#)
}

/// 0-dim float tensor holding a whole number.
#[test]
fn pytorch_scalar_float_whole() -> Result<()> {
    let t = values::<f32>(&[3.0], (), DType::F32)?;
    check(&t, r#"tensor(3.)"#)
}

/// 0-dim float tensor holding a fraction.
#[test]
fn pytorch_scalar_float_fraction() -> Result<()> {
    let t = values::<f32>(&[-0.5], (), DType::F32)?;
    check(&t, r#"tensor(-0.5000)"#)
}

/// 0-dim int64 tensor.
#[test]
fn pytorch_scalar_int() -> Result<()> {
    let t = values::<i64>(&[7], (), DType::I64)?;
    check(&t, r#"tensor(7)"#)
}

/// A (2, 3, 4) tensor: blank line between the blocks.
#[test]
fn pytorch_tensor_3d_whole_numbers() -> Result<()> {
    let t = Tensor::arange(0f32, 24., &Device::Cpu)?.reshape((2, 3, 4))?;
    check(
        &t,
        r#"tensor([[[ 0.,  1.,  2.,  3.],
         [ 4.,  5.,  6.,  7.],
         [ 8.,  9., 10., 11.]],

        [[12., 13., 14., 15.],
         [16., 17., 18., 19.],
         [20., 21., 22., 23.]]])"#,
    )
}

/// A (2, 2, 2, 2) tensor: two blank lines between the outer blocks.
#[test]
fn pytorch_tensor_4d() -> Result<()> {
    let t = (Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((2, 2, 2, 2))? / 4.0)?;
    check(
        &t,
        r#"tensor([[[[0.0000, 0.2500],
          [0.5000, 0.7500]],

         [[1.0000, 1.2500],
          [1.5000, 1.7500]]],


        [[[2.0000, 2.2500],
          [2.5000, 2.7500]],

         [[3.0000, 3.2500],
          [3.5000, 3.7500]]]])"#,
    )
}

/// A 1x20 row wraps at 80 columns.
#[test]
fn pytorch_wide_row_1x20_wraps() -> Result<()> {
    let t = values::<f32>(
        &[
            -3.0, -2.63, -2.26, -1.89, -1.52, -1.15, -0.78, -0.41, -0.04, 0.33, 0.7, 1.07, 1.44,
            1.81, 2.18, 2.55, 2.92, 3.29, 3.66, 4.03,
        ],
        (1, 20),
        DType::F32,
    )?;
    check(
        &t,
        r#"tensor([[-3.0000, -2.6300, -2.2600, -1.8900, -1.5200, -1.1500, -0.7800, -0.4100,
         -0.0400,  0.3300,  0.7000,  1.0700,  1.4400,  1.8100,  2.1800,  2.5500,
          2.9200,  3.2900,  3.6600,  4.0300]])"#,
    )
}

/// A 1-D row of 20 wraps at 80 columns, continuation under the first item.
#[test]
fn pytorch_wide_vector_wraps() -> Result<()> {
    let t = values::<f32>(
        &[
            -3.0, -2.63, -2.26, -1.89, -1.52, -1.15, -0.78, -0.41, -0.04, 0.33, 0.7, 1.07, 1.44,
            1.81, 2.18, 2.55, 2.92, 3.29, 3.66, 4.03,
        ],
        (20,),
        DType::F32,
    )?;
    check(
        &t,
        r#"tensor([-3.0000, -2.6300, -2.2600, -1.8900, -1.5200, -1.1500, -0.7800, -0.4100,
        -0.0400,  0.3300,  0.7000,  1.0700,  1.4400,  1.8100,  2.1800,  2.5500,
         2.9200,  3.2900,  3.6600,  4.0300])"#,
    )
}

/// Each row of a (3, 15) matrix wraps on its own.
#[test]
fn pytorch_wide_matrix_3x15_wraps() -> Result<()> {
    let t = (Tensor::arange(0f32, 45., &Device::Cpu)?.reshape((3, 15))? / 7.0)?;
    check(
        &t,
        r#"tensor([[0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,
         1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000],
        [2.1429, 2.2857, 2.4286, 2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857,
         3.4286, 3.5714, 3.7143, 3.8571, 4.0000, 4.1429],
        [4.2857, 4.4286, 4.5714, 4.7143, 4.8571, 5.0000, 5.1429, 5.2857, 5.4286,
         5.5714, 5.7143, 5.8571, 6.0000, 6.1429, 6.2857]])"#,
    )
}

/// 2000 elements: summarised with `...`, three items per edge.
#[test]
fn pytorch_summarised_2d_40x50() -> Result<()> {
    let t = (Tensor::arange(0f32, 2000., &Device::Cpu)?.reshape((40, 50))? / 7.0)?;
    check(
        &t,
        r#"tensor([[0.0000e+00, 1.4286e-01, 2.8571e-01,  ..., 6.7143e+00, 6.8571e+00,
         7.0000e+00],
        [7.1429e+00, 7.2857e+00, 7.4286e+00,  ..., 1.3857e+01, 1.4000e+01,
         1.4143e+01],
        [1.4286e+01, 1.4429e+01, 1.4571e+01,  ..., 2.1000e+01, 2.1143e+01,
         2.1286e+01],
        ...,
        [2.6429e+02, 2.6443e+02, 2.6457e+02,  ..., 2.7100e+02, 2.7114e+02,
         2.7129e+02],
        [2.7143e+02, 2.7157e+02, 2.7171e+02,  ..., 2.7814e+02, 2.7829e+02,
         2.7843e+02],
        [2.7857e+02, 2.7871e+02, 2.7886e+02,  ..., 2.8529e+02, 2.8543e+02,
         2.8557e+02]])"#,
    )
}

/// 1001 elements in one row.
#[test]
fn pytorch_summarised_1d_1001() -> Result<()> {
    let t = Tensor::arange(0i64, 1001, &Device::Cpu)?;
    check(&t, r#"tensor([   0,    1,    2,  ...,  998,  999, 1000])"#)
}

/// 1100 elements in three dimensions.
#[test]
fn pytorch_summarised_3d_10x10x11() -> Result<()> {
    let t = Tensor::arange(0f32, 1100., &Device::Cpu)?.reshape((10, 10, 11))?;
    check(
        &t,
        r#"tensor([[[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 8.0000e+00,
          9.0000e+00, 1.0000e+01],
         [1.1000e+01, 1.2000e+01, 1.3000e+01,  ..., 1.9000e+01,
          2.0000e+01, 2.1000e+01],
         [2.2000e+01, 2.3000e+01, 2.4000e+01,  ..., 3.0000e+01,
          3.1000e+01, 3.2000e+01],
         ...,
         [7.7000e+01, 7.8000e+01, 7.9000e+01,  ..., 8.5000e+01,
          8.6000e+01, 8.7000e+01],
         [8.8000e+01, 8.9000e+01, 9.0000e+01,  ..., 9.6000e+01,
          9.7000e+01, 9.8000e+01],
         [9.9000e+01, 1.0000e+02, 1.0100e+02,  ..., 1.0700e+02,
          1.0800e+02, 1.0900e+02]],

        [[1.1000e+02, 1.1100e+02, 1.1200e+02,  ..., 1.1800e+02,
          1.1900e+02, 1.2000e+02],
         [1.2100e+02, 1.2200e+02, 1.2300e+02,  ..., 1.2900e+02,
          1.3000e+02, 1.3100e+02],
         [1.3200e+02, 1.3300e+02, 1.3400e+02,  ..., 1.4000e+02,
          1.4100e+02, 1.4200e+02],
         ...,
         [1.8700e+02, 1.8800e+02, 1.8900e+02,  ..., 1.9500e+02,
          1.9600e+02, 1.9700e+02],
         [1.9800e+02, 1.9900e+02, 2.0000e+02,  ..., 2.0600e+02,
          2.0700e+02, 2.0800e+02],
         [2.0900e+02, 2.1000e+02, 2.1100e+02,  ..., 2.1700e+02,
          2.1800e+02, 2.1900e+02]],

        [[2.2000e+02, 2.2100e+02, 2.2200e+02,  ..., 2.2800e+02,
          2.2900e+02, 2.3000e+02],
         [2.3100e+02, 2.3200e+02, 2.3300e+02,  ..., 2.3900e+02,
          2.4000e+02, 2.4100e+02],
         [2.4200e+02, 2.4300e+02, 2.4400e+02,  ..., 2.5000e+02,
          2.5100e+02, 2.5200e+02],
         ...,
         [2.9700e+02, 2.9800e+02, 2.9900e+02,  ..., 3.0500e+02,
          3.0600e+02, 3.0700e+02],
         [3.0800e+02, 3.0900e+02, 3.1000e+02,  ..., 3.1600e+02,
          3.1700e+02, 3.1800e+02],
         [3.1900e+02, 3.2000e+02, 3.2100e+02,  ..., 3.2700e+02,
          3.2800e+02, 3.2900e+02]],

        ...,

        [[7.7000e+02, 7.7100e+02, 7.7200e+02,  ..., 7.7800e+02,
          7.7900e+02, 7.8000e+02],
         [7.8100e+02, 7.8200e+02, 7.8300e+02,  ..., 7.8900e+02,
          7.9000e+02, 7.9100e+02],
         [7.9200e+02, 7.9300e+02, 7.9400e+02,  ..., 8.0000e+02,
          8.0100e+02, 8.0200e+02],
         ...,
         [8.4700e+02, 8.4800e+02, 8.4900e+02,  ..., 8.5500e+02,
          8.5600e+02, 8.5700e+02],
         [8.5800e+02, 8.5900e+02, 8.6000e+02,  ..., 8.6600e+02,
          8.6700e+02, 8.6800e+02],
         [8.6900e+02, 8.7000e+02, 8.7100e+02,  ..., 8.7700e+02,
          8.7800e+02, 8.7900e+02]],

        [[8.8000e+02, 8.8100e+02, 8.8200e+02,  ..., 8.8800e+02,
          8.8900e+02, 8.9000e+02],
         [8.9100e+02, 8.9200e+02, 8.9300e+02,  ..., 8.9900e+02,
          9.0000e+02, 9.0100e+02],
         [9.0200e+02, 9.0300e+02, 9.0400e+02,  ..., 9.1000e+02,
          9.1100e+02, 9.1200e+02],
         ...,
         [9.5700e+02, 9.5800e+02, 9.5900e+02,  ..., 9.6500e+02,
          9.6600e+02, 9.6700e+02],
         [9.6800e+02, 9.6900e+02, 9.7000e+02,  ..., 9.7600e+02,
          9.7700e+02, 9.7800e+02],
         [9.7900e+02, 9.8000e+02, 9.8100e+02,  ..., 9.8700e+02,
          9.8800e+02, 9.8900e+02]],

        [[9.9000e+02, 9.9100e+02, 9.9200e+02,  ..., 9.9800e+02,
          9.9900e+02, 1.0000e+03],
         [1.0010e+03, 1.0020e+03, 1.0030e+03,  ..., 1.0090e+03,
          1.0100e+03, 1.0110e+03],
         [1.0120e+03, 1.0130e+03, 1.0140e+03,  ..., 1.0200e+03,
          1.0210e+03, 1.0220e+03],
         ...,
         [1.0670e+03, 1.0680e+03, 1.0690e+03,  ..., 1.0750e+03,
          1.0760e+03, 1.0770e+03],
         [1.0780e+03, 1.0790e+03, 1.0800e+03,  ..., 1.0860e+03,
          1.0870e+03, 1.0880e+03],
         [1.0890e+03, 1.0900e+03, 1.0910e+03,  ..., 1.0970e+03,
          1.0980e+03, 1.0990e+03]]])"#,
    )
}

/// Only the printed edges choose the format: the hidden middle holds 1e-9.
#[test]
fn pytorch_summarised_edges_decide_format() -> Result<()> {
    let t = Tensor::cat(
        &[
            Tensor::full(0.5f32, 3, &Device::Cpu)?,
            Tensor::full(1e-9f32, 1000, &Device::Cpu)?,
            Tensor::full(2.0f32, 3, &Device::Cpu)?,
        ],
        0,
    )?;
    check(
        &t,
        r#"tensor([0.5000, 0.5000, 0.5000,  ..., 2.0000, 2.0000, 2.0000])"#,
    )
}

/// A (1100, 1) column: only the long dimension is cut.
#[test]
fn pytorch_summarised_short_dims_kept() -> Result<()> {
    let t = (Tensor::arange(0f32, 1100., &Device::Cpu)?.reshape((1100, 1))? * 0.25)?;
    check(
        &t,
        r#"tensor([[0.0000e+00],
        [2.5000e-01],
        [5.0000e-01],
        ...,
        [2.7425e+02],
        [2.7450e+02],
        [2.7475e+02]])"#,
    )
}

/// float16: values from their f32 conversion, dtype shown.
#[test]
fn pytorch_dtype_f16() -> Result<()> {
    let t = values::<f32>(&[1.5, -2.0, 0.3333], (3,), DType::F16)?;
    check(
        &t,
        r#"tensor([ 1.5000, -2.0000,  0.3333], dtype=torch.float16)"#,
    )
}

/// bfloat16.
#[test]
fn pytorch_dtype_bf16() -> Result<()> {
    let t = values::<f32>(&[0.1, 1.0, -3.25, 100.0], (2, 2), DType::BF16)?;
    check(
        &t,
        r#"tensor([[  0.1001,   1.0000],
        [ -3.2500, 100.0000]], dtype=torch.bfloat16)"#,
    )
}

/// float64.
#[test]
fn pytorch_dtype_f64() -> Result<()> {
    let t = values::<f64>(&[0.1, 0.2, 0.3], (3,), DType::F64)?;
    check(
        &t,
        r#"tensor([0.1000, 0.2000, 0.3000], dtype=torch.float64)"#,
    )
}

/// uint8.
#[test]
fn pytorch_dtype_u8() -> Result<()> {
    let t = values::<u8>(&[0, 1, 255], (3,), DType::U8)?;
    check(&t, r#"tensor([  0,   1, 255], dtype=torch.uint8)"#)
}

/// uint32.
#[test]
fn pytorch_dtype_u32() -> Result<()> {
    let t = values::<u32>(&[0, 4294967295], (2,), DType::U32)?;
    check(
        &t,
        r#"tensor([         0, 4294967295], dtype=torch.uint32)"#,
    )
}

/// int32.
#[test]
fn pytorch_dtype_i32() -> Result<()> {
    let t = values::<i32>(&[-7, 42], (2,), DType::I32)?;
    check(&t, r#"tensor([-7, 42], dtype=torch.int32)"#)
}

/// int16.
#[test]
fn pytorch_dtype_i16() -> Result<()> {
    let t = values::<i16>(&[-32768, 32767], (2,), DType::I16)?;
    check(&t, r#"tensor([-32768,  32767], dtype=torch.int16)"#)
}

/// float8_e4m3fn (read through f32).
#[test]
fn pytorch_dtype_f8e4m3() -> Result<()> {
    let t = values::<f32>(&[1.5, -448.0, 0.0, 3.0], (4,), DType::F8E4M3)?;
    check(
        &t,
        r#"tensor([   1.5000, -448.0000,    0.0000,    3.0000], dtype=torch.float8_e4m3fn)"#,
    )
}

/// The causal mask after `.half()`.
#[test]
fn pytorch_dtype_f16_mask() -> Result<()> {
    let t = causal_mask(6)?.to_dtype(DType::F16)?;
    check(
        &t,
        r#"tensor([[0., 1., 1., 1., 1., 1.],
        [0., 0., 1., 1., 1., 1.],
        [0., 0., 0., 1., 1., 1.],
        [0., 0., 0., 0., 1., 1.],
        [0., 0., 0., 0., 0., 1.],
        [0., 0., 0., 0., 0., 0.]], dtype=torch.float16)"#,
    )
}

/// The dtype suffix goes on its own line when the last line is too long.
#[test]
fn pytorch_dtype_suffix_wraps() -> Result<()> {
    let t = ((Tensor::arange(0f64, 9., &Device::Cpu)? * 1.25)? + 100.0)?;
    check(
        &t,
        r#"tensor([100.0000, 101.2500, 102.5000, 103.7500, 105.0000, 106.2500, 107.5000,
        108.7500, 110.0000], dtype=torch.float64)"#,
    )
}

/// An empty 1-D float tensor.
#[test]
fn pytorch_empty_1d() -> Result<()> {
    let t = Tensor::zeros(0, DType::F32, &Device::Cpu)?;
    check(&t, r#"tensor([])"#)
}

/// An empty 2-D tensor shows its size.
#[test]
fn pytorch_empty_2d() -> Result<()> {
    let t = Tensor::zeros((0, 3), DType::F32, &Device::Cpu)?;
    check(&t, r#"tensor([], size=(0, 3))"#)
}

/// An empty int64 tensor shows its dtype.
#[test]
fn pytorch_empty_i64() -> Result<()> {
    let t = Tensor::zeros(0, DType::I64, &Device::Cpu)?;
    check(&t, r#"tensor([], dtype=torch.int64)"#)
}

/// An empty f16 tensor shows size then dtype.
#[test]
fn pytorch_empty_f16_3d() -> Result<()> {
    let t = Tensor::zeros((2, 0, 4), DType::F16, &Device::Cpu)?;
    check(&t, r#"tensor([], size=(2, 0, 4), dtype=torch.float16)"#)
}

/// A transposed (non-contiguous) view prints its logical order.
#[test]
fn pytorch_non_contiguous_transpose() -> Result<()> {
    let t = (Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))? / 4.0)?.t()?;
    check(
        &t,
        r#"tensor([[0.0000, 0.7500],
        [0.2500, 1.0000],
        [0.5000, 1.2500]])"#,
    )
}

// ---------------------------------------------------------------------------------------
// Suffix helpers, the `repr` shorthand and the error path.
// ---------------------------------------------------------------------------------------

#[test]
fn device_suffix_follows_pytorch_device_names() {
    assert_eq!(device_suffix(DeviceLocation::Cpu), None);
    assert_eq!(
        device_suffix(DeviceLocation::Cuda { gpu_id: 0 }).as_deref(),
        Some("device='cuda:0'")
    );
    assert_eq!(
        device_suffix(DeviceLocation::Cuda { gpu_id: 3 }).as_deref(),
        Some("device='cuda:3'")
    );
    assert_eq!(
        device_suffix(DeviceLocation::Metal { gpu_id: 0 }).as_deref(),
        Some("device='mps:0'")
    );
}

#[test]
fn torch_dtype_names() {
    let expected = [
        (DType::U8, "torch.uint8"),
        (DType::U32, "torch.uint32"),
        (DType::I16, "torch.int16"),
        (DType::I32, "torch.int32"),
        (DType::I64, "torch.int64"),
        (DType::BF16, "torch.bfloat16"),
        (DType::F16, "torch.float16"),
        (DType::F32, "torch.float32"),
        (DType::F64, "torch.float64"),
        (DType::F8E4M3, "torch.float8_e4m3fn"),
    ];
    for (dtype, name) in expected {
        assert_eq!(torch_dtype_name(dtype), name, "{dtype:?}");
    }
}

#[test]
fn repr_is_tensor_repr() -> Result<()> {
    let t = causal_mask(3)?;
    assert_eq!(repr(&t).to_string(), TensorRepr(&t).to_string());
    assert_eq!(
        format!("{}", repr(&t)),
        "tensor([[0., 1., 1.],\n        [0., 0., 1.],\n        [0., 0., 0.]])"
    );
    Ok(())
}

#[test]
fn unreadable_dtype_prints_the_error_instead_of_panicking() -> Result<()> {
    // candle can hold 6-bit floats but cannot convert them to anything readable.
    let t = Tensor::from_raw_buffer(&[0u8; 4], DType::F6E2M3, &[4], &Device::Cpu)?;
    let text = TensorRepr(&t).to_string();
    assert!(text.starts_with("tensor(<error: "), "{text}");
    assert!(text.ends_with(">)"), "{text}");
    assert!(text.contains("F6E2M3"), "{text}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// For any fixed-point row: every printed number is the value rounded to 4 decimals,
    /// all numbers are right-aligned to one width, and no line passes 80 columns.
    #[test]
    fn fixed_point_rows_round_align_and_wrap(
        v in prop::collection::vec(
            (0.01f32..9.99, any::<bool>()).prop_map(|(x, neg)| if neg { -x } else { x }),
            1..60,
        )
    ) {
        prop_assume!(v.iter().any(|x| x.fract() != 0.0));
        let t = Tensor::new(v.as_slice(), &Device::Cpu).unwrap();
        let text = TensorRepr(&t).to_string();
        let body = text
            .strip_prefix("tensor([")
            .and_then(|s| s.strip_suffix("])"))
            .unwrap_or_else(|| panic!("not a 1-D repr: {text}"));
        // Items are joined by ", " or, where the row wraps, by ",\n" and 8 spaces.
        let cells: Vec<&str> = body
            .split(',')
            .enumerate()
            .map(|(i, c)| match i {
                0 => Some(c),
                _ => c.strip_prefix(' ').or_else(|| c.strip_prefix("\n        ")),
            })
            .collect::<Option<_>>()
            .unwrap_or_else(|| panic!("bad separator in {text:?}"));
        prop_assert_eq!(cells.len(), v.len());
        let width = cells[0].len();
        for (cell, x) in cells.iter().zip(&v) {
            prop_assert_eq!(cell.len(), width, "{:?}", text);
            let parsed: f64 = cell.trim_start().parse().unwrap();
            prop_assert!((parsed - f64::from(*x)).abs() <= 0.5e-4 + 1e-12, "{cell} vs {x}");
            prop_assert_eq!(cell.split('.').nth(1).map(str::len), Some(4));
        }
        for line in text.lines() {
            prop_assert!(line.len() <= 80, "{line:?}");
        }
    }
}
