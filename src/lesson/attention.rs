//! The two causal-attention modules of the lesson, side by side.
//!
//! Both compute the same thing (chapter 3 of *Build a Large Language Model (From Scratch)*):
//! project `x` to queries, keys and values; score every query against every key; hide the
//! future by setting the scores to −∞ wherever the mask is nonzero; softmax of
//! `scores / √d_k`; dropout; times the values.
//!
//! They differ in one line: the type of the `mask` field. In
//! [`CausalAttentionWithoutBuffers`] it is a plain `Tensor`, so moving the module to a GPU
//! leaves the mask behind on the CPU and the forward pass fails with candle's
//! device-mismatch error. In [`CausalAttentionWithBuffer`] it is a [`Buffer`], so it moves,
//! casts and saves with the module. Everything else, the `forward` code included, is the
//! same text in both (`lesson_code::difference` shows it, and a test checks it).

// `causal_mask(..)?.into()` builds either mask field, so that the constructors are the same
// text too; for the plain `Tensor` field the conversion is the identity.
#![allow(clippy::useless_conversion)]

use candle_core::{Device, IndexOp, Tensor, D};

use crate::error::{Error, Result};
use crate::nn::buffer::Buffer;
use crate::nn::layers::{Dropout, Linear};
use crate::nn::module::{Module, TorchModule};

/// The causal mask of `context_length` tokens: `triu(ones(T, T), diagonal=1)`, f32 on the
/// CPU. A 1 at `[i, j]` hides token `j` from token `i` (`j > i`: the future).
///
/// ```
/// let mask = understanding_buffers::lesson::attention::causal_mask(3)?;
/// assert_eq!(mask.to_vec2::<f32>()?, [[0., 1., 1.], [0., 0., 1.], [0., 0., 0.]]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn causal_mask(context_length: usize) -> Result<Tensor> {
    let n = context_length;
    let values: Vec<f32> = (0..n * n)
        .map(|i| if i % n > i / n { 1.0 } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(values, (n, n), &Device::Cpu)?)
}

/// PyTorch's `scores.masked_fill(mask.bool()[:n, :n], value)`, with `n` the number of
/// tokens (the scores' last dimension): `value` wherever the top-left `n × n` corner of
/// `mask` is nonzero, the scores elsewhere.
///
/// The mask is read where it lives: a mask on the CPU meets scores on a GPU in candle's
/// `where_cond`, which fails with candle's own device-mismatch error, as PyTorch's
/// `masked_fill_` does.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::lesson::attention::{causal_mask, masked_fill};
///
/// let scores = Tensor::new(&[[[1f32, 2.], [3., 4.]]], &Device::Cpu)?;
/// let filled = masked_fill(&scores, &causal_mask(4)?, f32::NEG_INFINITY)?;
/// assert_eq!(filled.to_vec3::<f32>()?, [[[1., f32::NEG_INFINITY], [3., 4.]]]);
/// assert!(masked_fill(&scores, &causal_mask(1)?, 0.0).is_err()); // 2 tokens, mask of 1
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn masked_fill(scores: &Tensor, mask: &Tensor, value: f32) -> Result<Tensor> {
    let tokens = scores.dim(D::Minus1)?;
    let covered = mask.dims().first().copied().unwrap_or(0);
    if mask.rank() != 2 || tokens > covered || tokens > mask.dim(1)? {
        return Err(Error::Input(format!(
            "input has {tokens} tokens but the mask covers {covered} \
             (context_length = {covered}); build the module with a larger context_length \
             or shorten the input"
        )));
    }
    let hidden = mask.i((..tokens, ..tokens))?.ne(0.0)?;
    let hidden = hidden.broadcast_as(scores.shape())?;
    let fill = Tensor::new(value, scores.device())?
        .to_dtype(scores.dtype())?
        .broadcast_as(scores.shape())?;
    Ok(hidden.where_cond(&fill, scores)?)
}

/// PyTorch's `t[t == old] = new`, as a new tensor: every element equal to `old` becomes
/// `new`, the others stay. Like PyTorch's, running it again changes nothing more.
///
/// ```
/// use understanding_buffers::prelude::*;
///
/// let mask = causal_mask(3)?;
/// let twos = replace_value(&mask, 1.0, 2.0)?; // PyTorch: mask[mask == 1.] = 2.
/// assert_eq!(twos.to_vec2::<f32>()?, [[0., 2., 2.], [0., 0., 2.], [0., 0., 0.]]);
/// assert_eq!(replace_value(&twos, 1.0, 2.0)?.to_vec2::<f32>()?, twos.to_vec2::<f32>()?);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn replace_value(tensor: &Tensor, old: f64, new: f64) -> Result<Tensor> {
    let hit = tensor.eq(old)?;
    let fill = Tensor::new(new, tensor.device())?
        .to_dtype(tensor.dtype())?
        .broadcast_as(tensor.shape())?;
    Ok(hit.where_cond(&fill, tensor)?)
}

/// Softmax over the last dimension, differentiable in both modes (candle's fused
/// `softmax_last_dim` has no backward pass, and evaluation mode must not make a module
/// non-differentiable: PyTorch's `eval()` changes dropout and batch norm, not autograd).
fn softmax(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::softmax(x, D::Minus1)?)
}

/// Checks `x` is `(batch, tokens, d_in)` and floating-point, says plainly what is wrong
/// otherwise (PyTorch only reports a failed matmul), and returns the number of tokens.
fn check_input(module: &str, x: &Tensor, d_in: usize) -> Result<usize> {
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
    if !x.dtype().is_float() {
        return Err(Error::Input(format!(
            "{module} expects a floating-point input, got {:?}",
            x.dtype()
        )));
    }
    Ok(tokens)
}

// lesson: CausalAttentionWithoutBuffers
/// Causal self-attention with its mask in a **plain field**: `to_device` leaves it on the
/// CPU and `state_dict` does not save it.
#[derive(Clone, Debug, Module)]
pub struct CausalAttentionWithoutBuffers {
    #[module(rename = "W_query")]
    pub w_query: Linear,
    #[module(rename = "W_key")]
    pub w_key: Linear,
    #[module(rename = "W_value")]
    pub w_value: Linear,
    pub dropout: Dropout,
    pub mask: Tensor, // PyTorch: self.mask = torch.triu(...)
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
        Ok(Self {
            w_query: Linear::new(d_in, d_out, qkv_bias)?,
            w_key: Linear::new(d_in, d_out, qkv_bias)?,
            w_value: Linear::new(d_in, d_out, qkv_bias)?,
            dropout: Dropout::new(dropout)?,
            mask: causal_mask(context_length)?.into(),
        })
    }

    /// Context vectors for `x` of shape `(batch, num_tokens, d_in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let attn_weights = self.attention_weights(x)?;
        let attn_weights = self.dropout.forward(&attn_weights)?;
        let values = self.w_value.forward(x)?;
        Ok(attn_weights.matmul(&values)?)
    }

    /// The attention weights (before dropout): `(batch, num_tokens, num_tokens)`.
    pub fn attention_weights(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self.type_name(), x, self.w_query.in_features())?;
        let keys = self.w_key.forward(x)?;
        let queries = self.w_query.forward(x)?;
        let attn_scores = queries.matmul(&keys.t()?)?;
        let attn_scores = masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)?;
        let d_k = keys.dim(D::Minus1)? as f64;
        softmax(&(attn_scores / d_k.sqrt())?)
    }
}
// lesson: end

// lesson: CausalAttentionWithBuffer
/// Causal self-attention with its mask **as a buffer**: it moves and casts with the module
/// and is saved in its state dict (key `mask`, first, as in PyTorch).
#[derive(Clone, Debug, Module)]
pub struct CausalAttentionWithBuffer {
    #[module(rename = "W_query")]
    pub w_query: Linear,
    #[module(rename = "W_key")]
    pub w_key: Linear,
    #[module(rename = "W_value")]
    pub w_value: Linear,
    pub dropout: Dropout,
    pub mask: Buffer, // PyTorch: self.register_buffer("mask", torch.triu(...))
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
        Ok(Self {
            w_query: Linear::new(d_in, d_out, qkv_bias)?,
            w_key: Linear::new(d_in, d_out, qkv_bias)?,
            w_value: Linear::new(d_in, d_out, qkv_bias)?,
            dropout: Dropout::new(dropout)?,
            mask: causal_mask(context_length)?.into(),
        })
    }

    /// Context vectors for `x` of shape `(batch, num_tokens, d_in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let attn_weights = self.attention_weights(x)?;
        let attn_weights = self.dropout.forward(&attn_weights)?;
        let values = self.w_value.forward(x)?;
        Ok(attn_weights.matmul(&values)?)
    }

    /// The attention weights (before dropout): `(batch, num_tokens, num_tokens)`.
    pub fn attention_weights(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self.type_name(), x, self.w_query.in_features())?;
        let keys = self.w_key.forward(x)?;
        let queries = self.w_query.forward(x)?;
        let attn_scores = queries.matmul(&keys.t()?)?;
        let attn_scores = masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)?;
        let d_k = keys.dim(D::Minus1)? as f64;
        softmax(&(attn_scores / d_k.sqrt())?)
    }
}
// lesson: end

// candle's `Module`: `xs.apply(&attention)` and `candle_nn::seq()` take the lesson's modules.

impl candle_core::Module for CausalAttentionWithoutBuffers {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Ok(CausalAttentionWithoutBuffers::forward(self, xs)?)
    }
}

impl candle_core::Module for CausalAttentionWithBuffer {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Ok(CausalAttentionWithBuffer::forward(self, xs)?)
    }
}
