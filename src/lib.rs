//! # understanding-buffers
//!
//! PyTorch's module semantics for [candle](https://github.com/huggingface/candle), made for
//! the Rust port of the "Understanding PyTorch Buffers" lesson of *Build a Large Language
//! Model (From Scratch)*:
//!
//! - a [`Registry`] of parameters and **buffers** (persistent or not), and the [`Module`]
//!   trait that walks it and a module's children: `named_parameters`, `named_buffers`,
//!   `state_dict`, `load_state_dict`, `to_device`, `to_dtype`, `train`, `eval`;
//! - [`StateDict`]s in PyTorch's order, printed as PyTorch prints them ([`repr`]);
//! - [`checkpoint`]s in safetensors and PyTorch `.pth` form;
//! - the two causal-attention modules of the lesson ([`attention`]) and the
//!   positional-encoding model of lesson 2 ([`positional`]);
//! - device selection and [`diagnostics`], [`plots`], and rich notebook output ([`display`]).
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
//! # Ok::<(), understanding_buffers::Error>(())
//! ```

pub mod attention;
pub mod checkpoint;
pub mod cost;
pub mod data;
pub mod device;
pub mod diagnostics;
pub mod display;
pub mod error;
pub mod init;
pub mod layers;
pub mod lesson_code;
pub mod module;
pub mod plots;
pub mod positional;
pub mod registry;
pub mod repr;
pub mod state_dict;

pub use data::{reference_file, scratch_dir};
pub use device::{best_device, device_name};
pub use error::{Error, Result};
pub use module::{IncompatibleKeys, Module};
pub use registry::{Registry, TensorKind};
pub use state_dict::StateDict;

/// Everything a lesson uses, in one import: `use understanding_buffers::prelude::*;`.
pub mod prelude {
    pub use crate::attention::{causal_mask, example_batch};
    pub use crate::attention::{CausalAttentionWithBuffer, CausalAttentionWithoutBuffers};
    pub use crate::data::{reference_file, scratch_dir};
    pub use crate::device::{best_device, device_name, device_summary, same_location};
    pub use crate::display::{lesson_setup, show_error, Show};
    pub use crate::positional::{sinusoidal_table, PositionalEncodingModel, TableStorage};
    pub use crate::repr::TensorRepr;
    pub use crate::{checkpoint, cost, lesson_code, plots};
    pub use crate::{Error, IncompatibleKeys, Module, Registry, Result, StateDict, TensorKind};
    pub use candle_core::{DType, Device, IndexOp, Tensor};
}
