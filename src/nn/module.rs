//! [`TorchModule`]: PyTorch's `nn.Module` semantics for structs whose field types say what
//! each field is, the field views it walks ([`FieldRef`], [`FieldMut`]), and
//! `#[derive(Module)]`, which writes the trait's two required lists.
//!
//! The trait is `TorchModule`, not `Module`, so that it sits beside candle's own `Module`
//! (the `forward` trait that `use candle_nn::*` brings) without a clash: a type can be both,
//! and this crate's layers are. The derive keeps the short name: derive macros live in a
//! namespace of their own, so `#[derive(Module)]` names nothing of candle's.
//!
//! The trait's provided methods are short; the work is in `walk.rs` (the walk, moves and
//! casts), [`load`](crate::nn::load) (`load_state_dict`) and [`repr`](crate::nn::repr)
//! (printing).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use understanding_buffers::nn::{Buffer, Linear, Module, Param, TorchModule};
//!
//! #[derive(Module)]
//! struct Scaled {
//!     #[module(rename = "Proj")] // the name PyTorch's checkpoint uses
//!     proj: Linear,              // a child module: its tensors are `Proj.weight`, ...
//!     scale: Param,              // a parameter: trained
//!     running_max: Buffer,       // a buffer: moved, cast and saved, never trained
//!     #[module(persistent = false)]
//!     cache: Buffer,             // a buffer the state dict leaves out
//!     scratch: Tensor,           // a plain field: reported, never moved, cast or saved
//!     width: usize,              // configuration
//! }
//!
//! let cpu = &Device::Cpu;
//! let mut m = Scaled {
//!     proj: Linear::new(3, 2, true)?,
//!     scale: Param::new(Tensor::ones(2, DType::F32, cpu)?)?,
//!     running_max: Buffer::new(Tensor::zeros(2, DType::F32, cpu)?),
//!     cache: Buffer::new(Tensor::zeros(2, DType::F32, cpu)?),
//!     scratch: Tensor::zeros(2, DType::F32, cpu)?,
//!     width: 2,
//! };
//! // PyTorch's order, whatever the field order: own parameters, own buffers, then children.
//! assert_eq!(
//!     m.state_dict().keys().collect::<Vec<_>>(),
//!     ["scale", "running_max", "Proj.weight", "Proj.bias"]
//! );
//! m.to_dtype(DType::F16)?;
//! assert_eq!((m.cache.dtype(), m.scratch.dtype()), (DType::F16, DType::F32));
//! # Ok::<(), understanding_buffers::error::Error>(())
//! ```
//!
//! The derive refuses, at compile time, what would make the walk wrong: a field type it does
//! not know (mark it `#[module(skip)]`),
//!
//! ```compile_fail,E0277
//! # use understanding_buffers::nn::Module;
//! #[derive(Module)]
//! struct Tokens {
//!     vocabulary: Vec<String>, // neither a tensor, a module nor configuration
//! }
//! ```
//!
//! `persistent = false` on something that is not a buffer,
//!
//! ```compile_fail,E0277
//! # use understanding_buffers::nn::Module;
//! #[derive(Module)]
//! struct Plain {
//!     #[module(persistent = false)]
//!     table: candle_core::Tensor,
//! }
//! ```
//!
//! two fields under one name, and attributes it does not know (the derive's own errors,
//! which carry no error code: the derive crate's unit tests check their words):
//!
//! ```compile_fail
//! # use understanding_buffers::nn::{Module, Param};
//! #[derive(Module)]
//! struct Twice {
//!     #[module(rename = "w")]
//!     a: Param,
//!     w: Param,
//! }
//! ```
//!
//! ```compile_fail
//! # use understanding_buffers::nn::{Module, Param};
//! #[derive(Module)]
//! struct Unknown {
//!     #[module(persistant = false)]
//!     w: Param,
//! }
//! ```

use std::collections::{HashMap, HashSet};

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};
use crate::nn::buffer::Buffer;
use crate::nn::device::same_location;
use crate::nn::load::{load_state_dict, IncompatibleKeys, LoadMode};
use crate::nn::param::Param;
use crate::nn::repr::module_repr;
use crate::nn::state_dict::StateDict;
use crate::nn::walk::{apply, prepare, visit, NewValue};

/// `#[derive(Module)]`: implements [`TorchModule`] from a struct's fields (see the
/// [module docs](self) and the `understanding-buffers-derive` crate).
pub use understanding_buffers_derive::Module;

/// What a tensor is to the module that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// Trainable: handed to optimizers, moved, cast and saved.
    Parameter,
    /// Never trained; moved, cast and saved with the module.
    Buffer,
    /// Never trained; moved and cast with the module, but not saved.
    NonPersistentBuffer,
    /// A plain `Tensor` field: never moved, cast or saved.
    PlainField,
}

/// A field, read: what [`TorchModule::fields`] lists, and what the module walk
/// ([`TorchModule::visit`]) hands on for each tensor: there only `Parameter`, `Buffer` and
/// `PlainField`, children being walked in turn.
#[derive(Clone, Copy)]
pub enum FieldRef<'a> {
    /// A parameter.
    Parameter(&'a Param),
    /// A buffer; `None` for an empty `Option<Buffer>` (PyTorch: `register_buffer(name, None)`).
    Buffer {
        /// The buffer, if it holds a tensor.
        buffer: Option<&'a Buffer>,
        /// Whether the state dict saves it.
        persistent: bool,
    },
    /// A plain tensor: reported, never moved, cast or saved.
    PlainField(&'a Tensor),
    /// A child module, walked in turn.
    Child(&'a dyn TorchModule),
    /// Nothing the walk needs: configuration (sizes, rates, flags), an absent `Option<Param>`.
    Other,
}

impl<'a> FieldRef<'a> {
    /// Parameter, buffer, non-persistent buffer or plain field; `None` for a child module
    /// and for configuration.
    pub fn kind(&self) -> Option<TensorKind> {
        match self {
            Self::Parameter(_) => Some(TensorKind::Parameter),
            Self::Buffer {
                persistent: true, ..
            } => Some(TensorKind::Buffer),
            Self::Buffer { .. } => Some(TensorKind::NonPersistentBuffer),
            Self::PlainField(_) => Some(TensorKind::PlainField),
            Self::Child(_) | Self::Other => None,
        }
    }

    /// The tensor; `None` for an empty buffer, a child module and configuration.
    pub fn tensor(&self) -> Option<&'a Tensor> {
        match *self {
            Self::Parameter(p) => Some(p.as_tensor()),
            Self::Buffer { buffer, .. } => buffer.map(Buffer::as_tensor),
            Self::PlainField(t) => Some(t),
            Self::Child(_) | Self::Other => None,
        }
    }
}

/// A field, mutably: what moves, casts and loads may change. Plain tensor fields are
/// [`FieldMut::Other`] here: no module operation touches them.
pub enum FieldMut<'a> {
    /// A parameter.
    Parameter(&'a mut Param),
    /// A buffer that always holds a tensor.
    Buffer(&'a mut Buffer),
    /// A buffer that may be empty.
    OptionalBuffer(&'a mut Option<Buffer>),
    /// A child module.
    Child(&'a mut dyn TorchModule),
    /// Nothing a module operation changes.
    Other,
}

/// A module with parameters, buffers, plain fields and children, as in PyTorch.
///
/// `#[derive(Module)]` writes the three required methods from the struct's fields (see the
/// [module docs](self)). They can be written by hand too; this is all the derive does:
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::nn::{Buffer, Field, FieldMut, FieldRef, Param, TorchModule};
///
/// struct Scale {
///     weight: Param,
///     running_max: Buffer,
/// }
///
/// impl TorchModule for Scale {
///     fn type_name(&self) -> &'static str {
///         "Scale"
///     }
///     // Every field, by its PyTorch name; `Field` says what each one is.
///     fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)> {
///         vec![("weight", self.weight.field()), ("running_max", self.running_max.field())]
///     }
///     // The same fields, mutably, for moves, casts and loads.
///     fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)> {
///         vec![("weight", self.weight.field_mut()), ("running_max", self.running_max.field_mut())]
///     }
/// }
///
/// let cpu = &Device::Cpu;
/// let mut scale = Scale {
///     weight: Param::new(Tensor::ones(3, DType::F32, cpu)?)?,
///     running_max: Buffer::new(Tensor::zeros(3, DType::F32, cpu)?),
/// };
/// assert_eq!(scale.state_dict().keys().collect::<Vec<_>>(), ["weight", "running_max"]);
/// assert_eq!(scale.parameters().len(), 1); // what an optimizer gets: parameters only
/// scale.to_dtype(DType::F16)?;
/// assert_eq!(scale.running_max.dtype(), DType::F16);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
///
/// The two lists must name the same fields: every operation that changes the module first
/// checks that they do, and fails, changing nothing, when they do not.
pub trait TorchModule {
    /// The type's name as PyTorch would print it, e.g. `CausalAttentionWithBuffer`.
    fn type_name(&self) -> &'static str;

    /// Every field the module walk sees, with its name, in declaration order.
    fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)>;

    /// What PyTorch's `extra_repr` gives: the settings shown inside the parentheses of this
    /// module's printout, e.g. `in_features=3, out_features=2, bias=False`. Empty by default;
    /// `#[derive(Module)]` takes it from a method named by `#[module(extra_repr = "name")]`.
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// The module as PyTorch prints it: its type, its settings and, one per line, its child
    /// modules by name (tensors are not listed; `state_dict` and `diagnostics` show them).
    /// `#[derive(Module)]` makes this the type's `Display`, so `println!("{model}")` shows it.
    ///
    /// ```
    /// use understanding_buffers::prelude::*;
    ///
    /// let m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
    /// assert_eq!(
    ///     m.to_string(),
    ///     "CausalAttentionWithBuffer(\n  \
    ///        (W_query): Linear(in_features=3, out_features=2, bias=False)\n  \
    ///        (W_key): Linear(in_features=3, out_features=2, bias=False)\n  \
    ///        (W_value): Linear(in_features=3, out_features=2, bias=False)\n  \
    ///        (dropout): Dropout(p=0.0, inplace=False)\n\
    ///      )"
    /// );
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    fn repr(&self) -> String {
        module_repr(self)
    }

    /// The same fields, mutably.
    fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)>;

    /// Calls `f(full_name, entry)` for every tensor of this module and its children, in
    /// PyTorch's order: own parameters, own buffers, own plain fields, then each child.
    ///
    /// ```
    /// use understanding_buffers::prelude::*;
    ///
    /// let m = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false)?;
    /// let mut plain = Vec::new();
    /// m.visit(&mut |name, entry| {
    ///     if entry.kind() == Some(TensorKind::PlainField) {
    ///         plain.push(name.to_string());
    ///     }
    /// });
    /// assert_eq!(plain, ["mask"]);
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    fn visit(&self, f: &mut dyn FnMut(&str, FieldRef<'_>)) {
        visit(self, f);
    }

    /// Puts this module and its children in training (`true`) or evaluation mode. Modules
    /// that keep a mode of their own (`Dropout`, `Linear`, `Embedding`, any struct with a
    /// `#[module(training)] training: bool` field) set it; every module passes it on to its
    /// children.
    fn set_training(&mut self, training: bool) {
        set_children_training(self, training);
    }

    /// Whether the module is in training mode: its own flag when it keeps one, else whether
    /// all its children are in training mode (PyTorch's modules start in training mode).
    fn is_training(&self) -> bool {
        self.fields().iter().all(|(_, field)| match field {
            FieldRef::Child(child) => child.is_training(),
            _ => true,
        })
    }

    /// Training mode: dropout is active (PyTorch: `module.train()`).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode: dropout does nothing (PyTorch: `module.eval()`).
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Every parameter, with dotted names (`W_query.weight`). A parameter shared by two
    /// fields (tied weights) is listed once, under its first name, as PyTorch lists it, so
    /// an optimizer steps it once; [`TorchModule::state_dict`] keeps every name.
    ///
    /// ```
    /// use understanding_buffers::prelude::*;
    ///
    /// #[derive(Module)]
    /// struct Tied {
    ///     embedding: Embedding,
    ///     head: Linear,
    /// }
    /// let embedding = Embedding::new(10, 4, 0)?;
    /// let mut head = Linear::new(4, 10, false)?;
    /// head.weight = embedding.weight.clone(); // GPT-2: the output head is the embedding
    /// let mut tied = Tied { embedding, head };
    /// let names: Vec<String> = tied.named_parameters().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["embedding.weight"]);
    /// assert_eq!(tied.state_dict().len(), 2);
    /// tied.to_dtype(DType::F16)?; // still one parameter
    /// assert!(tied.head.weight.is_same(&tied.embedding.weight));
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.visit(&mut |name, entry| {
            if let FieldRef::Parameter(p) = entry {
                if seen.insert(p.storage_key()) {
                    out.push((name.to_string(), p.var().clone()));
                }
            }
        });
        out
    }

    /// Every parameter: exactly what an optimizer should be handed (no buffers).
    fn parameters(&self) -> Vec<Var> {
        self.named_parameters()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Every buffer that holds a tensor, persistent or not, with dotted names. Empty
    /// `Option<Buffer>`s are left out, as PyTorch leaves out `None` buffers.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit(&mut |name, entry| {
            if let FieldRef::Buffer {
                buffer: Some(b), ..
            } = entry
            {
                out.push((name.to_string(), b.as_tensor().clone()));
            }
        });
        out
    }

    /// Every buffer that holds a tensor, persistent or not.
    fn buffers(&self) -> Vec<Tensor> {
        self.named_buffers().into_iter().map(|(_, t)| t).collect()
    }

    /// The parameter with this dotted name.
    fn parameter(&self, name: &str) -> Result<Tensor> {
        let parameters = self.named_parameters();
        match parameters.iter().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.as_tensor().clone()),
            None => {
                let known: Vec<&str> = parameters.iter().map(|(n, _)| n.as_str()).collect();
                Err(Error::Module(format!(
                    "{} has no parameter {name:?}; its parameters are {known:?}",
                    self.type_name()
                )))
            }
        }
    }

    /// The buffer with this dotted name.
    fn buffer(&self, name: &str) -> Result<Tensor> {
        let mut found = None;
        let mut known = Vec::new();
        self.visit(&mut |n, entry| {
            if let FieldRef::Buffer { buffer, .. } = entry {
                if n == name {
                    found = Some(buffer.map(|b| b.as_tensor().clone()));
                }
                known.push(n.to_string());
            }
        });
        match found {
            Some(Some(tensor)) => Ok(tensor),
            Some(None) => Err(Error::Module(format!(
                "the buffer {name:?} of {} is empty (None); give it a tensor with set_buffer",
                self.type_name()
            ))),
            None => Err(Error::Module(format!(
                "{} has no buffer {name:?}; its buffers are {known:?}",
                self.type_name()
            ))),
        }
    }

    /// Gives the buffer with this dotted name a new value (PyTorch: `module.mask = ...` for a
    /// registered buffer), also when it was empty.
    fn set_buffer(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        let mut known = Vec::new();
        self.visit(&mut |n, entry| {
            if let FieldRef::Buffer { .. } = entry {
                known.push(n.to_string());
            }
        });
        if !known.iter().any(|k| k == name) {
            return Err(Error::Module(format!(
                "{} has no buffer {name:?}; its buffers are {known:?}",
                self.type_name()
            )));
        }
        apply(
            self,
            HashMap::from([(name.to_string(), NewValue::Tensor(tensor))]),
        )
    }

    /// The module's state in PyTorch's order: own parameters, own persistent buffers, then
    /// each child's state under its name. Plain fields, non-persistent and empty buffers are
    /// absent.
    fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::new();
        self.visit(&mut |name, entry| match entry {
            FieldRef::Parameter(p) => sd.insert(name, p.as_tensor().clone()),
            FieldRef::Buffer {
                buffer: Some(b),
                persistent: true,
            } => sd.insert(name, b.as_tensor().clone()),
            _ => {}
        });
        sd
    }

    /// Loads `state` into the module (PyTorch: `load_state_dict`), all or nothing.
    ///
    /// Every key and shape is checked first. Size mismatches are always errors; missing and
    /// unexpected keys are errors in [`LoadMode::Strict`], and are returned in
    /// [`LoadMode::NonStrict`]. The message
    /// lists every problem, in PyTorch's words.
    ///
    /// On error the module is unchanged. This differs from PyTorch on purpose: PyTorch copies
    /// every matching tensor before it raises, so a failed strict load there has already
    /// changed the module.
    ///
    /// Loaded values take the device and dtype of the tensors they replace, and are copied
    /// *into* the existing parameters, as PyTorch copies into them: an optimizer built
    /// before the load trains the loaded weights.
    fn load_state_dict(&mut self, state: &StateDict, mode: LoadMode) -> Result<IncompatibleKeys> {
        load_state_dict(self, state, mode)
    }

    /// Moves every parameter and buffer of the module and its children to `device`
    /// (PyTorch: `module.to(device)`). Plain fields stay where they are. A tensor already
    /// at the device's location (`cpu`, `cuda:0`) is left alone.
    ///
    /// A moved parameter is a new candle variable (a `Var` cannot change device): an
    /// optimizer built before the move still holds the old variables, and its steps no
    /// longer reach the module. Build optimizers after `to_device`, as PyTorch advises too.
    fn to_device(&mut self, device: &Device) -> Result<()> {
        let updates = prepare(self, &|tensor| {
            (!same_location(tensor.device(), device)).then(|| tensor.to_device(device))
        })?;
        apply(self, updates)
    }

    /// Casts every floating-point parameter and buffer to `dtype` (PyTorch: `module.to(dtype)`,
    /// `.half()`); integer and `u8` buffers keep their dtype, plain fields are untouched.
    ///
    /// As with [`TorchModule::to_device`], a cast parameter is a new variable: build optimizers
    /// after the cast.
    fn to_dtype(&mut self, dtype: DType) -> Result<()> {
        if !dtype.is_float() {
            return Err(Error::Input(format!(
                "to_dtype only accepts floating-point dtypes (like PyTorch's Module.to), got {dtype:?}"
            )));
        }
        let updates = prepare(self, &|tensor| {
            let cast = tensor.dtype().is_float() && tensor.dtype() != dtype;
            cast.then(|| tensor.to_dtype(dtype))
        })?;
        apply(self, updates)
    }

    /// The module's device: where its first parameter (else its first buffer) lives; the
    /// CPU for a module without tensors.
    fn device(&self) -> Device {
        let (mut parameter, mut buffer) = (None, None);
        self.visit(&mut |_, entry| match entry {
            FieldRef::Parameter(p) if parameter.is_none() => parameter = Some(p.device().clone()),
            FieldRef::Buffer {
                buffer: Some(b), ..
            } if buffer.is_none() => buffer = Some(b.device().clone()),
            _ => {}
        });
        parameter.or(buffer).unwrap_or(Device::Cpu)
    }
}

/// Puts every child module of `module` in training (`true`) or evaluation mode: what
/// [`TorchModule::set_training`] does besides setting a module's own flag.
pub fn set_children_training<M: TorchModule + ?Sized>(module: &mut M, training: bool) {
    for (_, field) in module.fields_mut() {
        if let FieldMut::Child(child) = field {
            child.set_training(training);
        }
    }
}
