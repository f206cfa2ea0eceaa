//! Device diagnostics: every tensor a module holds, where it lives, and which ones stray.

use std::fmt;

use candle_core::Tensor;

use crate::device::device_name;
use crate::display::{html_escape, Show};
use crate::registry::TensorKind;
use crate::{Error, Result};

/// One tensor of a module, as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRow {
    /// Dotted name, e.g. `W_query.weight` or `mask`.
    pub name: String,
    /// Parameter, buffer, non-persistent buffer or plain field.
    pub kind: TensorKind,
    /// `cpu`, `cuda:0`, …
    pub device: String,
    /// `F32`, `BF16`, `U8`, …
    pub dtype: String,
    /// The tensor's dimensions.
    pub shape: Vec<usize>,
}

impl TensorRow {
    /// Describes `tensor`, held by a module under `name` as `kind`.
    pub fn new(name: String, tensor: &Tensor, kind: TensorKind) -> Self {
        Self {
            name,
            kind,
            device: device_name(tensor.device()),
            dtype: format!("{:?}", tensor.dtype()),
            shape: tensor.dims().to_vec(),
        }
    }
}

/// Every tensor a module holds — parameters, buffers and declared plain fields — with its
/// kind, device, dtype and shape. Shown as a table in notebooks and as text elsewhere.
#[derive(Clone, Debug)]
pub struct DeviceReport {
    module: String,
    device: String,
    rows: Vec<TensorRow>,
}

impl DeviceReport {
    /// A report for a module of type `module` whose device is `device`.
    pub fn new(module: &str, device: String, rows: Vec<TensorRow>) -> Self {
        Self {
            module: module.to_string(),
            device,
            rows,
        }
    }

    /// The rows, in the module's order.
    pub fn rows(&self) -> &[TensorRow] {
        &self.rows
    }

    /// The module's device, e.g. `cuda:0`.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The tensors that are not on the module's device.
    pub fn strays(&self) -> Vec<&TensorRow> {
        self.rows
            .iter()
            .filter(|r| r.device != self.device)
            .collect()
    }

    /// `Ok` when nothing strays; otherwise an error naming every stray tensor and the fix.
    pub fn check(&self) -> Result<()> {
        let strays = self.strays();
        if strays.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = strays
            .iter()
            .map(|r| format!("{} ({}, on {})", r.name, r.kind.name(), r.device))
            .collect();
        Err(Error::Device(format!(
            "{} is on {} but these tensors are not: {}. Register them as buffers so that \
             to_device moves them, or move them yourself.",
            self.module,
            self.device,
            names.join(", ")
        )))
    }
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} (device {})", self.module, self.device)?;
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "  {:<width$}  {:<23}  {:<7}  {:<5}  shape",
            "name", "kind", "device", "dtype"
        )?;
        for r in &self.rows {
            let flag = if r.device != self.device {
                "  <- not on the module's device"
            } else {
                ""
            };
            writeln!(
                f,
                "  {:<width$}  {:<23}  {:<7}  {:<5}  {}{flag}",
                r.name,
                r.kind.name(),
                r.device,
                r.dtype,
                shape_text(&r.shape)
            )?;
        }
        Ok(())
    }
}

impl Show for DeviceReport {
    fn rich(&self) -> (&'static str, String) {
        let mut html = format!(
            "<table class=\"ub-report\"><caption style=\"text-align:left\"><b>{}</b> &mdash; device <code>{}</code></caption>\
             <thead><tr><th>name</th><th>kind</th><th>device</th><th>dtype</th><th>shape</th></tr></thead><tbody>",
            html_escape(&self.module),
            html_escape(&self.device)
        );
        for r in &self.rows {
            let style = if r.device != self.device {
                " style=\"background:#fdd\" class=\"ub-stray\""
            } else {
                ""
            };
            html.push_str(&format!(
                "<tr{style}><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                html_escape(&r.name),
                r.kind.name(),
                html_escape(&r.device),
                r.dtype,
                shape_text(&r.shape)
            ));
        }
        html.push_str("</tbody></table>");
        ("text/html", html)
    }

    fn plain(&self) -> String {
        self.to_string()
    }
}
