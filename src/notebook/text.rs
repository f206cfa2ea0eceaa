//! Every word the crate's reports show a learner (the diagnostics and gradient tables), in
//! one place, so that a translation is one more value of [`Words`].

use candle_core::DType;

use crate::core::field::TensorKind;

/// The words of the reports.
#[derive(Debug)]
pub struct Words {
    /// Column headers.
    pub name: &'static str,
    /// Column header: parameter, buffer, ...
    pub kind: &'static str,
    /// Column header.
    pub device: &'static str,
    /// Column header.
    pub dtype: &'static str,
    /// Column header.
    pub shape: &'static str,
    /// Column header of the gradient report: PyTorch's attribute name.
    pub requires_grad: &'static str,
    /// Column header of the gradient report: PyTorch's attribute name.
    pub grad: &'static str,
    /// Before a gradient's shape: `tensor of shape [2, 3]`.
    pub gradient_of_shape: &'static str,
    /// Yes and no.
    pub yes: &'static str,
    /// Yes and no.
    pub no: &'static str,
    /// [`TensorKind::Parameter`].
    pub parameter: &'static str,
    /// [`TensorKind::Buffer`].
    pub buffer: &'static str,
    /// [`TensorKind::NonPersistentBuffer`].
    pub non_persistent_buffer: &'static str,
    /// [`TensorKind::PlainField`].
    pub plain_field: &'static str,
    /// What an empty buffer (`Option<Buffer>` holding nothing) shows instead of a tensor,
    /// and a tensor without a gradient instead of one.
    pub none: &'static str,
    /// Before a report's module device: `CausalAttentionWithBuffer (device cpu)`.
    pub device_of_module: &'static str,
    /// Marks a row whose tensor is not on the module's device.
    pub not_on_device: &'static str,
    /// Marks a floating-point row whose dtype is not the module's; the dtype follows.
    pub not_in_dtype: &'static str,
    /// The gradient report's title, after the module's name.
    pub gradients_title: &'static str,
}

/// The English words.
pub const ENGLISH: Words = Words {
    name: "name",
    kind: "kind",
    device: "device",
    dtype: "dtype",
    shape: "shape",
    requires_grad: "requires_grad",
    grad: "grad",
    gradient_of_shape: "tensor of shape",
    yes: "yes",
    no: "no",
    parameter: "parameter",
    buffer: "buffer",
    non_persistent_buffer: "buffer (non-persistent)",
    plain_field: "plain field",
    none: "None",
    device_of_module: "device",
    not_on_device: "<- not on the module's device",
    not_in_dtype: "<- not in the module's dtype",
    gradients_title: "gradients after backward()",
};

/// The words reports use.
pub fn words() -> &'static Words {
    &ENGLISH
}

/// The name of a kind: `parameter`, `buffer`, `buffer (non-persistent)`, `plain field`.
///
/// ```
/// use understanding_buffers::{core::field::TensorKind, notebook::text::kind_name};
/// assert_eq!(kind_name(TensorKind::PlainField), "plain field");
/// ```
pub fn kind_name(kind: TensorKind) -> &'static str {
    let w = words();
    match kind {
        TensorKind::Parameter => w.parameter,
        TensorKind::Buffer => w.buffer,
        TensorKind::NonPersistentBuffer => w.non_persistent_buffer,
        TensorKind::PlainField => w.plain_field,
    }
}

/// A dtype as reports show it: `F32`, `BF16`, `U8`.
pub fn dtype_name(dtype: DType) -> String {
    format!("{dtype:?}")
}

/// A shape as reports show it: `[2, 3]`.
pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}
