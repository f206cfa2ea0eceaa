//! # understanding-buffers
//!
//! PyTorch's module semantics for [candle](https://github.com/huggingface/candle), made for
//! the Rust port of the "Understanding PyTorch Buffers" lesson of *Build a Large Language
//! Model (From Scratch)*. Four parts, one folder each:
//!
//! - [`nn`]: the library (PyTorch's `torch.nn`). Modules whose field types say what each
//!   field is — a [`Param`](nn::Param) is trained, a [`Buffer`](nn::Buffer) moves and
//!   saves with the module, a plain `Tensor` does neither — and `#[derive(Module)]`, which
//!   gives a struct the [`TorchModule`](nn::TorchModule) trait: `named_parameters`,
//!   `named_buffers`, `state_dict`, `load_state_dict`, `to_device`, `to_dtype`, `train`,
//!   `eval`. State dicts in PyTorch's order, layers, devices.
//! - [`checkpoint`]: state dicts saved and loaded as safetensors and PyTorch `.pth` files.
//! - [`lesson`]: the lesson's models — the two causal-attention modules, the
//!   positional-encoding models of lesson 2, the cost of a mask — and its example data.
//! - [`notebook`]: what a notebook shows — tensors printed as PyTorch prints them, rich
//!   output, device and gradient reports, the lesson's own code, plots.
//!
//! ```
//! use understanding_buffers::prelude::*;
//!
//! let with_buffer = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
//! let without = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false)?;
//! assert_eq!(
//!     with_buffer.state_dict().keys().collect::<Vec<_>>(),
//!     ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
//! );
//! assert!(!without.state_dict().contains_key("mask"));
//! # Ok::<(), understanding_buffers::error::Error>(())
//! ```

// `#[derive(Module)]` names this crate `::understanding_buffers`, inside it too.
extern crate self as understanding_buffers;

pub mod checkpoint;
pub mod error;
#[cfg(feature = "lessons")]
pub mod lesson;
pub mod nn;
#[cfg(feature = "notebook")]
pub mod notebook;

// The error type is also at the crate root, where Rust users look for it first.
pub use error::{Error, Result};

/// Everything a lesson uses, in one import: `use understanding_buffers::prelude::*;`.
///
/// It can be glob-imported beside `use candle_nn::*;`: the only names both bring are
/// candle's own items (`Optimizer`, `SGD`), except the layers `Linear`, `Embedding` and
/// `Dropout`, which both crates have, as PyTorch and candle do; in a file that imports both,
/// name the one you mean (`candle_nn::Linear`, or `use understanding_buffers::nn::Linear;`,
/// which wins over both globs).
pub mod prelude {
    pub use crate::checkpoint::{self, Checkpoint};
    pub use crate::nn::buffer::Buffer;
    pub use crate::nn::device::{best_device, device_name, same_location};
    pub use crate::nn::layers::{Dropout, Embedding, Linear};
    pub use crate::nn::load::{IncompatibleKeys, LoadMode};
    // The trait is `TorchModule` and the derive `Module`: candle's `Module` trait, which
    // `use candle_nn::*` brings, is another item (derive macros have a namespace of their own).
    pub use crate::error::{Error, Result};
    #[cfg(feature = "lessons")]
    pub use crate::lesson::attention::{causal_mask, masked_fill, replace_value};
    #[cfg(feature = "lessons")]
    pub use crate::lesson::attention::{CausalAttentionWithBuffer, CausalAttentionWithoutBuffers};
    #[cfg(feature = "lessons")]
    pub use crate::lesson::cost;
    #[cfg(feature = "lessons")]
    pub use crate::lesson::data::{example_batch, reference_file, scratch_dir};
    #[cfg(feature = "lessons")]
    pub use crate::lesson::exercises;
    #[cfg(feature = "lessons")]
    pub use crate::lesson::positional::{
        sinusoidal_table, PositionalEncodingWithBuffer, PositionalEncodingWithNonPersistentBuffer,
        PositionalEncodingWithPlainField,
    };
    #[cfg(feature = "lessons")]
    pub use crate::lesson::timing::{compare_mask_strategies, MaskTimings};
    pub use crate::nn::module::{Module, TensorKind, TorchModule};
    pub use crate::nn::param::Param;
    pub use crate::nn::repr::TensorRepr;
    pub use crate::nn::state_dict::StateDict;
    #[cfg(feature = "notebook")]
    pub use crate::notebook::diagnostics::Diagnose;
    #[cfg(feature = "notebook")]
    pub use crate::notebook::display::{lesson_setup, show_error, Show};
    #[cfg(feature = "notebook")]
    pub use crate::notebook::language::{tr, Language};
    #[cfg(feature = "notebook")]
    pub use crate::notebook::names::names;
    #[cfg(feature = "notebook")]
    pub use crate::notebook::table::{Column, Table};
    #[cfg(feature = "notebook")]
    pub use crate::notebook::text::{device_summary, kind_name};
    #[cfg(feature = "notebook")]
    pub use crate::notebook::{lesson_code, plots};
    pub use candle_core::{DType, Device, IndexOp, Tensor, D};
    pub use candle_nn::ops::softmax;
    // What `parameters()` is for: an optimizer takes the module's parameters, never its buffers.
    pub use candle_nn::{Optimizer, SGD};
    // candle itself, by its own names: `candle_core::Tensor`, `candle_nn::ops::sigmoid`, … in
    // code (a notebook cell) whose crate depends on this one only.
    pub use candle_core;
    pub use candle_nn;
}
