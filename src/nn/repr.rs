//! PyTorch-style printing of tensors, state dicts and modules ([`module_repr`], behind
//! [`TorchModule::repr`]).
//!
//! [`TensorRepr`] (or the shorthand [`repr`]) prints a candle tensor exactly the way
//! PyTorch's `repr(tensor)` does with its default print options (`precision=4`,
//! `threshold=1000`, `edgeitems=3`, `linewidth=80`, `sci_mode=None`), so that a notebook
//! cell shows the same text as the PyTorch original, character for character:
//!
//! ```text
//! tensor([[[-0.4519,  0.2216],
//!          [-0.5874,  0.0058]],
//!
//!         [[-0.4519,  0.2216],
//!          [-0.5874,  0.0058]]])
//! ```
//!
//! It is a port of `torch/_tensor_str.py`:
//!
//! * **Numbers.** If every finite, nonzero value of a floating-point tensor is a whole
//!   number, values print as `0.`, `1.`, `2.`; otherwise with four decimals (`0.2216`).
//!   Scientific notation (`1.0000e+05`) is used when the largest nonzero magnitude is more
//!   than 1000 times the smallest, above `1e8`, or when the smallest is below `1e-4`.
//!   `nan`, `inf` and `-inf` print as Python prints them. All values are right-aligned to
//!   one common width, which is where the double space in `[-0.4519,  0.2216]` comes
//!   from. Integer tensors print plain integers, aligned the same way.
//! * **Layout.** Rows are nested and indented as PyTorch nests them, rank-3 blocks are
//!   separated by a blank line, a row longer than 80 columns wraps, and a tensor of more
//!   than 1000 elements is summarised with `...` (three items at each edge).
//! * **Suffixes.** `device='cuda:0'` (or `'mps:0'` for Metal) when the tensor is not on
//!   the CPU, and `dtype=torch.float16`, `torch.bfloat16`, `torch.float64`, `torch.uint8`,
//!   ... when the dtype is not one PyTorch leaves implicit (`float32` and `int64`).
//!   `bf16` and `f16` values are formatted from their exact `f64` value, as PyTorch does.
//!
//! The values are copied to the CPU to be read (only the edge items, for a summarised
//! tensor). If that fails, the tensor prints as `tensor(<error: ...>)` with candle's
//! message: printing never panics.

use std::fmt;

use candle_core::{DType, Device, DeviceLocation, Tensor};

use crate::error::Error;
use crate::nn::module::{FieldRef, TorchModule};
use crate::nn::state_dict::StateDict;

/// PyTorch's `PRINT_OPTS.precision`: decimals of a fixed or scientific float.
const PRECISION: usize = 4;
/// PyTorch's `PRINT_OPTS.threshold`: more elements than this are summarised.
const THRESHOLD: usize = 1000;
/// PyTorch's `PRINT_OPTS.edgeitems`: items kept at each edge of a summarised dimension.
const EDGE_ITEMS: usize = 3;
/// PyTorch's `PRINT_OPTS.linewidth`: the column at which rows wrap.
const LINE_WIDTH: usize = 80;
/// `len("tensor(")`: how far continuation lines are indented.
const PREFIX: &str = "tensor(";

/// Prints a tensor the way PyTorch's `repr(tensor)` does.
///
/// Wrap a tensor and format it with `{}`; [`repr`] is the same thing as a function.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::nn::repr::TensorRepr;
///
/// # fn main() -> candle_core::Result<()> {
/// let t = Tensor::new(&[[-0.4519f32, 0.2216], [-0.5874, 0.0058]], &Device::Cpu)?;
/// assert_eq!(
///     TensorRepr(&t).to_string(),
///     "tensor([[-0.4519,  0.2216],\n        [-0.5874,  0.0058]])"
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TensorRepr<'a>(pub &'a Tensor);

/// Wraps `t` so that `{}` prints it the way PyTorch's `repr(tensor)` does.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::nn::repr::repr;
///
/// # fn main() -> candle_core::Result<()> {
/// // PyTorch: torch.triu(torch.ones(2, 2), diagonal=1)
/// let mask = Tensor::tril2(2, DType::F32, &Device::Cpu)?.affine(-1.0, 1.0)?;
/// assert_eq!(repr(&mask).to_string(), "tensor([[0., 1.],\n        [0., 0.]])");
///
/// let half = Tensor::new(&[1.5f32, -2.0], &Device::Cpu)?.to_dtype(DType::F16)?;
/// assert_eq!(format!("{}", repr(&half)), "tensor([ 1.5000, -2.0000], dtype=torch.float16)");
/// # Ok(())
/// # }
/// ```
pub fn repr(t: &Tensor) -> TensorRepr<'_> {
    TensorRepr(t)
}

impl fmt::Display for TensorRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match render(self.0) {
            Ok(text) => f.write_str(&text),
            Err(err) => write!(f, "{PREFIX}<error: {}>)", Error::from(err)),
        }
    }
}

/// A state dict prints as Jupyter shows PyTorch's: one key per line, each tensor below its
/// key, continuation lines indented under it (IPython's pretty printer of an `OrderedDict`).
/// The alternate form, `{:#}`, is Python's `print(sd)`: all on one line but for the tensors'
/// own line breaks.
///
/// ```
/// use understanding_buffers::prelude::*;
///
/// let mut sd = StateDict::new();
/// sd.insert("mask", causal_mask(2)?);
/// sd.insert("bias", Tensor::new(&[0.5f32], &Device::Cpu)?);
/// assert_eq!(
///     sd.to_string(),
///     "OrderedDict([('mask',\n              tensor([[0., 1.],\n                      [0., 0.]])),\n             ('bias', tensor([0.5000]))])"
/// );
/// assert_eq!(
///     format!("{sd:#}"),
///     "OrderedDict([('mask', tensor([[0., 1.],\n        [0., 0.]])), ('bias', tensor([0.5000]))])"
/// );
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
impl fmt::Display for StateDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const OPEN: &str = "OrderedDict([";
        const WIDTH: usize = 79; // IPython's line width
        if self.is_empty() {
            return f.write_str("OrderedDict()");
        }
        let items: Vec<(&str, String)> = self
            .iter()
            .map(|(key, tensor)| (key, TensorRepr(tensor).to_string()))
            .collect();
        // IPython keeps the whole dict on one line when it fits in the width.
        let flat: Vec<String> = items.iter().map(|(k, t)| format!("('{k}', {t})")).collect();
        let flat = format!("{OPEN}{}])", flat.join(", "));
        if f.alternate() || (!flat.contains('\n') && flat.chars().count() <= WIDTH) {
            return f.write_str(&flat);
        }
        let item_indent = " ".repeat(OPEN.len());
        let value_indent = " ".repeat(OPEN.len() + 1);
        for (i, (key, tensor)) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            let close = if last { ")])" } else { ")," };
            let lead = if i == 0 {
                OPEN.to_string()
            } else {
                item_indent.clone()
            };
            let one_line = format!("{lead}('{key}', {tensor}{close}");
            if !tensor.contains('\n') && one_line.chars().count() <= WIDTH {
                f.write_str(&one_line)?;
            } else {
                let body = tensor.replace('\n', &format!("\n{value_indent}"));
                write!(f, "{lead}('{key}',\n{value_indent}{body}{close}")?;
            }
            if !last {
                f.write_str("\n")?;
            }
        }
        Ok(())
    }
}

/// A module as PyTorch prints it (what [`TorchModule::repr`] gives, see there): its type, its
/// `extra_repr` settings and, one per line, its child modules by name.
pub fn module_repr<M: TorchModule + ?Sized>(module: &M) -> String {
    let indent = |text: &str| text.replace('\n', "\n  ");
    let extra = module.extra_repr();
    let children: Vec<String> = module
        .fields()
        .into_iter()
        .filter_map(|(name, field)| match field {
            FieldRef::Child(child) => Some(format!("({name}): {}", indent(&child.repr()))),
            _ => None,
        })
        .collect();
    if children.is_empty() {
        return format!("{}({extra})", module.type_name());
    }
    let mut lines = Vec::new();
    if !extra.is_empty() {
        lines.push(indent(&extra));
    }
    lines.extend(children);
    format!("{}(\n  {}\n)", module.type_name(), lines.join("\n  "))
}

/// PyTorch's way of printing a shape: `torch.Size([2, 3])`.
pub fn torch_size(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("torch.Size([{}])", dims.join(", "))
}

/// The `device='...'` suffix PyTorch appends for a tensor at `location`, or `None` on the
/// CPU (PyTorch's default device, which it leaves implicit).
///
/// CUDA devices print as `cuda:N` and Metal devices as `mps:N`, PyTorch's name for
/// Apple GPUs.
///
/// ```
/// use candle_core::DeviceLocation;
/// use understanding_buffers::nn::repr::device_suffix;
///
/// assert_eq!(device_suffix(DeviceLocation::Cpu), None);
/// assert_eq!(
///     device_suffix(DeviceLocation::Cuda { gpu_id: 0 }).as_deref(),
///     Some("device='cuda:0'")
/// );
/// assert_eq!(
///     device_suffix(DeviceLocation::Metal { gpu_id: 0 }).as_deref(),
///     Some("device='mps:0'")
/// );
/// ```
pub fn device_suffix(location: DeviceLocation) -> Option<String> {
    match location {
        DeviceLocation::Cpu => None,
        DeviceLocation::Cuda { gpu_id } => Some(format!("device='cuda:{gpu_id}'")),
        DeviceLocation::Metal { gpu_id } => Some(format!("device='mps:{gpu_id}'")),
    }
}

/// PyTorch's name for a candle dtype, as `str(tensor.dtype)` prints it: `torch.float32`,
/// `torch.bfloat16`, `torch.uint8`, ...
///
/// Candle's 6-bit and packed 4-bit floats have no PyTorch counterpart with the same
/// layout; they are named as candle names them (`f6e2m3`, `f6e3m2`, `f4`).
///
/// ```
/// use candle_core::DType;
/// use understanding_buffers::nn::repr::torch_dtype_name;
///
/// assert_eq!(torch_dtype_name(DType::F32), "torch.float32");
/// assert_eq!(torch_dtype_name(DType::BF16), "torch.bfloat16");
/// assert_eq!(torch_dtype_name(DType::U8), "torch.uint8");
/// ```
pub fn torch_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::U8 => "torch.uint8",
        DType::U32 => "torch.uint32",
        DType::I16 => "torch.int16",
        DType::I32 => "torch.int32",
        DType::I64 => "torch.int64",
        DType::BF16 => "torch.bfloat16",
        DType::F16 => "torch.float16",
        DType::F32 => "torch.float32",
        DType::F64 => "torch.float64",
        DType::F8E4M3 => "torch.float8_e4m3fn",
        DType::F8E8M0 => "torch.float8_e8m0fnu",
        other => other.as_str(),
    }
}

/// The values of the part of a tensor that gets printed, on the CPU.
enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

/// The whole `tensor(...)` text, or the candle error that kept it from being read.
fn render(t: &Tensor) -> candle_core::Result<String> {
    let dims = t.dims().to_vec();
    let numel: usize = dims.iter().product();
    let dtype = t.dtype();
    let mut suffixes = Vec::new();
    suffixes.extend(device_suffix(t.device().location()));

    let body = if numel == 0 {
        // PyTorch prints the shape of an empty tensor unless it is 1-D, and its dtype
        // unless it is the default float32: no element shows what kind it is.
        if dims.len() != 1 {
            suffixes.push(format!("size={}", python_tuple(&dims)));
        }
        if dtype != DType::F32 {
            suffixes.push(format!("dtype={}", torch_dtype_name(dtype)));
        }
        "[]".to_string()
    } else {
        if !matches!(dtype, DType::F32 | DType::I64) {
            suffixes.push(format!("dtype={}", torch_dtype_name(dtype)));
        }
        let summarize = numel > THRESHOLD;
        let shown = if summarize { edges(t)? } else { t.clone() };
        let values = read_values(&shown)?;
        let formatter = Formatter::new(&values);
        let printer = Printer {
            dims: &dims,
            summarize,
            values: &values,
            formatter: &formatter,
        };
        printer.tensor_str(0, 0, PREFIX.len())
    };
    Ok(add_suffixes(&format!("{PREFIX}{body}"), &suffixes))
}

/// PyTorch's `get_summarized_data`: the first and last `EDGE_ITEMS` entries of every
/// dimension longer than `2 * EDGE_ITEMS`, taken on the tensor's own device so that only
/// what is printed travels to the CPU.
fn edges(t: &Tensor) -> candle_core::Result<Tensor> {
    let mut shown = t.clone();
    for (dim, &size) in t.dims().iter().enumerate() {
        if size > 2 * EDGE_ITEMS {
            let head = shown.narrow(dim, 0, EDGE_ITEMS)?;
            let tail = shown.narrow(dim, size - EDGE_ITEMS, EDGE_ITEMS)?;
            shown = Tensor::cat(&[&head, &tail], dim)?;
        }
    }
    Ok(shown)
}

/// Copies `t` to the CPU and reads its values in row-major order: integers as `i64`,
/// floats (whatever their width) as their exact `f64` value.
fn read_values(t: &Tensor) -> candle_core::Result<Values> {
    let numel = t.elem_count();
    let cpu = t.to_device(&Device::Cpu)?;
    if t.dtype().is_int() {
        let v = cpu.to_dtype(DType::I64)?.reshape(numel)?.to_vec1::<i64>()?;
        Ok(Values::Int(v))
    } else if t.dtype() == DType::F64 {
        let v = cpu.reshape(numel)?.to_vec1::<f64>()?;
        Ok(Values::Float(v))
    } else {
        // Every narrower float is exact in f32, and f32 is exact in f64. Going through
        // f32 also avoids candle 0.11's direct f8e4m3 -> f64 cast, which overflows the
        // stack.
        let v = cpu.to_dtype(DType::F32)?.reshape(numel)?.to_vec1::<f32>()?;
        Ok(Values::Float(v.into_iter().map(f64::from).collect()))
    }
}

/// Python's `str(tuple)` for a shape: `(0, 3)`, `(0,)`, `()`.
fn python_tuple(dims: &[usize]) -> String {
    match dims {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// PyTorch's `_add_suffixes`: `, suffix` after the closing bracket, or on a new line
/// indented under the first `[` when the line would pass `LINE_WIDTH` columns.
fn add_suffixes(tensor_str: &str, suffixes: &[String]) -> String {
    let mut out = tensor_str.to_string();
    let chars = tensor_str.chars().count();
    // Python: len(s) - s.rfind("\n") + 1, where rfind gives -1 when there is no newline.
    let mut last_line_len = match tensor_str.rfind('\n') {
        Some(pos) => chars - tensor_str[..pos].chars().count() + 1,
        None => chars + 2,
    };
    for suffix in suffixes {
        let suffix_len = suffix.chars().count();
        if last_line_len + suffix_len + 2 > LINE_WIDTH {
            out.push_str(",\n");
            out.push_str(&" ".repeat(PREFIX.len()));
            out.push_str(suffix);
            last_line_len = PREFIX.len() + suffix_len;
        } else {
            out.push_str(", ");
            out.push_str(suffix);
            last_line_len += suffix_len + 2;
        }
    }
    out.push(')');
    out
}

/// PyTorch's `_Formatter`: decides, from all the values that will be shown, how every
/// one of them is written and the common width they are aligned to.
struct Formatter {
    int_mode: bool,
    sci_mode: bool,
    max_width: usize,
}

impl Formatter {
    fn new(values: &Values) -> Self {
        let mut fmt = Formatter {
            int_mode: true,
            sci_mode: false,
            max_width: 1,
        };
        match values {
            Values::Int(v) => {
                for x in v {
                    fmt.max_width = fmt.max_width.max(x.to_string().len());
                }
            }
            Values::Float(v) => {
                let finite: Vec<f64> = v
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite() && *x != 0.0)
                    .collect();
                if finite.is_empty() {
                    return fmt;
                }
                let max = finite.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let min = finite.iter().fold(f64::INFINITY, |m, x| m.min(x.abs()));
                fmt.int_mode = finite.iter().all(|x| *x == x.ceil());
                fmt.sci_mode = max / min > 1000.0 || max > 1.0e8 || min < 1.0e-4;
                for &x in &finite {
                    let len = if fmt.sci_mode {
                        py_sci(x).len()
                    } else if fmt.int_mode {
                        // The "." appended to whole numbers.
                        format!("{x:.0}").len() + 1
                    } else {
                        format!("{x:.PRECISION$}").len()
                    };
                    fmt.max_width = fmt.max_width.max(len);
                }
            }
        }
        fmt
    }

    fn format_float(&self, x: f64) -> String {
        let text = if !x.is_finite() {
            py_nonfinite(x).to_string()
        } else if self.sci_mode {
            py_sci(x)
        } else if self.int_mode {
            format!("{x:.0}.")
        } else {
            format!("{x:.PRECISION$}")
        };
        self.pad(text)
    }

    fn format_int(&self, x: i64) -> String {
        self.pad(x.to_string())
    }

    /// Right-aligns to the common width (never truncates, as Python never does).
    fn pad(&self, text: String) -> String {
        let len = text.chars().count();
        if len >= self.max_width {
            text
        } else {
            format!("{}{text}", " ".repeat(self.max_width - len))
        }
    }
}

/// Python's spelling of a float that is not finite.
fn py_nonfinite(x: f64) -> &'static str {
    if x.is_nan() {
        "nan"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// Python's `"{:.4e}".format(x)`: `1.0000e+05`, `-3.2000e-07` (Rust writes `1.0000e5`).
fn py_sci(x: f64) -> String {
    if !x.is_finite() {
        return py_nonfinite(x).to_string();
    }
    let rust = format!("{x:.PRECISION$e}");
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
        }
        None => rust,
    }
}

/// Walks the (possibly summarised) values with the original shape, as PyTorch's
/// `_tensor_str_with_formatter` and `_vector_str` walk the tensor.
struct Printer<'a> {
    /// The original shape: decides where `...` goes.
    dims: &'a [usize],
    /// Whether the tensor has more than `THRESHOLD` elements.
    summarize: bool,
    /// Row-major values of the printed part (the edges only, when summarised).
    values: &'a Values,
    formatter: &'a Formatter,
}

impl Printer<'_> {
    /// How many entries of dimension `dim` the printed values hold.
    fn shown_len(&self, dim: usize) -> usize {
        let size = self.dims[dim];
        if self.summarize && size > 2 * EDGE_ITEMS {
            2 * EDGE_ITEMS
        } else {
            size
        }
    }

    /// Number of printed values in one entry of dimension `dim`.
    fn shown_stride(&self, dim: usize) -> usize {
        (dim + 1..self.dims.len())
            .map(|d| self.shown_len(d))
            .product()
    }

    /// Positions of dimension `dim` to print, `None` standing for the `...` row.
    fn entries(&self, dim: usize) -> Vec<Option<usize>> {
        let shown = self.shown_len(dim);
        if shown < self.dims[dim] {
            let mut rows: Vec<Option<usize>> = (0..EDGE_ITEMS).map(Some).collect();
            rows.push(None);
            rows.extend((EDGE_ITEMS..2 * EDGE_ITEMS).map(Some));
            rows
        } else {
            (0..shown).map(Some).collect()
        }
    }

    fn format_at(&self, index: usize) -> String {
        match self.values {
            Values::Float(v) => self.formatter.format_float(v[index]),
            Values::Int(v) => self.formatter.format_int(v[index]),
        }
    }

    /// The sub-tensor that starts at value `offset` and spans dimensions `dim..`.
    fn tensor_str(&self, dim: usize, offset: usize, indent: usize) -> String {
        let rank = self.dims.len();
        if rank == dim {
            return self.format_at(offset);
        }
        if rank - dim == 1 {
            return self.vector_str(dim, offset, indent);
        }
        let stride = self.shown_stride(dim);
        let slices: Vec<String> = self
            .entries(dim)
            .into_iter()
            .map(|entry| match entry {
                Some(i) => self.tensor_str(dim + 1, offset + i * stride, indent + 1),
                None => "...".to_string(),
            })
            .collect();
        let separator = format!(",{}{}", "\n".repeat(rank - dim - 1), " ".repeat(indent + 1));
        format!("[{}]", slices.join(&separator))
    }

    /// A row: its items joined by `, `, wrapped so that lines stay within `LINE_WIDTH`.
    fn vector_str(&self, dim: usize, offset: usize, indent: usize) -> String {
        let element_length = self.formatter.max_width + 2;
        let per_line = (LINE_WIDTH.saturating_sub(indent) / element_length).max(1);
        let data: Vec<String> = self
            .entries(dim)
            .into_iter()
            .map(|entry| match entry {
                Some(i) => self.format_at(offset + i),
                None => " ...".to_string(),
            })
            .collect();
        let lines: Vec<String> = data.chunks(per_line).map(|c| c.join(", ")).collect();
        let separator = format!(",\n{}", " ".repeat(indent + 1));
        format!("[{}]", lines.join(&separator))
    }
}
