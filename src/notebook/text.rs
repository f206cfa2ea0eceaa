//! Every word the crate's reports show a learner (the diagnostics and gradient tables), in
//! one place: [`ENGLISH`] and [`CHINESE`], chosen by the notebook's [`Language`].

use candle_core::DType;

use crate::nn::device::{best_device, compiled_backends, device_name};
use crate::nn::module::TensorKind;
use crate::notebook::language::Language;

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
    /// A gradient, `{}` standing for its shape: `tensor of shape [2, 3]`.
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
    gradient_of_shape: "tensor of shape {}",
    yes: "yes",
    no: "no",
    parameter: "parameter",
    buffer: "buffer",
    non_persistent_buffer: "buffer (non-persistent)",
    plain_field: "plain field",
    none: "None",
    device_of_module: "device",
    not_on_device: "⚠ not on the module's device",
    not_in_dtype: "⚠ not in the module's dtype",
    gradients_title: "gradients after backward()",
};

/// The Chinese words (the terms of the book's Chinese edition: 参数, 缓冲区, 设备, 状态字典).
pub const CHINESE: Words = Words {
    name: "名称",
    kind: "类别",
    device: "设备",
    dtype: "数据类型",
    shape: "形状",
    requires_grad: "requires_grad",
    grad: "grad",
    gradient_of_shape: "形状为 {} 的张量",
    yes: "是",
    no: "否",
    parameter: "参数",
    buffer: "缓冲区",
    non_persistent_buffer: "非持久缓冲区",
    plain_field: "普通字段",
    none: "None",
    device_of_module: "设备",
    not_on_device: "⚠ 不在模块所在的设备上",
    not_in_dtype: "⚠ 与模块的数据类型不同",
    gradients_title: "backward() 之后的梯度",
};

/// The words of the current language ([`Language::current`]).
pub fn words() -> &'static Words {
    words_in(Language::current())
}

/// The words of `language`.
pub fn words_in(language: Language) -> &'static Words {
    match language {
        Language::English => &ENGLISH,
        Language::Chinese => &CHINESE,
    }
}

/// One line on the devices of this machine, for the lessons: which back ends are compiled
/// in, and which device [`best_device`] picks.
///
/// ```
/// std::env::set_var("UB_LANG", "zh");
/// # #[cfg(not(any(feature = "cuda", feature = "metal")))]
/// assert!(understanding_buffers::notebook::text::device_summary().ends_with("使用的设备：cpu"));
/// ```
pub fn device_summary() -> String {
    let best = best_device();
    let backends = compiled_backends().join(", ");
    let gpu = !best.is_cpu();
    match Language::current() {
        Language::English => format!(
            "{}; GPU available: {}; using device: {}",
            if backends.is_empty() {
                "CPU only (built without the cuda and metal features)".to_string()
            } else {
                format!("GPU back ends compiled in: {backends}")
            },
            if gpu { "yes" } else { "no" },
            device_name(&best)
        ),
        Language::Chinese => format!(
            "{}；有可用的 GPU：{}；使用的设备：{}",
            if backends.is_empty() {
                "只支持 CPU（编译时没有启用 cuda 和 metal 特性）".to_string()
            } else {
                format!("编译进来的 GPU 后端：{backends}")
            },
            if gpu { "是" } else { "否" },
            device_name(&best)
        ),
    }
}

/// The name of a kind: `parameter`, `buffer`, `buffer (non-persistent)`, `plain field`.
///
/// ```
/// use understanding_buffers::{nn::TensorKind, notebook::text::kind_name};
/// std::env::set_var("UB_LANG", "en");
/// assert_eq!(kind_name(TensorKind::PlainField), "plain field");
/// std::env::set_var("UB_LANG", "zh");
/// assert_eq!(kind_name(TensorKind::PlainField), "普通字段");
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
