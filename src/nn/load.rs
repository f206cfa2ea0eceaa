//! Loading a state dict into a module: [`TorchModule::load_state_dict`], its two modes
//! ([`LoadMode`]) and its report of keys that did not match ([`IncompatibleKeys`]).

use std::collections::HashMap;
use std::fmt;

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::nn::device::same_location;
use crate::nn::module::TorchModule;
use crate::nn::repr::torch_size;
use crate::nn::state_dict::StateDict;
use crate::nn::walk::{apply, NewValue};

/// The keys a non-strict [`TorchModule::load_state_dict`] could not match (PyTorch's
/// `_IncompatibleKeys`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncompatibleKeys {
    /// Keys the module has but the state dict lacks; those tensors kept their values.
    pub missing_keys: Vec<String>,
    /// Keys the state dict has but the module does not; they were ignored.
    pub unexpected_keys: Vec<String>,
}

impl IncompatibleKeys {
    /// Whether every key matched.
    pub fn is_empty(&self) -> bool {
        self.missing_keys.is_empty() && self.unexpected_keys.is_empty()
    }
}

impl fmt::Display for IncompatibleKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("<All keys matched successfully>");
        }
        let list = |keys: &[String]| {
            let quoted: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
            format!("[{}]", quoted.join(", "))
        };
        write!(
            f,
            "_IncompatibleKeys(missing_keys={}, unexpected_keys={})",
            list(&self.missing_keys),
            list(&self.unexpected_keys)
        )
    }
}

/// How [`TorchModule::load_state_dict`] treats keys that do not match: PyTorch's `strict=True`
/// and `strict=False`, named so that a call says which it is.
///
/// ```
/// use understanding_buffers::prelude::*;
///
/// let with_buffer = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
/// let mut without = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false)?;
/// // `mask` is not a key of `without`: an error when strict, a report when not.
/// assert!(without.load_state_dict(&with_buffer.state_dict(), LoadMode::Strict).is_err());
/// let keys = without.load_state_dict(&with_buffer.state_dict(), LoadMode::NonStrict)?;
/// assert_eq!(keys.unexpected_keys, ["mask"]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoadMode {
    /// Every key of the module must be in the state dict and every key of the state dict in
    /// the module (PyTorch's default, `strict=True`).
    #[default]
    Strict,
    /// Missing and unexpected keys are reported in [`IncompatibleKeys`], not errors
    /// (`strict=False`). Shapes must still match.
    NonStrict,
}

impl LoadMode {
    /// Whether missing and unexpected keys are errors.
    pub fn is_strict(self) -> bool {
        self == Self::Strict
    }
}

/// What [`TorchModule::load_state_dict`] does (see there): every key and shape checked first,
/// then all of `state` stored, or nothing.
pub(crate) fn load_state_dict<M: TorchModule + ?Sized>(
    module: &mut M,
    state: &StateDict,
    mode: LoadMode,
) -> Result<IncompatibleKeys> {
    // Generic only here: a notebook cell that loads a module it defined compiles these lines
    // for that type, not the checks (see `nn::walk`).
    let (updates, keys) = plan_load(module.type_name(), &module.state_dict(), state, mode)?;
    apply(module, updates)?;
    Ok(keys)
}

/// The values `state` gives each key of `own` (every key and shape checked), and the keys
/// that do not match; an error for what `mode` does not allow.
fn plan_load(
    type_name: &str,
    own: &StateDict,
    state: &StateDict,
    mode: LoadMode,
) -> Result<(HashMap<String, NewValue>, IncompatibleKeys)> {
    let strict = mode.is_strict();
    let missing: Vec<String> = own
        .keys()
        .filter(|k| !state.contains_key(k))
        .map(String::from)
        .collect();
    let unexpected: Vec<String> = state
        .keys()
        .filter(|k| !own.contains_key(k))
        .map(String::from)
        .collect();
    let mut problems = Vec::new();
    let quote = |keys: &[String]| {
        keys.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if strict && !missing.is_empty() {
        problems.push(format!(
            "Missing key(s) in state_dict: {}. ",
            quote(&missing)
        ));
    }
    if strict && !unexpected.is_empty() {
        problems.push(format!(
            "Unexpected key(s) in state_dict: {}. ",
            quote(&unexpected)
        ));
    }
    let mut updates = HashMap::new();
    for (key, current) in own.iter() {
        let Some(loaded) = state.get(key) else {
            continue;
        };
        if loaded.dims() != current.dims() {
            problems.push(format!(
                "size mismatch for {key}: copying a param with shape {} from checkpoint, the shape in current model is {}.",
                torch_size(loaded.dims()),
                torch_size(current.dims())
            ));
            continue;
        }
        if problems.is_empty() {
            updates.insert(key.to_string(), NewValue::Tensor(conform(loaded, current)?));
        }
    }
    if !problems.is_empty() {
        return Err(Error::StateDict(format!(
            "Error(s) in loading state_dict for {type_name}:\n\t{}",
            problems.join("\n\t")
        )));
    }
    Ok((
        updates,
        IncompatibleKeys {
            missing_keys: missing,
            unexpected_keys: unexpected,
        },
    ))
}

/// `loaded` on the device and with the dtype of `current`.
fn conform(loaded: &Tensor, current: &Tensor) -> Result<Tensor> {
    let mut t = loaded.clone();
    if t.dtype() != current.dtype() {
        t = t.to_dtype(current.dtype())?;
    }
    if !same_location(t.device(), current.device()) {
        t = t.to_device(current.device())?;
    }
    Ok(t)
}
