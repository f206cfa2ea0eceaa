//! [`Module`]: PyTorch's `nn.Module` semantics for structs whose field types say what each
//! field is, and `#[derive(Module)]`, which writes the trait's two required lists.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use understanding_buffers::core::buffer::Buffer;
//! use understanding_buffers::core::layers::Linear;
//! use understanding_buffers::core::module::Module;
//! use understanding_buffers::core::param::Param;
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
//! # use understanding_buffers::core::module::Module;
//! #[derive(Module)]
//! struct Tokens {
//!     vocabulary: Vec<String>, // neither a tensor, a module nor configuration
//! }
//! ```
//!
//! `persistent = false` on something that is not a buffer,
//!
//! ```compile_fail,E0277
//! # use understanding_buffers::core::module::Module;
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
//! # use understanding_buffers::{core::module::Module, core::param::Param};
//! #[derive(Module)]
//! struct Twice {
//!     #[module(rename = "w")]
//!     a: Param,
//!     w: Param,
//! }
//! ```
//!
//! ```compile_fail
//! # use understanding_buffers::{core::module::Module, core::param::Param};
//! #[derive(Module)]
//! struct Unknown {
//!     #[module(persistant = false)]
//!     w: Param,
//! }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use candle_core::{DType, Device, Tensor, Var};

use crate::core::buffer::Buffer;
use crate::core::device::same_location;
use crate::core::field::{FieldMut, FieldRef, TensorKind};
use crate::core::param::Param;
use crate::core::state_dict::StateDict;
use crate::error::{Error, Result};

/// `#[derive(Module)]`: implements [`Module`](trait@Module) from a struct's fields (see the
/// [module docs](self) and the `understanding-buffers-derive` crate).
pub use understanding_buffers_derive::Module;

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

/// How [`Module::load_state_dict`] treats keys that do not match: PyTorch's `strict=True`
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

/// PyTorch's way of printing a shape: `torch.Size([2, 3])`.
pub fn torch_size(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("torch.Size([{}])", dims.join(", "))
}

/// A tensor the module walk visits ([`Module::visit`]), with what it is to its module.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// A parameter.
    Parameter(&'a Param),
    /// A buffer; `None` while an `Option<Buffer>` is empty.
    Buffer {
        /// The buffer, if it holds a tensor.
        buffer: Option<&'a Buffer>,
        /// Whether the state dict saves it.
        persistent: bool,
    },
    /// A plain `Tensor` field.
    PlainField(&'a Tensor),
}

impl<'a> Entry<'a> {
    /// Parameter, buffer, non-persistent buffer or plain field.
    pub fn kind(&self) -> TensorKind {
        match self {
            Self::Parameter(_) => TensorKind::Parameter,
            Self::Buffer {
                persistent: true, ..
            } => TensorKind::Buffer,
            Self::Buffer { .. } => TensorKind::NonPersistentBuffer,
            Self::PlainField(_) => TensorKind::PlainField,
        }
    }

    /// The tensor; `None` for an empty buffer.
    pub fn tensor(&self) -> Option<&'a Tensor> {
        match *self {
            Self::Parameter(p) => Some(p.as_tensor()),
            Self::Buffer { buffer, .. } => buffer.map(Buffer::as_tensor),
            Self::PlainField(t) => Some(t),
        }
    }
}

/// A module with parameters, buffers, plain fields and children, as in PyTorch.
///
/// `#[derive(Module)]` writes the three required methods from the struct's fields (see the
/// [module docs](self)). They can be written by hand too; this is all the derive does:
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::core::buffer::Buffer;
/// use understanding_buffers::core::field::{Field, FieldMut, FieldRef};
/// use understanding_buffers::core::module::Module;
/// use understanding_buffers::core::param::Param;
///
/// struct Scale {
///     weight: Param,
///     running_max: Buffer,
/// }
///
/// impl Module for Scale {
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
pub trait Module {
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
        let indent = |text: &str| text.replace('\n', "\n  ");
        let extra = self.extra_repr();
        let children: Vec<String> = self
            .fields()
            .into_iter()
            .filter_map(|(name, field)| match field {
                FieldRef::Child(child) => Some(format!("({name}): {}", indent(&child.repr()))),
                _ => None,
            })
            .collect();
        if children.is_empty() {
            return format!("{}({extra})", self.type_name());
        }
        let mut lines = Vec::new();
        if !extra.is_empty() {
            lines.push(indent(&extra));
        }
        lines.extend(children);
        format!("{}(\n  {}\n)", self.type_name(), lines.join("\n  "))
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
    ///     if entry.kind() == TensorKind::PlainField {
    ///         plain.push(name.to_string());
    ///     }
    /// });
    /// assert_eq!(plain, ["mask"]);
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    fn visit(&self, f: &mut dyn FnMut(&str, Entry<'_>)) {
        let all_ok = try_visit(self, "", &mut |name, entry| {
            f(name, entry);
            Ok(())
        });
        debug_assert!(all_ok.is_ok());
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
    /// an optimizer steps it once; [`Module::state_dict`] keeps every name.
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
        let mut seen = std::collections::HashSet::new();
        self.visit(&mut |name, entry| {
            if let Entry::Parameter(p) = entry {
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
            if let Entry::Buffer {
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
            if let Entry::Buffer { buffer, .. } = entry {
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
            if let Entry::Buffer { .. } = entry {
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
            Entry::Parameter(p) => sd.insert(name, p.as_tensor().clone()),
            Entry::Buffer {
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
        let strict = mode.is_strict();
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
                updates.insert(key.to_string(), NewValue::Tensor(conform(loaded, current)?));
            }
        }
        if !problems.is_empty() {
            return Err(Error::StateDict(format!(
                "Error(s) in loading state_dict for {}:\n\t{}",
                self.type_name(),
                problems.join("\n\t")
            )));
        }
        apply(self, updates)?;
        Ok(IncompatibleKeys {
            missing_keys: missing,
            unexpected_keys: unexpected,
        })
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
    /// As with [`Module::to_device`], a cast parameter is a new variable: build optimizers
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
            Entry::Parameter(p) if parameter.is_none() => parameter = Some(p.device().clone()),
            Entry::Buffer {
                buffer: Some(b), ..
            } if buffer.is_none() => buffer = Some(b.device().clone()),
            _ => {}
        });
        parameter.or(buffer).unwrap_or(Device::Cpu)
    }
}

/// Puts every child module of `module` in training (`true`) or evaluation mode: what
/// [`Module::set_training`] does besides setting a module's own flag.
pub fn set_children_training<M: Module + ?Sized>(module: &mut M, training: bool) {
    for (_, field) in module.fields_mut() {
        if let FieldMut::Child(child) = field {
            child.set_training(training);
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The walk behind [`Module::visit`], stopping at the first error of `f`.
fn try_visit<M: Module + ?Sized>(
    module: &M,
    prefix: &str,
    f: &mut dyn FnMut(&str, Entry<'_>) -> Result<()>,
) -> Result<()> {
    let fields = module.fields();
    for (name, field) in &fields {
        if let FieldRef::Parameter(p) = field {
            f(&join(prefix, name), Entry::Parameter(p))?;
        }
    }
    for (name, field) in &fields {
        if let FieldRef::Buffer { buffer, persistent } = *field {
            f(&join(prefix, name), Entry::Buffer { buffer, persistent })?;
        }
    }
    for (name, field) in &fields {
        if let FieldRef::PlainField(t) = field {
            f(&join(prefix, name), Entry::PlainField(t))?;
        }
    }
    for (name, field) in &fields {
        if let FieldRef::Child(child) = field {
            try_visit(*child, &join(prefix, name), f)?;
        }
    }
    Ok(())
}

/// The mutable walk: `f(full_name, slot)` for every parameter and buffer slot.
fn visit_mut<M: Module + ?Sized>(
    module: &mut M,
    prefix: &str,
    f: &mut dyn FnMut(&str, FieldMut<'_>) -> Result<()>,
) -> Result<()> {
    for (name, field) in module.fields_mut() {
        match field {
            FieldMut::Child(child) => visit_mut(child, &join(prefix, name), f)?,
            FieldMut::Other => {}
            slot => f(&join(prefix, name), slot)?,
        }
    }
    Ok(())
}

/// A value to store by name: a new parameter (moves, casts), or a tensor to copy into a
/// parameter or to make a buffer's value (loads, `set_buffer`).
enum NewValue {
    Parameter(Param),
    Tensor(Tensor),
}

/// For every parameter and non-empty buffer, `change(tensor)`: `None` keeps it, `Some` gives
/// its new value. Everything fallible happens here, before the module is touched. A
/// parameter shared by several fields (tied weights) becomes one new parameter, shared by
/// the same fields.
fn prepare<M: Module + ?Sized>(
    module: &M,
    change: &dyn Fn(&Tensor) -> Option<candle_core::Result<Tensor>>,
) -> Result<HashMap<String, NewValue>> {
    let mut updates = HashMap::new();
    let mut done: HashMap<usize, Param> = HashMap::new();
    try_visit(module, "", &mut |name, entry| {
        let new = match entry {
            Entry::Parameter(p) => match done.get(&p.storage_key()) {
                Some(shared) => NewValue::Parameter(shared.clone()),
                None => match change(p.as_tensor()) {
                    Some(t) => {
                        let new = Param::new(t?)?;
                        done.insert(p.storage_key(), new.clone());
                        NewValue::Parameter(new)
                    }
                    None => return Ok(()),
                },
            },
            Entry::Buffer {
                buffer: Some(b), ..
            } => match change(b.as_tensor()) {
                Some(t) => NewValue::Tensor(t?),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        updates.insert(name.to_string(), new);
        Ok(())
    })?;
    Ok(updates)
}

/// Stores `updates` into the module, after checking that its two field lists agree, so that
/// every update has a home: either all are stored, or (on an error) none is.
fn apply<M: Module + ?Sized>(module: &mut M, mut updates: HashMap<String, NewValue>) -> Result<()> {
    check_field_lists_agree(module)?;
    visit_mut(module, "", &mut |name, slot| {
        let Some(value) = updates.remove(name) else {
            return Ok(());
        };
        match (slot, value) {
            (FieldMut::Parameter(p), NewValue::Parameter(new)) => *p = new,
            (FieldMut::Parameter(p), NewValue::Tensor(t)) => p.copy_from(&t)?,
            (FieldMut::Buffer(b), NewValue::Tensor(t)) => *b = Buffer::new(t),
            (FieldMut::OptionalBuffer(b), NewValue::Tensor(t)) => *b = Some(Buffer::new(t)),
            _ => {
                return Err(Error::Module(format!(
                    "{name} is a parameter in fields() but a buffer in fields_mut(), or the reverse"
                )))
            }
        }
        Ok(())
    })?;
    let mut homeless: Vec<String> = updates.into_keys().collect();
    if homeless.is_empty() {
        return Ok(());
    }
    homeless.sort();
    Err(Error::Module(format!(
        "{}: no field holds {}; every tensor must have one",
        module.type_name(),
        homeless.join(", ")
    )))
}

/// Parameters and buffers as `(dotted name, is a parameter)`, as the read walk lists them.
fn read_slots<M: Module + ?Sized>(module: &M) -> BTreeSet<(String, bool)> {
    let mut slots = BTreeSet::new();
    module.visit(&mut |name, entry| match entry {
        Entry::Parameter(_) => {
            slots.insert((name.to_string(), true));
        }
        Entry::Buffer { .. } => {
            slots.insert((name.to_string(), false));
        }
        Entry::PlainField(_) => {}
    });
    slots
}

/// `fields()` and `fields_mut()` must name the same parameters and buffers: a hand-written
/// impl that misspells a name in one of them would otherwise load or move nothing there.
fn check_field_lists_agree<M: Module + ?Sized>(module: &mut M) -> Result<()> {
    let read = read_slots(module);
    let mut written = BTreeSet::new();
    visit_mut(module, "", &mut |name, slot| {
        written.insert((name.to_string(), matches!(slot, FieldMut::Parameter(_))));
        Ok(())
    })?;
    if read == written {
        return Ok(());
    }
    let list = |slots: Vec<&(String, bool)>| {
        let names: Vec<&str> = slots.iter().map(|(n, _)| n.as_str()).collect();
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        }
    };
    Err(Error::Module(format!(
        "{}'s fields() and fields_mut() disagree: only fields() lists {}, only fields_mut() lists {}. \
         A hand-written impl Module must list the same fields, by the same names, in both \
         (#[derive(Module)] writes both from one declaration). Nothing was changed.",
        module.type_name(),
        list(read.difference(&written).collect()),
        list(written.difference(&read).collect())
    )))
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
