//! # understanding-buffers
//!
//! PyTorch's module semantics for [candle](https://github.com/huggingface/candle):
//! parameters, **buffers** (persistent or not) and child modules registered by name and in
//! order; state dicts in PyTorch's order; moves and casts that follow the module;
//! checkpoints in safetensors and PyTorch `.pth` form; device diagnostics; and the two
//! causal-attention modules of the "Understanding PyTorch Buffers" lesson.

pub mod checkpoint;
pub mod display;
pub mod error;
pub mod plots;
pub mod repr;
pub mod state_dict;

pub use error::{Error, Result};
pub use state_dict::StateDict;
