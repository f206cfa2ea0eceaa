//! The building blocks the lessons' modules are made of: [`Linear`], [`Embedding`] and
//! [`Dropout`], PyTorch's `nn.Linear`, `nn.Embedding` and `nn.Dropout` with typed fields.
//! Their forward passes are candle-nn's; these types add the parameters, the checks with
//! plain error messages, and (for dropout) the training mode.

use std::fmt;

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use candle_nn::Module as _;

use crate::error::{Error, Result};
use crate::nn::init::seeded_normal;
use crate::nn::module::{FieldMut, FieldRef, Module, TorchModule};
use crate::nn::param::Param;

/// `y = x Wᵀ + b` with `W` of shape `(d_out, d_in)`, like PyTorch's `nn.Linear`: parameters
/// `weight` and, with `bias`, `bias`. Initialised uniformly in `±1/√d_in` (PyTorch's range;
/// candle's generator cannot be seeded, so load weights when values must be reproducible).
///
/// ```
/// use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
/// use understanding_buffers::nn::{Linear, TorchModule};
///
/// let linear = Linear::new(3, 2, false)?;
/// let y = linear.forward(&Tensor::ones((4, 3), DType::F32, &Device::Cpu)?)?;
/// assert_eq!(y.dims(), &[4, 2]);
/// assert_eq!(linear.state_dict().keys().collect::<Vec<_>>(), ["weight"]);
/// assert!(linear.forward(&Tensor::ones((4, 5), DType::F32, &Device::Cpu)?).is_err());
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug, Module)]
#[module(extra_repr = "settings")]
pub struct Linear {
    /// The weight, `(d_out, d_in)`.
    pub weight: Param,
    /// The bias, `(d_out,)`; `None` for `bias = false` (PyTorch: `bias=None`).
    pub bias: Option<Param>,
    #[module(training)]
    training: bool,
}

impl Linear {
    /// A linear layer on the CPU.
    pub fn new(d_in: usize, d_out: usize, bias: bool) -> Result<Self> {
        let bound = (1.0 / (d_in.max(1) as f64).sqrt()) as f32;
        let uniform = |shape: &[usize]| Tensor::rand(-bound, bound, shape, &Device::Cpu);
        Ok(Self {
            weight: Param::new(uniform(&[d_out, d_in])?)?,
            bias: if bias {
                Some(Param::new(uniform(&[d_out])?)?)
            } else {
                None
            },
            training: true,
        })
    }

    /// The size of the inputs' last dimension, `d_in`.
    pub fn in_features(&self) -> usize {
        self.weight.dims().get(1).copied().unwrap_or(0)
    }

    /// The size of the outputs' last dimension, `d_out`.
    pub fn out_features(&self) -> usize {
        self.weight.dims().first().copied().unwrap_or(0)
    }

    /// PyTorch's `extra_repr`: `in_features=3, out_features=2, bias=False`.
    fn settings(&self) -> String {
        let bias = if self.bias.is_some() { "True" } else { "False" };
        let (i, o) = (self.in_features(), self.out_features());
        format!("in_features={i}, out_features={o}, bias={bias}")
    }

    /// Applies the layer to the last dimension of `x` (candle-nn's `Linear`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dims().last().copied().unwrap_or(0);
        if d != self.in_features() {
            return Err(Error::Input(format!(
                "Linear expects inputs whose last dimension is {}, got shape {:?}",
                self.in_features(),
                x.dims()
            )));
        }
        let bias = self.bias.as_ref().map(|b| b.as_tensor().clone());
        let layer = candle_nn::Linear::new(self.weight.as_tensor().clone(), bias);
        Ok(layer.forward(x)?)
    }
}

/// A lookup table of `vocab_size` vectors of size `dim`, like PyTorch's `nn.Embedding`:
/// parameter `weight`, initialised from a seed (standard normal, as PyTorch) so lessons
/// are reproducible.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::nn::layers::Embedding;
///
/// let embedding = Embedding::new(10, 4, 7)?;
/// let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu)?;
/// assert_eq!(embedding.forward(&ids)?.dims(), &[1, 3, 4]);
/// assert!(embedding.forward(&Tensor::new(&[[10u32]], &Device::Cpu)?).is_err());
/// assert!(embedding.forward(&Tensor::new(&[[1i64, -1]], &Device::Cpu)?).is_err()); // both ends
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug, Module)]
#[module(extra_repr = "settings")]
pub struct Embedding {
    /// The vectors, `(vocab_size, dim)`.
    pub weight: Param,
    #[module(training)]
    training: bool,
}

impl Embedding {
    /// An embedding on the CPU with weights drawn from `seed`.
    pub fn new(vocab_size: usize, dim: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            weight: Param::new(seeded_normal((vocab_size, dim), seed, &Device::Cpu)?)?,
            training: true,
        })
    }

    /// The number of vectors.
    pub fn vocab_size(&self) -> usize {
        self.weight.dims().first().copied().unwrap_or(0)
    }

    /// PyTorch's `extra_repr`: `100, 8` (the number of vectors and their size).
    fn settings(&self) -> String {
        format!("{}, {}", self.vocab_size(), self.dim())
    }

    /// The size of each vector.
    pub fn dim(&self) -> usize {
        self.weight.dims().get(1).copied().unwrap_or(0)
    }

    /// The vectors of `ids` (any shape, integer dtype): shape `ids.dims() + [dim]`, on the
    /// embedding's device (candle-nn's `Embedding`; ids elsewhere are moved there).
    ///
    /// Every id is checked first, at both ends: a negative id (`I64`, `I32`, `I16`) and an id
    /// of `vocab_size` or more are errors that name the id and the valid range. Where the
    /// check runs:
    ///
    /// - ids on the CPU (token ids usually start there, from a tokenizer) are read where they
    ///   lie, without a copy, before they are moved: no device is waited for;
    /// - ids already on a GPU are reduced there to their smallest and largest value, and those
    ///   two numbers are copied to the CPU: one wait for the device per call. It is the price
    ///   of the check: candle's GPU kernels do not check indices (an id out of range reads
    ///   memory outside the table), and candle has nothing like PyTorch's device-side
    ///   assert, which checks on the GPU and fails later, asynchronously.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        if !ids.dtype().is_int() {
            return Err(Error::Input(format!(
                "token ids must have an integer dtype (U32, I64, U8), got {:?}",
                ids.dtype()
            )));
        }
        if let Some((min, max)) = id_range(ids)? {
            let vocab_size = self.vocab_size();
            let out_of_range = [min, max]
                .into_iter()
                .find(|&id| id < 0 || id >= vocab_size as i64);
            if let Some(id) = out_of_range {
                return Err(Error::Input(format!(
                    "token id {id} is out of range: the embedding has {vocab_size} rows (valid ids are 0 to {})",
                    vocab_size.saturating_sub(1)
                )));
            }
        }
        let ids = ids.to_device(self.weight.device())?;
        let layer = candle_nn::Embedding::new(self.weight.as_tensor().clone(), self.dim());
        Ok(layer.forward(&ids)?)
    }
}

/// The smallest and largest of `ids` (an integer tensor), `None` when it is empty: read in
/// place on the CPU; elsewhere reduced on the device, then two numbers copied back.
fn id_range(ids: &Tensor) -> Result<Option<(i64, i64)>> {
    if ids.elem_count() == 0 {
        return Ok(None);
    }
    if !ids.device().is_cpu() {
        let flat = ids.flatten_all()?.to_dtype(DType::I64)?;
        let ends = Tensor::stack(&[flat.min(0)?, flat.max(0)?], 0)?.to_vec1::<i64>()?;
        return Ok(Some((ends[0], ends[1])));
    }
    let ids = ids.contiguous()?; // a copy only for strided views
    let (storage, layout) = ids.storage_and_layout();
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::Input("token ids: no contiguous layout".to_string()))?;
    fn ends<T: Copy + Into<i64>>(values: &[T]) -> Option<(i64, i64)> {
        values.iter().fold(None, |range, &v| {
            let v = v.into();
            Some(range.map_or((v, v), |(lo, hi): (i64, i64)| (lo.min(v), hi.max(v))))
        })
    }
    Ok(match &*storage {
        Storage::Cpu(CpuStorage::U8(v)) => ends(&v[start..end]),
        Storage::Cpu(CpuStorage::U32(v)) => ends(&v[start..end]),
        Storage::Cpu(CpuStorage::I16(v)) => ends(&v[start..end]),
        Storage::Cpu(CpuStorage::I32(v)) => ends(&v[start..end]),
        Storage::Cpu(CpuStorage::I64(v)) => ends(&v[start..end]),
        _ => {
            return Err(Error::Input(format!(
                "token ids must have an integer dtype (U32, I64, U8), got {:?}",
                ids.dtype()
            )))
        }
    })
}

/// Dropout, like PyTorch's `nn.Dropout(p)`: in training mode it zeroes each value with
/// probability `p` and scales the rest by `1 / (1 - p)`; in evaluation mode it does nothing.
/// It holds no tensors, only the mode, which [`TorchModule::train`] and [`TorchModule::eval`] set.
///
/// Its `impl TorchModule` is written by hand, because it keeps the mode:
///
/// ```
/// use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
/// use understanding_buffers::nn::{Dropout, TorchModule};
///
/// let mut dropout = Dropout::new(0.5)?;
/// let x = Tensor::ones((4, 4), DType::F32, &Device::Cpu)?;
/// assert!(dropout.is_training());
/// dropout.eval();
/// assert_eq!(dropout.forward(&x)?.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
/// assert!(Dropout::new(1.5).is_err());
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
    training: bool,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1)`, in training mode.
    pub fn new(p: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Input(format!("dropout must be in [0, 1), got {p}")));
        }
        Ok(Self { p, training: true })
    }

    /// The probability of zeroing a value.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// `x` with dropout applied in training mode (candle-nn's `Dropout`), `x` itself in
    /// evaluation mode or when `p` is 0.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let active = self.training && self.p > 0.0;
        Ok(candle_nn::Dropout::new(self.p).forward(x, active)?)
    }
}

impl fmt::Display for Dropout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr())
    }
}

/// A float as Python prints it: `0.0`, `0.1`, `0.25`.
fn python_float(x: f32) -> String {
    let text = x.to_string();
    if text.contains(['.', 'e', 'N', 'i']) {
        text
    } else {
        format!("{text}.0")
    }
}

impl TorchModule for Dropout {
    fn type_name(&self) -> &'static str {
        "Dropout"
    }
    fn extra_repr(&self) -> String {
        format!("p={}, inplace=False", python_float(self.p))
    }
    fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)> {
        Vec::new()
    }
    fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)> {
        Vec::new()
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

// candle's own traits, so that `xs.apply(&linear)`, `candle_nn::seq()` and code written for
// candle-nn's layers take these layers too. The inherent `forward`s (this crate's errors)
// stay what method calls find first.

impl candle_core::Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Ok(Linear::forward(self, xs)?)
    }
}

impl candle_core::Module for Embedding {
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        Ok(Embedding::forward(self, ids)?)
    }
}

/// Dropout is candle's `ModuleT`: `train` says whether it drops (its own mode is not used).
impl candle_core::ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let active = train && self.p > 0.0;
        candle_nn::Dropout::new(self.p).forward(xs, active)
    }
}
