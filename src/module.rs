//! [`Module`]: PyTorch's `nn.Module` semantics, walked over a [`Registry`] and child modules.
//!
//! A type implements the five required methods (its name, its registry, its children, the
//! plain tensor fields it wants diagnosed); every operation learners know from PyTorch —
//! `named_parameters`, `named_buffers`, `state_dict`, `load_state_dict`, `to_device`,
//! `to_dtype`, `train`, `eval` — is then one walk: own tensors first, then children in order.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use crate::device::{device_name, same_location};
use crate::diagnostics::DeviceReport;
use crate::registry::{Registry, TensorKind};
use crate::{checkpoint, Error, Result, StateDict};

/// The keys a non-strict [`Module::load_state_dict`] could not match (PyTorch's
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

/// PyTorch's way of printing a shape: `torch.Size([2, 3])`.
pub fn torch_size(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("torch.Size([{}])", dims.join(", "))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A module with parameters, buffers and children, as in PyTorch.
///
/// Implement the required methods; the provided ones do the rest. Children are listed in
/// registration order under the names PyTorch would use (`W_query`), so that state-dict
/// keys match PyTorch's (`W_query.weight`).
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::{Module, Registry};
///
/// struct Scale { registry: Registry }
/// impl Module for Scale {
///     fn type_name(&self) -> &'static str { "Scale" }
///     fn registry(&self) -> &Registry { &self.registry }
///     fn registry_mut(&mut self) -> &mut Registry { &mut self.registry }
/// }
///
/// let mut registry = Registry::new();
/// registry.register_parameter("weight", Tensor::ones(3, DType::F32, &Device::Cpu)?)?;
/// registry.register_buffer("running_max", Tensor::zeros(3, DType::F32, &Device::Cpu)?, true)?;
/// let mut scale = Scale { registry };
/// assert_eq!(scale.state_dict().keys().collect::<Vec<_>>(), ["weight", "running_max"]);
/// assert_eq!(scale.parameters().len(), 1); // what an optimizer gets: parameters only
/// scale.to_dtype(DType::F16)?;
/// assert_eq!(scale.buffer("running_max")?.dtype(), DType::F16);
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
pub trait Module {
    /// The type's name as PyTorch would print it, e.g. `CausalAttentionWithBuffer`.
    fn type_name(&self) -> &'static str;
    /// The module's own parameters and buffers.
    fn registry(&self) -> &Registry;
    /// The module's own parameters and buffers, mutably.
    fn registry_mut(&mut self) -> &mut Registry;
    /// Child modules with their names, in registration order.
    fn children(&self) -> Vec<(&'static str, &dyn Module)> {
        Vec::new()
    }
    /// Child modules with their names, mutably, in the same order as [`Module::children`].
    fn children_mut(&mut self) -> Vec<(&'static str, &mut dyn Module)> {
        Vec::new()
    }
    /// Tensors kept in plain struct fields. They are listed for [`Module::diagnostics`]
    /// only: they are never moved, cast or saved, which is the point of the lesson.
    fn plain_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        Vec::new()
    }

    /// Calls `f(full_name, tensor, kind)` for every tensor of this module and its children:
    /// own parameters, own buffers, own plain fields, then each child in order.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, TensorKind)) {
        for (name, tensor, kind) in self.registry().own_tensors() {
            f(join(prefix, name), tensor, kind);
        }
        for (name, tensor) in self.plain_tensors() {
            f(join(prefix, name), tensor, TensorKind::PlainField);
        }
        for (name, child) in self.children() {
            child.visit(&join(prefix, name), f);
        }
    }

    /// Stores `updates` (full names to new values) into this module and its children.
    /// Names not in `updates` keep their tensors.
    fn apply_updates(&mut self, prefix: &str, updates: &mut HashMap<String, Tensor>) -> Result<()> {
        let own: Vec<String> = self
            .registry()
            .own_tensors()
            .map(|(name, _, _)| name.to_string())
            .collect();
        for name in own {
            if let Some(tensor) = updates.remove(&join(prefix, &name)) {
                self.registry_mut().replace(&name, tensor)?;
            }
        }
        for (name, child) in self.children_mut() {
            child.apply_updates(&join(prefix, name), updates)?;
        }
        Ok(())
    }

    /// Puts this module and its children in training (`true`) or evaluation mode.
    fn set_training(&mut self, training: bool) {
        self.registry_mut().set_training(training);
        for (_, child) in self.children_mut() {
            child.set_training(training);
        }
    }

    /// Training mode: dropout is active (PyTorch: `module.train()`).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode: dropout does nothing (PyTorch: `module.eval()`).
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Whether the module is in training mode.
    fn is_training(&self) -> bool {
        self.registry().is_training()
    }

    /// Every parameter, with dotted names (`W_query.weight`).
    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        collect_parameters(self.registry(), "", &mut out);
        for (name, child) in self.children() {
            for (n, v) in child.named_parameters() {
                out.push((join(name, &n), v));
            }
        }
        out
    }

    /// Every parameter: exactly what an optimizer should be handed (no buffers).
    fn parameters(&self) -> Vec<Var> {
        self.named_parameters()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Every buffer, persistent or not, with dotted names.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, tensor, kind| {
            if matches!(kind, TensorKind::Buffer | TensorKind::NonPersistentBuffer) {
                out.push((name, tensor.clone()));
            }
        });
        out
    }

    /// Every buffer, persistent or not.
    fn buffers(&self) -> Vec<Tensor> {
        self.named_buffers().into_iter().map(|(_, t)| t).collect()
    }

    /// The parameter with this dotted name.
    fn parameter(&self, name: &str) -> Result<Tensor> {
        self.named_parameters()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_tensor().clone())
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .named_parameters()
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                Error::Registry(format!(
                    "{} has no parameter {name:?}; its parameters are {known:?}",
                    self.type_name()
                ))
            })
    }

    /// The buffer with this dotted name.
    fn buffer(&self, name: &str) -> Result<Tensor> {
        let buffers = self.named_buffers();
        let known: Vec<&str> = buffers.iter().map(|(n, _)| n.as_str()).collect();
        match buffers.iter().find(|(n, _)| n == name) {
            Some((_, t)) => Ok(t.clone()),
            None => Err(Error::Registry(format!(
                "{} has no buffer {name:?}; its buffers are {known:?}",
                self.type_name()
            ))),
        }
    }

    /// Gives the buffer with this dotted name a new value (PyTorch: `module.mask = ...`).
    fn set_buffer(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        self.buffer(name)?;
        let mut updates = HashMap::from([(name.to_string(), tensor)]);
        self.apply_updates("", &mut updates)
    }

    /// The module's state in PyTorch's order: own parameters, own persistent buffers, then
    /// each child's state under its name. Plain fields and non-persistent buffers are absent.
    fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::new();
        self.visit("", &mut |name, tensor, kind| {
            if matches!(kind, TensorKind::Parameter | TensorKind::Buffer) {
                sd.insert(name, tensor.clone());
            }
        });
        sd
    }

    /// Loads `state` into the module, all or nothing (PyTorch: `load_state_dict`).
    ///
    /// Every key and shape is checked first. Size mismatches are always errors; missing and
    /// unexpected keys are errors when `strict`, and are returned otherwise. On error the
    /// module is unchanged and the message lists every problem, in PyTorch's words. Loaded
    /// values take the device and dtype of the tensors they replace.
    fn load_state_dict(&mut self, state: &StateDict, strict: bool) -> Result<IncompatibleKeys> {
        let own = self.state_dict();
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
                updates.insert(key.to_string(), conform(loaded, current)?);
            }
        }
        if !problems.is_empty() {
            return Err(Error::StateDict(format!(
                "Error(s) in loading state_dict for {}:\n\t{}",
                self.type_name(),
                problems.join("\n\t")
            )));
        }
        self.apply_updates("", &mut updates)?;
        Ok(IncompatibleKeys {
            missing_keys: missing,
            unexpected_keys: unexpected,
        })
    }

    /// Moves every parameter and buffer of the module and its children to `device`
    /// (PyTorch: `module.to(device)`). Plain fields stay where they are. A tensor already
    /// at the device's location (`cpu`, `cuda:0`) is left alone.
    fn to_device(&mut self, device: &Device) -> Result<()> {
        let mut updates = HashMap::new();
        let mut failure = None;
        self.visit("", &mut |name, tensor, kind| {
            if kind == TensorKind::PlainField || failure.is_some() {
                return;
            }
            if !same_location(tensor.device(), device) {
                match tensor.to_device(device) {
                    Ok(moved) => {
                        updates.insert(name, moved);
                    }
                    Err(err) => failure = Some(Error::from(err)),
                }
            }
        });
        if let Some(err) = failure {
            return Err(err);
        }
        self.apply_updates("", &mut updates)
    }

    /// Casts every floating-point parameter and buffer to `dtype` (PyTorch: `module.to(dtype)`,
    /// `.half()`); integer and `u8` buffers keep their dtype, plain fields are untouched.
    fn to_dtype(&mut self, dtype: DType) -> Result<()> {
        if !dtype.is_float() {
            return Err(Error::Input(format!(
                "to_dtype only accepts floating-point dtypes (like PyTorch's Module.to), got {dtype:?}"
            )));
        }
        let mut updates = HashMap::new();
        let mut failure = None;
        self.visit("", &mut |name, tensor, kind| {
            if kind == TensorKind::PlainField || failure.is_some() {
                return;
            }
            if tensor.dtype().is_float() && tensor.dtype() != dtype {
                match tensor.to_dtype(dtype) {
                    Ok(cast) => {
                        updates.insert(name, cast);
                    }
                    Err(err) => failure = Some(Error::from(err)),
                }
            }
        });
        if let Some(err) = failure {
            return Err(err);
        }
        self.apply_updates("", &mut updates)
    }

    /// The module's device: where its first parameter (else its first buffer) lives; the
    /// CPU for a module without tensors.
    fn device(&self) -> Device {
        let mut found = None;
        self.visit("", &mut |_, tensor, kind| {
            if found.is_none() && kind != TensorKind::PlainField {
                found = Some(tensor.device().clone());
            }
        });
        found.unwrap_or(Device::Cpu)
    }

    /// A report of every tensor the module holds: name, kind, device, dtype, shape.
    fn diagnostics(&self) -> DeviceReport {
        let mut rows = Vec::new();
        self.visit("", &mut |name, tensor, kind| {
            rows.push(crate::diagnostics::TensorRow::new(name, tensor, kind));
        });
        DeviceReport::new(self.type_name(), device_name(&self.device()), rows)
    }

    /// `Ok` when every tensor (plain fields included) is on the module's device; otherwise
    /// an error naming each tensor that is not, and how to fix it.
    fn check_devices(&self) -> Result<()> {
        self.diagnostics().check()
    }

    /// Saves the state dict to `path` (`.safetensors` or `.pth`), atomically.
    fn save(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        checkpoint::save(&self.state_dict(), path)
    }

    /// Loads a state dict from `path` (`.safetensors`, `.pth`) with [`Module::load_state_dict`].
    fn load(&mut self, path: impl AsRef<Path>, strict: bool) -> Result<IncompatibleKeys>
    where
        Self: Sized,
    {
        let state = checkpoint::load(path, &Device::Cpu)?;
        self.load_state_dict(&state, strict)
    }
}

fn collect_parameters(registry: &Registry, prefix: &str, out: &mut Vec<(String, Var)>) {
    for (name, var) in registry.own_parameters() {
        out.push((join(prefix, name), var.clone()));
    }
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
