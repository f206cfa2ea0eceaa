//! What a module holds, shown: every tensor with its kind, device, dtype and shape, the ones
//! that stray from the module's device or dtype ([`DeviceReport`]), and which tensors a
//! backward pass gives a gradient ([`GradientReport`]). [`Diagnose`] adds both to every
//! module.

use std::fmt;

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::nn::device::device_name;
use crate::nn::module::TensorKind;
use crate::nn::module::{FieldRef, TorchModule};
use crate::notebook::display::Show;
use crate::notebook::language::Language;
use crate::notebook::table::{Column, Table};
use crate::notebook::text::{dtype_name, kind_name, shape_text, words};

/// The reports of this module, for every [`TorchModule`] (the prelude imports it).
///
/// ```
/// use understanding_buffers::prelude::*;
///
/// let m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
/// let loss = m.forward(&example_batch(&Device::Cpu)?)?.sum_all()?;
/// let grads = m.gradients(&loss)?;
/// assert_eq!(grads.with_gradient(), ["W_query.weight", "W_key.weight", "W_value.weight"]);
/// assert_eq!(grads.without_gradient(), ["mask"]);
/// assert!(m.check_devices().is_ok());
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub trait Diagnose: TorchModule {
    /// Every tensor the module holds — parameters, buffers (empty ones too) and plain fields —
    /// with its kind, device, dtype and shape, in the module walk's order.
    fn diagnostics(&self) -> DeviceReport {
        let mut rows = Vec::new();
        self.visit(&mut |name, field| rows.extend(TensorRow::of(name, &field)));
        DeviceReport {
            module: self.type_name().to_string(),
            device: device_name(&self.device()),
            dtype: module_dtype(&rows),
            rows,
        }
    }

    /// `Ok` when every tensor (plain fields included) is on the module's device; otherwise
    /// an error naming each tensor that is not, and how to fix it.
    fn check_devices(&self) -> Result<()> {
        self.diagnostics().check_devices()
    }

    /// Runs the backward pass from `loss` and reports, for every tensor of the module, what
    /// PyTorch calls `requires_grad` (whether it is a trainable variable) and `.grad` (the
    /// gradient the backward pass gave it): parameters get one; buffers and plain fields never
    /// do, since they are no variables.
    ///
    /// (candle's gradient store may also hold values for tensors that are no variables, by
    /// products of the chain rule that no optimizer ever applies; PyTorch does not compute
    /// them, and neither does this report count them.)
    fn gradients(&self, loss: &Tensor) -> Result<GradientReport> {
        let grads = loss.backward()?;
        let mut rows = Vec::new();
        self.visit(&mut |name, field| {
            // The walk hands on tensor fields only, each with a kind.
            let Some(kind) = field.kind() else { return };
            let variable = field.tensor().filter(|t| t.is_variable());
            rows.push(GradientRow {
                name: name.to_string(),
                kind,
                requires_grad: variable.is_some(),
                gradient: variable
                    .and_then(|t| grads.get(t))
                    .map(|g| g.dims().to_vec()),
            });
        });
        Ok(GradientReport {
            module: self.type_name().to_string(),
            rows,
        })
    }
}

impl<M: TorchModule + ?Sized> Diagnose for M {}

/// A tensor's place and form, as the report shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// `cpu`, `cuda:0`, …
    pub device: String,
    /// `F32`, `BF16`, `U8`, …
    pub dtype: DType,
    /// The tensor's dimensions.
    pub shape: Vec<usize>,
}

/// One tensor of a module, as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRow {
    /// Dotted name, e.g. `W_query.weight` or `mask`.
    pub name: String,
    /// Parameter, buffer, non-persistent buffer or plain field.
    pub kind: TensorKind,
    /// The tensor; `None` for an empty buffer.
    pub tensor: Option<TensorInfo>,
}

impl TensorRow {
    /// The row of a tensor field; `None` for a child or configuration (never visited).
    fn of(name: &str, field: &FieldRef<'_>) -> Option<Self> {
        Some(Self {
            name: name.to_string(),
            kind: field.kind()?,
            tensor: field.tensor().map(|t| TensorInfo {
                device: device_name(t.device()),
                dtype: t.dtype(),
                shape: t.dims().to_vec(),
            }),
        })
    }

    /// The tensor's device, if the row holds a tensor.
    pub fn device(&self) -> Option<&str> {
        self.tensor.as_ref().map(|t| t.device.as_str())
    }

    /// The tensor's dtype, if the row holds a tensor.
    pub fn dtype(&self) -> Option<DType> {
        self.tensor.as_ref().map(|t| t.dtype)
    }
}

/// The dtype of the module's first floating-point parameter, else of its first
/// floating-point buffer.
fn module_dtype(rows: &[TensorRow]) -> Option<DType> {
    let float_of = |kinds: &[TensorKind]| {
        rows.iter()
            .filter(|r| kinds.contains(&r.kind))
            .filter_map(TensorRow::dtype)
            .find(|d| d.is_float())
    };
    float_of(&[TensorKind::Parameter])
        .or_else(|| float_of(&[TensorKind::Buffer, TensorKind::NonPersistentBuffer]))
}

/// Every tensor a module holds with its kind, device, dtype and shape, and which ones stray
/// from the module's device or (floating-point tensors) dtype. Shown as a table in notebooks
/// and as text elsewhere; made by [`Diagnose::diagnostics`].
#[derive(Clone, Debug)]
pub struct DeviceReport {
    module: String,
    device: String,
    dtype: Option<DType>,
    rows: Vec<TensorRow>,
}

impl DeviceReport {
    /// The rows, in the module's order.
    pub fn rows(&self) -> &[TensorRow] {
        &self.rows
    }

    /// The module's device, e.g. `cuda:0`.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The module's floating-point dtype: that of its first floating-point parameter, else
    /// buffer.
    pub fn dtype(&self) -> Option<DType> {
        self.dtype
    }

    fn off_device(&self, row: &TensorRow) -> bool {
        row.device().is_some_and(|d| d != self.device)
    }

    fn off_dtype(&self, row: &TensorRow) -> bool {
        match (row.dtype(), self.dtype) {
            (Some(d), Some(module)) => d.is_float() && d != module,
            _ => false,
        }
    }

    /// The tensors that are not on the module's device.
    pub fn device_strays(&self) -> Vec<&TensorRow> {
        self.rows.iter().filter(|r| self.off_device(r)).collect()
    }

    /// The floating-point tensors whose dtype is not the module's (integer buffers keep
    /// theirs on purpose).
    pub fn dtype_strays(&self) -> Vec<&TensorRow> {
        self.rows.iter().filter(|r| self.off_dtype(r)).collect()
    }

    /// `Ok` when no tensor strays from the module's device; otherwise an error naming every
    /// stray tensor and the fix.
    pub fn check_devices(&self) -> Result<()> {
        let strays = self.device_strays();
        if strays.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = strays
            .iter()
            .map(|r| {
                let device = r.device().unwrap_or_default();
                format!("{} ({}, {device})", r.name, kind_name(r.kind))
            })
            .collect();
        let message = match Language::current() {
            Language::English => format!(
                "{} is on {} but these tensors are not: {}. Register them as buffers so that \
                 to_device moves them, or move them yourself.",
                self.module,
                self.device,
                names.join(", ")
            ),
            Language::Chinese => format!(
                "{} 在 {} 上，但这些张量不在：{}。把它们注册为缓冲区，to_device 就会把它们一并移到这个设备上；\
                 否则就得手动把它们移到这里。",
                self.module,
                self.device,
                names.join("、")
            ),
        };
        Err(Error::Device(message))
    }

    /// Why a row is highlighted, if it is.
    fn flag(&self, row: &TensorRow) -> Option<String> {
        let w = words();
        if self.off_device(row) {
            Some(format!("{} ({})", w.not_on_device, self.device))
        } else if self.off_dtype(row) {
            let module = self.dtype.map(dtype_name).unwrap_or_default();
            Some(format!("{} ({module})", w.not_in_dtype))
        } else {
            None
        }
    }

    /// The cells of a row: name, kind, device, dtype, shape.
    fn cells(row: &TensorRow) -> [String; 5] {
        let none = words().none.to_string();
        let (device, dtype, shape) = match &row.tensor {
            Some(t) => (t.device.clone(), dtype_name(t.dtype), shape_text(&t.shape)),
            None => (none.clone(), none.clone(), none),
        };
        [
            row.name.clone(),
            kind_name(row.kind).to_string(),
            device,
            dtype,
            shape,
        ]
    }
}

impl DeviceReport {
    /// The report as a table: one row per tensor, strays highlighted.
    pub fn table(&self) -> Table {
        let w = words();
        let caption = format!("{} — {} {}", self.module, w.device_of_module, self.device);
        let mut table = Table::new(
            &caption,
            &[
                (w.name, Column::Code),
                (w.kind, Column::Text),
                (w.device, Column::Code),
                (w.dtype, Column::Code),
                (w.shape, Column::Text),
            ],
        );
        for row in &self.rows {
            let cells = Self::cells(row);
            match self.flag(row) {
                Some(note) => table.highlighted_row(cells, &note),
                None => table.row(cells),
            };
        }
        table
    }
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table().fmt(f)
    }
}

impl Show for DeviceReport {
    fn rich(&self) -> (&'static str, String) {
        self.table().rich()
    }

    fn plain(&self) -> String {
        self.to_string()
    }
}

/// One tensor of a module after a backward pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GradientRow {
    /// Dotted name, e.g. `W_query.weight` or `mask`.
    pub name: String,
    /// Parameter, buffer, non-persistent buffer or plain field.
    pub kind: TensorKind,
    /// Whether the tensor is a trainable variable (PyTorch: `requires_grad`).
    pub requires_grad: bool,
    /// The gradient's shape; `None` when the tensor got no gradient (PyTorch: `.grad is None`).
    pub gradient: Option<Vec<usize>>,
}

/// Which of a module's tensors a backward pass gave a gradient; made by
/// [`Diagnose::gradients`].
#[derive(Clone, Debug)]
pub struct GradientReport {
    module: String,
    rows: Vec<GradientRow>,
}

impl GradientReport {
    /// The rows, in the module's order.
    pub fn rows(&self) -> &[GradientRow] {
        &self.rows
    }

    /// The names of the tensors that got a gradient.
    pub fn with_gradient(&self) -> Vec<&str> {
        self.names(true)
    }

    /// The names of the tensors that got none.
    pub fn without_gradient(&self) -> Vec<&str> {
        self.names(false)
    }

    fn names(&self, with: bool) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.gradient.is_some() == with)
            .map(|r| r.name.as_str())
            .collect()
    }

    fn cells(row: &GradientRow) -> [String; 4] {
        let w = words();
        let gradient = match &row.gradient {
            Some(shape) => w.gradient_of_shape.replace("{}", &shape_text(shape)),
            None => w.none.to_string(),
        };
        let requires_grad = if row.requires_grad { w.yes } else { w.no };
        [
            row.name.clone(),
            kind_name(row.kind).to_string(),
            requires_grad.to_string(),
            gradient,
        ]
    }
}

impl GradientReport {
    /// The report as a table: one row per tensor.
    pub fn table(&self) -> Table {
        let w = words();
        let caption = format!("{} — {}", self.module, w.gradients_title);
        let mut table = Table::new(
            &caption,
            &[
                (w.name, Column::Code),
                (w.kind, Column::Text),
                (w.requires_grad, Column::Text),
                (w.grad, Column::Text),
            ],
        );
        for row in &self.rows {
            table.row(Self::cells(row));
        }
        table
    }
}

impl fmt::Display for GradientReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table().fmt(f)
    }
}

impl Show for GradientReport {
    fn rich(&self) -> (&'static str, String) {
        self.table().rich()
    }

    fn plain(&self) -> String {
        self.to_string()
    }
}
