//! # understanding-buffers
//!
//! PyTorch's module semantics for [candle](https://github.com/huggingface/candle), made for
//! the Rust port of the "Understanding PyTorch Buffers" lesson of *Build a Large Language
//! Model (From Scratch)*:
//!
//! - modules whose field types say what each field is — a [`param::Param`] is trained, a
//!   [`buffer::Buffer`] moves and saves with the module, a plain `Tensor` does neither — and
//!   `#[derive(Module)]`, which gives a struct the [`module::Module`] trait: `named_parameters`,
//!   `named_buffers`, `state_dict`, `load_state_dict`, `to_device`, `to_dtype`, `train`,
//!   `eval`;
//! - [`state_dict::StateDict`]s in PyTorch's order, printed as PyTorch prints them ([`repr`]);
//! - [`checkpoint`]s in safetensors and PyTorch `.pth` form;
//! - the two causal-attention modules of the lesson ([`attention`]) and the
//!   positional-encoding models of lesson 2 ([`positional`]);
//! - device selection, [`diagnostics`] and gradient reports, [`plots`], and rich notebook
//!   output ([`display`]).
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

pub mod attention;
pub mod buffer;
pub mod checkpoint;
pub mod cost;
pub mod data;
pub mod device;
pub mod diagnostics;
pub mod display;
pub mod error;
pub mod field;
pub mod init;
pub mod layers;
pub mod lesson_code;
pub mod module;
pub mod param;
pub mod plots;
pub mod positional;
pub mod repr;
pub mod state_dict;
pub mod text;

// The error type is also at the crate root, where Rust users look for it first.
pub use error::{Error, Result};

/// Everything a lesson uses, in one import: `use understanding_buffers::prelude::*;`.
pub mod prelude {
    pub use crate::attention::{causal_mask, masked_fill};
    pub use crate::attention::{CausalAttentionWithBuffer, CausalAttentionWithoutBuffers};
    pub use crate::buffer::Buffer;
    pub use crate::checkpoint::{self, Checkpoint};
    pub use crate::data::{example_batch, reference_file, scratch_dir};
    pub use crate::device::{best_device, device_name, device_summary, same_location};
    pub use crate::diagnostics::Diagnose;
    pub use crate::display::{lesson_setup, show_error, Show};
    pub use crate::error::{Error, Result};
    pub use crate::field::TensorKind;
    pub use crate::layers::{Dropout, Embedding, Linear};
    pub use crate::module::{IncompatibleKeys, Module};
    pub use crate::param::Param;
    pub use crate::positional::{
        sinusoidal_table, PositionalEncodingWithBuffer, PositionalEncodingWithNonPersistentBuffer,
        PositionalEncodingWithPlainField,
    };
    pub use crate::repr::TensorRepr;
    pub use crate::state_dict::StateDict;
    pub use crate::{cost, lesson_code, plots};
    pub use candle_core::{DType, Device, IndexOp, Tensor};
}
