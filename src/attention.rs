//! The two causal-attention modules of the lesson, side by side.
//!
//! Both compute the same thing (chapter 3 of *Build a Large Language Model (From Scratch)*):
//! project `x` to queries, keys and values; score every query against every key; hide the
//! future by setting the scores above the diagonal to −∞ wherever the mask is nonzero;
//! softmax of `scores / √d_k`; dropout; times the values.
//!
//! They differ in one line: where the causal mask lives.
//! [`CausalAttentionWithoutBuffers`] keeps it in a plain struct field, so moving the module
//! to a GPU leaves the mask behind on the CPU and the forward pass fails with candle's
//! device-mismatch error. [`CausalAttentionWithBuffer`] registers it as a buffer, so it moves,
//! casts and saves with the module.

use candle_core::{DType, Device, IndexOp, Tensor};

use crate::layers::Linear;
use crate::module::Module;
use crate::registry::Registry;
use crate::{Error, Result};

/// The causal mask of `context_length` tokens: `triu(ones(T, T), diagonal=1)`, f32 on the
/// CPU. A 1 at `[i, j]` hides token `j` from token `i` (`j > i`: the future).
///
/// ```
/// let mask = understanding_buffers::attention::causal_mask(3)?;
/// assert_eq!(mask.to_vec2::<f32>()?, [[0., 1., 1.], [0., 0., 1.], [0., 0., 0.]]);
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
pub fn causal_mask(context_length: usize) -> Result<Tensor> {
    let n = context_length;
    let values: Vec<f32> = (0..n * n)
        .map(|i| if i % n > i / n { 1.0 } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(values, (n, n), &Device::Cpu)?)
}

/// Checks `x` is `(batch, tokens, d_in)` with no more tokens than the mask covers, and says
/// plainly what is wrong otherwise (PyTorch only reports a failed broadcast).
fn check_input(module: &str, x: &Tensor, d_in: usize, context_length: usize) -> Result<()> {
    let &[_, tokens, d] = x.dims() else {
        return Err(Error::Input(format!(
            "{module} expects input of shape (batch, tokens, d_in) with d_in = {d_in}, got shape {:?} \
             (rank {}); a single sequence needs a batch dimension: x.unsqueeze(0)",
            x.dims(),
            x.rank()
        )));
    };
    if d != d_in {
        return Err(Error::Input(format!(
            "{module} was built with d_in = {d_in}, but the input's last dimension is {d} (shape {:?})",
            x.dims()
        )));
    }
    if tokens > context_length {
        return Err(Error::Input(format!(
            "input has {tokens} tokens but the mask covers {context_length} \
             (context_length = {context_length}); build the module with a larger context_length \
             or shorten the input"
        )));
    }
    if !x.dtype().is_float() {
        return Err(Error::Input(format!(
            "{module} expects a floating-point input, got {:?}",
            x.dtype()
        )));
    }
    Ok(())
}

/// The query, key and value projections both modules share (`W_query`, `W_key`, `W_value`).
#[derive(Clone, Debug)]
struct Projections {
    w_query: Linear,
    w_key: Linear,
    w_value: Linear,
}

impl Projections {
    fn new(d_in: usize, d_out: usize, qkv_bias: bool) -> Result<Self> {
        Ok(Self {
            w_query: Linear::new(d_in, d_out, qkv_bias)?,
            w_key: Linear::new(d_in, d_out, qkv_bias)?,
            w_value: Linear::new(d_in, d_out, qkv_bias)?,
        })
    }

    fn children(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![
            ("W_query", &self.w_query as &dyn Module),
            ("W_key", &self.w_key),
            ("W_value", &self.w_value),
        ]
    }

    fn children_mut(&mut self) -> Vec<(&'static str, &mut dyn Module)> {
        vec![
            ("W_query", &mut self.w_query as &mut dyn Module),
            ("W_key", &mut self.w_key),
            ("W_value", &mut self.w_value),
        ]
    }

    /// Causal attention weights of `x`: softmax over keys of the masked, scaled scores.
    /// In training mode the softmax is built from differentiable ops; in evaluation mode
    /// candle's fused `softmax_last_dim` (faster, but without a backward pass) is used.
    fn attention_weights(&self, x: &Tensor, mask: &Tensor, training: bool) -> Result<Tensor> {
        let queries = self.w_query.forward(x)?;
        let keys = self.w_key.forward(x)?;
        let (_, tokens, d_k) = keys.dims3()?;
        let scores = queries.matmul(&keys.t()?)?;
        // PyTorch: scores.masked_fill_(mask.bool()[:tokens, :tokens], -inf). The mask stays
        // wherever it lives, so a mask left on the CPU meets GPU scores in `where_cond`.
        let hidden = mask.i((..tokens, ..tokens))?.ne(0.0)?;
        let hidden = hidden.broadcast_as(scores.shape())?;
        let minus_inf = Tensor::new(f32::NEG_INFINITY, scores.device())?
            .to_dtype(scores.dtype())?
            .broadcast_as(scores.shape())?;
        let scores = hidden.where_cond(&minus_inf, &scores)?;
        let scaled = (scores / (d_k as f64).sqrt())?;
        if training {
            Ok(candle_nn::ops::softmax(&scaled, candle_core::D::Minus1)?)
        } else {
            Ok(candle_nn::ops::softmax_last_dim(&scaled)?)
        }
    }

    /// The context vectors: dropout of the attention weights (in training), times values.
    fn forward(&self, x: &Tensor, mask: &Tensor, dropout: f32, training: bool) -> Result<Tensor> {
        let mut weights = self.attention_weights(x, mask, training)?;
        if training && dropout > 0.0 {
            weights = candle_nn::ops::dropout(&weights, dropout)?;
        }
        let values = self.w_value.forward(x)?;
        Ok(weights.matmul(&values)?)
    }
}

fn check_dropout(dropout: f32) -> Result<()> {
    if !(0.0..1.0).contains(&dropout) {
        return Err(Error::Input(format!(
            "dropout must be in [0, 1), got {dropout}"
        )));
    }
    Ok(())
}

// lesson: CausalAttentionWithoutBuffers
/// Causal self-attention with its mask in a **plain field**: the registry never sees the
/// mask, so `to_device` leaves it on the CPU and `state_dict` does not save it.
#[derive(Clone, Debug)]
pub struct CausalAttentionWithoutBuffers {
    registry: Registry,
    projections: Projections,
    d_in: usize,
    context_length: usize,
    dropout: f32,
    /// The causal mask, a plain field (PyTorch: `self.mask = torch.triu(...)`).
    pub mask: Tensor,
}

impl CausalAttentionWithoutBuffers {
    /// Builds the module on the CPU, as PyTorch does; move it with `to_device`.
    pub fn new(
        d_in: usize,
        d_out: usize,
        context_length: usize,
        dropout: f32,
        qkv_bias: bool,
    ) -> Result<Self> {
        check_dropout(dropout)?;
        Ok(Self {
            registry: Registry::new(),
            projections: Projections::new(d_in, d_out, qkv_bias)?,
            d_in,
            context_length,
            dropout,
            mask: causal_mask(context_length)?, // a plain field: invisible to the registry
        })
    }

    /// Context vectors for `x` of shape `(batch, tokens, d_in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self.type_name(), x, self.d_in, self.context_length)?;
        let training = self.is_training();
        self.projections
            .forward(x, &self.mask, self.dropout, training)
    }
}
// lesson: end

// lesson: CausalAttentionWithBuffer
/// Causal self-attention with its mask **registered as a buffer**: it moves and casts with
/// the module and is saved in its state dict (key `mask`, first, as in PyTorch).
#[derive(Clone, Debug)]
pub struct CausalAttentionWithBuffer {
    registry: Registry,
    projections: Projections,
    d_in: usize,
    context_length: usize,
    dropout: f32,
}

impl CausalAttentionWithBuffer {
    /// Builds the module on the CPU, as PyTorch does; move it with `to_device`.
    pub fn new(
        d_in: usize,
        d_out: usize,
        context_length: usize,
        dropout: f32,
        qkv_bias: bool,
    ) -> Result<Self> {
        check_dropout(dropout)?;
        let mut registry = Registry::new();
        registry.register_buffer("mask", causal_mask(context_length)?, true)?; // the one line that differs
        Ok(Self {
            registry,
            projections: Projections::new(d_in, d_out, qkv_bias)?,
            d_in,
            context_length,
            dropout,
        })
    }

    /// Context vectors for `x` of shape `(batch, tokens, d_in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self.type_name(), x, self.d_in, self.context_length)?;
        let training = self.is_training();
        let mask = self.registry.buffer("mask")?;
        self.projections.forward(x, mask, self.dropout, training)
    }
}
// lesson: end

impl CausalAttentionWithoutBuffers {
    /// The attention weights (before dropout) for `x`: a `(batch, tokens, tokens)` tensor.
    pub fn attention_weights(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self.type_name(), x, self.d_in, self.context_length)?;
        self.projections
            .attention_weights(x, &self.mask, self.is_training())
    }
}

impl CausalAttentionWithBuffer {
    /// The attention weights (before dropout) for `x`: a `(batch, tokens, tokens)` tensor.
    pub fn attention_weights(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self.type_name(), x, self.d_in, self.context_length)?;
        self.projections
            .attention_weights(x, self.registry.buffer("mask")?, self.is_training())
    }
}

impl Module for CausalAttentionWithoutBuffers {
    fn type_name(&self) -> &'static str {
        "CausalAttentionWithoutBuffers"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
    fn children(&self) -> Vec<(&'static str, &dyn Module)> {
        self.projections.children()
    }
    fn children_mut(&mut self) -> Vec<(&'static str, &mut dyn Module)> {
        self.projections.children_mut()
    }
    fn plain_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("mask", &self.mask)]
    }
}

impl Module for CausalAttentionWithBuffer {
    fn type_name(&self) -> &'static str {
        "CausalAttentionWithBuffer"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
    fn children(&self) -> Vec<(&'static str, &dyn Module)> {
        self.projections.children()
    }
    fn children_mut(&mut self) -> Vec<(&'static str, &mut dyn Module)> {
        self.projections.children_mut()
    }
}

/// The six-token example of the lesson, "Your journey starts with one step", as 3-d
/// embeddings, stacked twice into a batch of shape `(2, 6, 3)` on `device`.
///
/// ```
/// let batch = understanding_buffers::attention::example_batch(&candle_core::Device::Cpu)?;
/// assert_eq!(batch.dims(), &[2, 6, 3]);
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
pub fn example_batch(device: &Device) -> Result<Tensor> {
    let inputs = Tensor::new(
        &[
            [0.43f32, 0.15, 0.89], // Your     (x^1)
            [0.55, 0.87, 0.66],    // journey  (x^2)
            [0.57, 0.85, 0.64],    // starts   (x^3)
            [0.22, 0.58, 0.33],    // with     (x^4)
            [0.77, 0.25, 0.10],    // one      (x^5)
            [0.05, 0.80, 0.55],    // step     (x^6)
        ],
        device,
    )?;
    Ok(Tensor::stack(&[&inputs, &inputs], 0)?.to_dtype(DType::F32)?)
}
