//! The library: modules whose field types say what each field is, and everything a module
//! operation needs — PyTorch's `torch.nn`, for candle. The names a model uses are here
//! too: `use understanding_buffers::nn::{Linear, Module, Param, TorchModule};`.
//!
//! - [`module`]: the [`TorchModule`] trait (PyTorch's `nn.Module` operations), the field
//!   views it walks ([`FieldRef`], [`FieldMut`]) and `#[derive(Module)]`;
//! - [`field`]: what each field type is to the module walk (parameter, buffer, plain field,
//!   child, configuration);
//! - `walk` (private): the module walk, and the one way moves, casts and loads change a
//!   module;
//! - [`load`]: `load_state_dict`, [`LoadMode`] and [`IncompatibleKeys`];
//! - [`param`] and [`buffer`]: the two tensor types a module owns;
//! - [`state_dict`]: named tensors in PyTorch's order;
//! - [`layers`]: `Linear`, `Embedding` and `Dropout`; [`list`]: `Vec`s, arrays and `Option`s
//!   of modules as fields (PyTorch's `ModuleList`);
//! - [`repr`]: tensors, state dicts and modules printed exactly as PyTorch prints them;
//! - [`device`]: choosing and naming devices; [`init`]: seeded random tensors.

pub mod buffer;
pub mod device;
pub mod field;
pub mod init;
pub mod layers;
pub mod list;
pub mod load;
pub mod module;
pub mod param;
pub mod repr;
pub mod state_dict;
mod walk;

pub use buffer::Buffer;
pub use field::Field;
pub use layers::{Dropout, Embedding, Linear};
pub use load::{IncompatibleKeys, LoadMode};
pub use module::{FieldMut, FieldRef, Module, TensorKind, TorchModule};
pub use param::Param;
pub use state_dict::StateDict;
