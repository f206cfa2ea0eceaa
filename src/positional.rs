//! Lesson 2: sinusoidal positional encodings, a buffer in practice.
//!
//! The table `PE[pos, 2i] = sin(pos / 10000^(2i/d))`, `PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`
//! is fixed maths: it needs no gradient, but it must live on the model's device and in the
//! model's dtype. Registered as a buffer it follows the model; kept in a plain field it does
//! not, and a model cast to bf16 then fails with candle's dtype-mismatch error.

use candle_core::{Device, Tensor};

use crate::layers::Embedding;
use crate::module::Module;
use crate::registry::Registry;
use crate::{Error, Result};

/// The sinusoidal positional-encoding table, shape `(max_len, d_model)`, f32 on the CPU.
///
/// ```
/// let pe = understanding_buffers::positional::sinusoidal_table(4, 6)?;
/// assert_eq!(pe.dims(), &[4, 6]);
/// let row0 = pe.get(0)?.to_vec1::<f32>()?;
/// assert_eq!(row0, [0., 1., 0., 1., 0., 1.]); // sin(0) = 0, cos(0) = 1
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
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

/// Where [`PositionalEncodingModel`] keeps its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableStorage {
    /// `register_buffer("pe", table)`: moved, cast and saved with the model.
    Buffer,
    /// `register_buffer("pe", table, persistent=False)`: moved and cast, not saved; every
    /// new model recomputes it.
    NonPersistentBuffer,
    /// A plain struct field: neither moved, nor cast, nor saved.
    PlainField,
}

/// Token embedding (a parameter) plus a sinusoidal positional-encoding table, as in the
/// article's example: `forward(ids) = embedding(ids) + pe[:seq_len]`.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::{Module, positional::{PositionalEncodingModel, TableStorage}};
///
/// let mut model = PositionalEncodingModel::new(100, 16, 50, TableStorage::Buffer, 0)?;
/// assert_eq!(model.state_dict().keys().collect::<Vec<_>>(), ["pe", "embedding.weight"]);
/// model.to_dtype(DType::BF16)?;
/// let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu)?;
/// assert_eq!(model.forward(&ids)?.dtype(), DType::BF16);
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PositionalEncodingModel {
    registry: Registry,
    embedding: Embedding,
    storage: TableStorage,
    max_len: usize,
    /// The table when it is a plain field (`TableStorage::PlainField`).
    plain_pe: Option<Tensor>,
}

impl PositionalEncodingModel {
    /// A model on the CPU for `vocab_size` tokens of dimension `d_model`, up to `max_len`
    /// positions; the embedding's weights are drawn from `seed`.
    pub fn new(
        vocab_size: usize,
        d_model: usize,
        max_len: usize,
        storage: TableStorage,
        seed: u64,
    ) -> Result<Self> {
        let pe = sinusoidal_table(max_len, d_model)?;
        let mut registry = Registry::new();
        let plain_pe = match storage {
            TableStorage::Buffer => registry.register_buffer("pe", pe, true).map(|_| None)?,
            TableStorage::NonPersistentBuffer => {
                registry.register_buffer("pe", pe, false).map(|_| None)?
            }
            TableStorage::PlainField => Some(pe),
        };
        Ok(Self {
            registry,
            embedding: Embedding::new(vocab_size, d_model, seed)?,
            storage,
            max_len,
            plain_pe,
        })
    }

    /// Where the table is kept.
    pub fn storage(&self) -> TableStorage {
        self.storage
    }

    /// The positional-encoding table, wherever it is kept.
    pub fn table(&self) -> Result<&Tensor> {
        match &self.plain_pe {
            Some(pe) => Ok(pe),
            None => self.registry.buffer("pe"),
        }
    }

    /// Embeddings plus positions for token ids of shape `(batch, seq_len)`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let &[_, seq_len] = ids.dims() else {
            return Err(Error::Input(format!(
                "expected token ids of shape (batch, seq_len), got shape {:?}",
                ids.dims()
            )));
        };
        if seq_len > self.max_len {
            return Err(Error::Input(format!(
                "input has {seq_len} tokens but the positional-encoding table covers {} (max_len = {})",
                self.max_len, self.max_len
            )));
        }
        let embedded = self.embedding.forward(ids)?;
        let positions = self.table()?.narrow(0, 0, seq_len)?;
        Ok(embedded.broadcast_add(&positions)?)
    }
}

impl Module for PositionalEncodingModel {
    fn type_name(&self) -> &'static str {
        "PositionalEncodingModel"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
    fn children(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![("embedding", &self.embedding)]
    }
    fn children_mut(&mut self) -> Vec<(&'static str, &mut dyn Module)> {
        vec![("embedding", &mut self.embedding)]
    }
    fn plain_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        self.plain_pe.iter().map(|pe| ("pe", pe)).collect()
    }
}
