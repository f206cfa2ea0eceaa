//! Lesson 2: sinusoidal positional encodings, a buffer in practice.
//!
//! The table `PE[pos, 2i] = sin(pos / 10000^(2i/d))`, `PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`
//! is fixed maths: it needs no gradient, but it must live on the model's device and in the
//! model's dtype. The article's model — a token embedding plus the table — comes here in three
//! versions that differ in one line, the `pe` field: a [`Buffer`]
//! ([`PositionalEncodingWithBuffer`]), a buffer the state dict leaves out
//! ([`PositionalEncodingWithNonPersistentBuffer`]), and a plain `Tensor`
//! ([`PositionalEncodingWithPlainField`]), which a cast to bf16 leaves in f32, so that the
//! forward pass fails with candle's dtype-mismatch error.

// `sinusoidal_table(..)?.into()` builds either field type (see attention.rs).
#![allow(clippy::useless_conversion)]

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::buffer::Buffer;
use crate::nn::layers::Embedding;
use crate::nn::module::Module;

/// The sinusoidal positional-encoding table, shape `(max_len, d_model)`, f32 on the CPU.
///
/// ```
/// let pe = understanding_buffers::lesson::positional::sinusoidal_table(4, 6)?;
/// assert_eq!(pe.dims(), &[4, 6]);
/// let row0 = pe.get(0)?.to_vec1::<f32>()?;
/// assert_eq!(row0, [0., 1., 0., 1., 0., 1.]); // sin(0) = 0, cos(0) = 1
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
// lesson: sinusoidal_table
pub fn sinusoidal_table(max_len: usize, d_model: usize) -> Result<Tensor> {
    let mut values = Vec::with_capacity(max_len * d_model);
    for pos in 0..max_len {
        for dim in 0..d_model {
            let pair = (dim / 2) as f64;
            let angle = pos as f64 / 10000f64.powf(2.0 * pair / d_model as f64);
            values.push(if dim % 2 == 0 {
                angle.sin()
            } else {
                angle.cos()
            } as f32);
        }
    }
    Ok(Tensor::from_vec(values, (max_len, d_model), &Device::Cpu)?)
}
// lesson: end

/// Checks `ids` is `(batch, seq_len)` with no more positions than the table covers, and
/// returns `seq_len`.
fn check_ids(ids: &Tensor, table: &Tensor) -> Result<usize> {
    let &[_, seq_len] = ids.dims() else {
        return Err(Error::Input(format!(
            "expected token ids of shape (batch, seq_len), got shape {:?}",
            ids.dims()
        )));
    };
    let max_len = table.dims().first().copied().unwrap_or(0);
    if seq_len > max_len {
        return Err(Error::Input(format!(
            "input has {seq_len} tokens but the positional-encoding table covers {max_len} (max_len = {max_len})"
        )));
    }
    Ok(seq_len)
}

/// Token embedding (a parameter) plus the table **as a buffer**: moved, cast and saved
/// with the model. `forward(ids) = embedding(ids) + pe[:seq_len]`.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::{lesson::positional::PositionalEncodingWithBuffer, nn::TorchModule};
///
/// let mut model = PositionalEncodingWithBuffer::new(100, 16, 50, 0)?;
/// assert_eq!(model.state_dict().keys().collect::<Vec<_>>(), ["pe", "embedding.weight"]);
/// model.to_dtype(DType::BF16)?;
/// let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu)?;
/// assert_eq!(model.forward(&ids)?.dtype(), DType::BF16);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
// lesson: PositionalEncodingWithBuffer
#[derive(Clone, Debug, Module)]
pub struct PositionalEncodingWithBuffer {
    pub embedding: Embedding,
    pub pe: Buffer,
}

impl PositionalEncodingWithBuffer {
    /// A model on the CPU for `vocab_size` tokens of dimension `d_model`, up to `max_len`
    /// positions; the embedding's weights are drawn from `seed`.
    pub fn new(vocab_size: usize, d_model: usize, max_len: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            embedding: Embedding::new(vocab_size, d_model, seed)?,
            pe: sinusoidal_table(max_len, d_model)?.into(),
        })
    }

    /// Embeddings plus positions for token ids of shape `(batch, seq_len)`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let seq_len = check_ids(ids, &self.pe)?;
        let embedded = self.embedding.forward(ids)?;
        Ok(embedded.broadcast_add(&self.pe.narrow(0, 0, seq_len)?)?)
    }
}
// lesson: end

// lesson: PositionalEncodingWithNonPersistentBuffer
/// Token embedding plus the table **as a non-persistent buffer**: moved and cast with the
/// model, not saved; every new model recomputes it.
#[derive(Clone, Debug, Module)]
pub struct PositionalEncodingWithNonPersistentBuffer {
    pub embedding: Embedding,
    #[module(persistent = false)]
    pub pe: Buffer,
}

impl PositionalEncodingWithNonPersistentBuffer {
    /// A model on the CPU for `vocab_size` tokens of dimension `d_model`, up to `max_len`
    /// positions; the embedding's weights are drawn from `seed`.
    pub fn new(vocab_size: usize, d_model: usize, max_len: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            embedding: Embedding::new(vocab_size, d_model, seed)?,
            pe: sinusoidal_table(max_len, d_model)?.into(),
        })
    }

    /// Embeddings plus positions for token ids of shape `(batch, seq_len)`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let seq_len = check_ids(ids, &self.pe)?;
        let embedded = self.embedding.forward(ids)?;
        Ok(embedded.broadcast_add(&self.pe.narrow(0, 0, seq_len)?)?)
    }
}
// lesson: end

// lesson: PositionalEncodingWithPlainField
/// Token embedding plus the table **in a plain field**: neither moved, nor cast, nor saved.
#[derive(Clone, Debug, Module)]
pub struct PositionalEncodingWithPlainField {
    pub embedding: Embedding,
    pub pe: Tensor,
}

impl PositionalEncodingWithPlainField {
    /// A model on the CPU for `vocab_size` tokens of dimension `d_model`, up to `max_len`
    /// positions; the embedding's weights are drawn from `seed`.
    pub fn new(vocab_size: usize, d_model: usize, max_len: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            embedding: Embedding::new(vocab_size, d_model, seed)?,
            pe: sinusoidal_table(max_len, d_model)?.into(),
        })
    }

    /// Embeddings plus positions for token ids of shape `(batch, seq_len)`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let seq_len = check_ids(ids, &self.pe)?;
        let embedded = self.embedding.forward(ids)?;
        Ok(embedded.broadcast_add(&self.pe.narrow(0, 0, seq_len)?)?)
    }
}
// lesson: end

// candle's `Module`: token ids in, embeddings plus positions out (`ids.apply(&model)`).
macro_rules! candle_module {
    ($($t:ty),*) => {$(
        impl candle_core::Module for $t {
            fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
                Ok(<$t>::forward(self, ids)?)
            }
        }
    )*};
}

candle_module!(
    PositionalEncodingWithBuffer,
    PositionalEncodingWithNonPersistentBuffer,
    PositionalEncodingWithPlainField
);
