//! The library: modules whose field types say what each field is, and everything a module
//! operation needs.
//!
//! - [`module`]: the [`Module`](module::Module) trait (PyTorch's `nn.Module` operations) and
//!   `#[derive(Module)]`;
//! - [`field`]: what each field type is to the module walk (parameter, buffer, plain field,
//!   child, configuration);
//! - [`param`] and [`buffer`]: the two tensor types a module owns;
//! - [`state_dict`]: named tensors in PyTorch's order;
//! - [`layers`]: `Linear`, `Embedding` and `Dropout`; [`list`]: `Vec`s, arrays and `Option`s
//!   of modules as fields (PyTorch's `ModuleList`);
//! - [`repr`]: tensors and state dicts printed exactly as PyTorch prints them;
//! - [`device`]: choosing and naming devices; [`init`]: seeded random tensors.

pub mod buffer;
pub mod device;
pub mod field;
pub mod init;
pub mod layers;
pub mod list;
pub mod module;
pub mod param;
pub mod repr;
pub mod state_dict;
