//! The building blocks the lessons' modules are made of: [`Linear`] and [`Embedding`],
//! registry-backed versions of PyTorch's `nn.Linear` and `nn.Embedding`.

use candle_core::{DType, Device, Tensor};

use crate::init::seeded_normal;
use crate::module::Module;
use crate::registry::Registry;
use crate::{Error, Result};

/// `y = x Wᵀ + b` with `W` of shape `(d_out, d_in)`, like PyTorch's `nn.Linear`: parameters
/// `weight` and, with `bias`, `bias`. Initialised uniformly in `±1/√d_in` (PyTorch's range;
/// candle's generator cannot be seeded, so load weights when values must be reproducible).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::{layers::Linear, Module};
///
/// let linear = Linear::new(3, 2, false)?;
/// let y = linear.forward(&Tensor::ones((4, 3), candle_core::DType::F32, &Device::Cpu)?)?;
/// assert_eq!(y.dims(), &[4, 2]);
/// assert_eq!(linear.state_dict().keys().collect::<Vec<_>>(), ["weight"]);
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Linear {
    registry: Registry,
    d_in: usize,
}

impl Linear {
    /// A linear layer on the CPU.
    pub fn new(d_in: usize, d_out: usize, bias: bool) -> Result<Self> {
        let bound = 1.0 / (d_in.max(1) as f64).sqrt();
        let mut registry = Registry::new();
        let weight = Tensor::rand(-bound as f32, bound as f32, (d_out, d_in), &Device::Cpu)?;
        registry.register_parameter("weight", weight)?;
        if bias {
            let b = Tensor::rand(-bound as f32, bound as f32, d_out, &Device::Cpu)?;
            registry.register_parameter("bias", b)?;
        }
        Ok(Self { registry, d_in })
    }

    /// Applies the layer to the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dims().last().copied().unwrap_or(0);
        if d != self.d_in {
            return Err(Error::Input(format!(
                "Linear expects inputs whose last dimension is {}, got shape {:?}",
                self.d_in,
                x.dims()
            )));
        }
        let weight = self.registry.parameter("weight")?;
        // Broadcast the weight over the batch dimensions so matmul sees matching ranks.
        let w = match *x.dims() {
            [b1, b2, _, _] => weight.broadcast_left((b1, b2))?.t()?,
            [b, _, _] => weight.broadcast_left(b)?.t()?,
            _ => weight.t()?,
        };
        let y = x.matmul(&w)?;
        match self.registry.parameter("bias") {
            Ok(bias) => Ok(y.broadcast_add(bias)?),
            Err(_) => Ok(y),
        }
    }
}

impl Module for Linear {
    fn type_name(&self) -> &'static str {
        "Linear"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
}

/// A lookup table of `vocab_size` vectors of size `dim`, like PyTorch's `nn.Embedding`:
/// parameter `weight`, initialised from a seed (standard normal, as PyTorch) so lessons
/// are reproducible.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::layers::Embedding;
///
/// let embedding = Embedding::new(10, 4, 7)?;
/// let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu)?;
/// assert_eq!(embedding.forward(&ids)?.dims(), &[1, 3, 4]);
/// assert!(embedding.forward(&Tensor::new(&[[10u32]], &Device::Cpu)?).is_err());
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Embedding {
    registry: Registry,
    vocab_size: usize,
    dim: usize,
}

impl Embedding {
    /// An embedding on the CPU with weights drawn from `seed`.
    pub fn new(vocab_size: usize, dim: usize, seed: u64) -> Result<Self> {
        let mut registry = Registry::new();
        registry.register_parameter(
            "weight",
            seeded_normal((vocab_size, dim), seed, &Device::Cpu)?,
        )?;
        Ok(Self {
            registry,
            vocab_size,
            dim,
        })
    }

    /// The vectors of `ids` (any shape, integer dtype): shape `ids.dims() + [dim]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        if ids.dtype().is_float() {
            return Err(Error::Input(format!(
                "token ids must have an integer dtype (U32, I64, U8), got {:?}",
                ids.dtype()
            )));
        }
        let max = ids
            .flatten_all()?
            .to_dtype(DType::I64)?
            .max(0)?
            .to_scalar::<i64>();
        if let Ok(max) = max {
            if max < 0 || max as usize >= self.vocab_size {
                return Err(Error::Input(format!(
                    "token id {max} is out of range: the embedding has {} rows (valid ids are 0 to {})",
                    self.vocab_size,
                    self.vocab_size.saturating_sub(1)
                )));
            }
        }
        let weight = self.registry.parameter("weight")?;
        let mut dims = ids.dims().to_vec();
        dims.push(self.dim);
        let flat = ids.flatten_all()?.to_device(weight.device())?;
        Ok(weight.index_select(&flat, 0)?.reshape(dims)?)
    }
}

impl Module for Embedding {
    fn type_name(&self) -> &'static str {
        "Embedding"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
}
