//! [`Registry`]: the parameters and buffers one module owns, by name and in order.
//!
//! This is PyTorch's `_parameters` and `_buffers` for candle. A [`crate::Module`] holds one
//! registry for its own tensors and lists its child modules; every walk (`state_dict`,
//! `to_device`, `named_buffers`, …) visits the registry first, then the children.
//!
//! A tensor kept in a plain struct field is not in any registry: it is neither moved, nor
//! cast, nor saved. That is the bug the lesson is about.

use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// What a tensor is to the module that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Trainable: handed to optimizers, moved, cast and saved.
    Parameter,
    /// Never trained; moved, cast and saved with the module.
    Buffer,
    /// Never trained; moved and cast with the module, but not saved.
    NonPersistentBuffer,
    /// A plain struct field the registry does not know: never moved, cast or saved.
    PlainField,
}

impl TensorKind {
    /// A short human name: `parameter`, `buffer`, `buffer (non-persistent)`, `plain field`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parameter => "parameter",
            Self::Buffer => "buffer",
            Self::NonPersistentBuffer => "buffer (non-persistent)",
            Self::PlainField => "plain field",
        }
    }
}

#[derive(Clone, Debug)]
struct Buffer {
    tensor: Tensor,
    persistent: bool,
}

/// A module's own parameters and buffers, in registration order, plus its training flag.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::Registry;
///
/// let mut registry = Registry::new();
/// registry.register_parameter("weight", Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?)?;
/// registry.register_buffer("mask", Tensor::ones((4, 4), DType::F32, &Device::Cpu)?, true)?;
/// assert_eq!(registry.buffer("mask")?.dims(), &[4, 4]);
/// assert!(registry.register_buffer("mask", Tensor::new(1f32, &Device::Cpu)?, true).is_err());
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Registry {
    parameters: Vec<(String, Var)>,
    buffers: Vec<(String, Buffer)>,
    training: bool,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry in training mode (PyTorch modules start in training mode).
    pub fn new() -> Self {
        Self {
            parameters: Vec::new(),
            buffers: Vec::new(),
            training: true,
        }
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.contains('.') {
            return Err(Error::Registry(format!(
                "invalid name {name:?}: names must be non-empty and contain no '.' (dots join a child's name to its tensors' names)"
            )));
        }
        if self.parameters.iter().any(|(n, _)| n == name) {
            return Err(Error::Registry(format!(
                "{name:?} is already registered as a parameter; pick another name"
            )));
        }
        if self.buffers.iter().any(|(n, _)| n == name) {
            return Err(Error::Registry(format!(
                "{name:?} is already registered as a buffer; use set_buffer to change its value"
            )));
        }
        Ok(())
    }

    /// Registers a trainable parameter (PyTorch: `nn.Parameter` assigned to the module).
    pub fn register_parameter(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        self.check_new_name(name)?;
        self.parameters
            .push((name.to_string(), Var::from_tensor(&tensor.detach())?));
        Ok(())
    }

    /// Registers a buffer (PyTorch: `register_buffer(name, tensor, persistent)`): never
    /// trained, moved and cast with the module, saved in its state dict when `persistent`.
    pub fn register_buffer(&mut self, name: &str, tensor: Tensor, persistent: bool) -> Result<()> {
        self.check_new_name(name)?;
        self.buffers.push((
            name.to_string(),
            Buffer {
                tensor: tensor.detach(),
                persistent,
            },
        ));
        Ok(())
    }

    fn unknown(&self, what: &str, name: &str) -> Error {
        let known: Vec<&str> = match what {
            "parameter" => self.parameters.iter().map(|(n, _)| n.as_str()).collect(),
            _ => self.buffers.iter().map(|(n, _)| n.as_str()).collect(),
        };
        Error::Registry(format!(
            "no {what} named {name:?} in this module; its {what}s are: {known:?}"
        ))
    }

    /// The parameter registered as `name`.
    pub fn parameter(&self, name: &str) -> Result<&Tensor> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_tensor())
            .ok_or_else(|| self.unknown("parameter", name))
    }

    /// The buffer registered as `name`.
    pub fn buffer(&self, name: &str) -> Result<&Tensor> {
        self.buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| &b.tensor)
            .ok_or_else(|| self.unknown("buffer", name))
    }

    /// Replaces the value of the buffer `name` (PyTorch: assigning to `module.name`).
    pub fn set_buffer(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        let unknown = self.unknown("buffer", name);
        let buffer = self
            .buffers
            .iter_mut()
            .find(|(n, _)| n == name)
            .ok_or(unknown)?;
        buffer.1.tensor = tensor.detach();
        Ok(())
    }

    /// Replaces the value of the parameter `name`.
    pub fn set_parameter(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        let unknown = self.unknown("parameter", name);
        let parameter = self
            .parameters
            .iter_mut()
            .find(|(n, _)| n == name)
            .ok_or(unknown)?;
        parameter.1 = Var::from_tensor(&tensor.detach())?;
        Ok(())
    }

    /// Own parameters as `(name, variable)` pairs, in registration order.
    pub fn own_parameters(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.parameters.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Own buffers as `(name, tensor, kind)` triples, in registration order.
    pub fn own_buffers(&self) -> impl Iterator<Item = (&str, &Tensor, TensorKind)> {
        self.buffers.iter().map(|(n, b)| {
            let kind = if b.persistent {
                TensorKind::Buffer
            } else {
                TensorKind::NonPersistentBuffer
            };
            (n.as_str(), &b.tensor, kind)
        })
    }

    /// Own tensors (parameters, then buffers) with their kinds.
    pub fn own_tensors(&self) -> impl Iterator<Item = (&str, &Tensor, TensorKind)> {
        self.own_parameters()
            .map(|(n, v)| (n, v.as_tensor(), TensorKind::Parameter))
            .chain(self.own_buffers())
    }

    /// Whether the module is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    pub(crate) fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Stores a new value for an own tensor of either kind, keeping its kind.
    pub(crate) fn replace(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        if self.parameters.iter().any(|(n, _)| n == name) {
            self.set_parameter(name, tensor)
        } else {
            self.set_buffer(name, tensor)
        }
    }
}
