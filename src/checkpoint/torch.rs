//! What the globals of a `torch.save` pickle mean: PyTorch's dtypes and storage classes,
//! and the calls that rebuild tensors, answered without importing or running anything.
//!
//! `torch.load(weights_only=True)` allows a similar list (`torch/_weights_only_unpickler.py`);
//! this one is smaller, because a candle state dict holds plain tensors only.

use std::collections::HashMap;

use candle_core::DType;

use super::pickle::{Global, Host, Object, PResult, Value};

/// A PyTorch dtype: its name, the storage class `torch.save` names it by, and what candle
/// makes of it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TorchDType {
    /// `torch.<name>`.
    pub name: &'static str,
    /// The legacy storage class (`FloatStorage`) of `_rebuild_tensor_v2`. Dtypes newer than
    /// these classes have none: torch saves them with `_rebuild_tensor_v3`, an untyped
    /// storage and the dtype as an argument.
    pub storage: Option<&'static str>,
    /// Bytes per element.
    pub size: usize,
    pub candle: InCandle,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum InCandle {
    Is(DType),
    /// Candle has no such dtype; `fix` is the PyTorch conversion to apply before saving.
    Missing {
        fix: &'static str,
    },
}

#[rustfmt::skip]
const TORCH_DTYPES: [TorchDType; 20] = {
    use InCandle::{Is, Missing};
    const fn dtype(name: &'static str, storage: Option<&'static str>, size: usize, candle: InCandle) -> TorchDType {
        TorchDType { name, storage, size, candle }
    }
    [
        dtype("float32",         Some("FloatStorage"),         4,  Is(DType::F32)),
        dtype("float64",         Some("DoubleStorage"),        8,  Is(DType::F64)),
        dtype("float16",         Some("HalfStorage"),          2,  Is(DType::F16)),
        dtype("bfloat16",        Some("BFloat16Storage"),      2,  Is(DType::BF16)),
        dtype("int64",           Some("LongStorage"),          8,  Is(DType::I64)),
        dtype("int32",           Some("IntStorage"),           4,  Is(DType::I32)),
        dtype("int16",           Some("ShortStorage"),         2,  Is(DType::I16)),
        dtype("uint8",           Some("ByteStorage"),          1,  Is(DType::U8)),
        dtype("uint32",          None,                         4,  Is(DType::U32)),
        dtype("float8_e4m3fn",   None,                         1,  Is(DType::F8E4M3)),
        dtype("bool",            Some("BoolStorage"),          1,  Missing { fix: ".to(torch.uint8)" }),
        dtype("int8",            Some("CharStorage"),          1,  Missing { fix: ".to(torch.int16)" }),
        dtype("uint16",          None,                         2,  Missing { fix: ".to(torch.int32)" }),
        dtype("uint64",          None,                         8,  Missing { fix: ".to(torch.int64)" }),
        dtype("complex64",       Some("ComplexFloatStorage"),  8,  Missing { fix: "torch.view_as_real(t)" }),
        dtype("complex128",      Some("ComplexDoubleStorage"), 16, Missing { fix: "torch.view_as_real(t)" }),
        dtype("float8_e5m2",     None,                         1,  Missing { fix: ".to(torch.float16)" }),
        dtype("float8_e4m3fnuz", None,                         1,  Missing { fix: ".to(torch.float16)" }),
        dtype("float8_e5m2fnuz", None,                         1,  Missing { fix: ".to(torch.float16)" }),
        dtype("float8_e8m0fnu",  None,                         1,  Missing { fix: ".to(torch.float32)" }),
    ]
};

impl TorchDType {
    pub fn by_storage_class(class: &str) -> Option<&'static Self> {
        TORCH_DTYPES.iter().find(|d| d.storage == Some(class))
    }

    pub fn by_name(name: &str) -> Option<&'static Self> {
        TORCH_DTYPES.iter().find(|d| d.name == name)
    }

    pub fn of_candle(dtype: DType) -> Option<&'static Self> {
        TORCH_DTYPES
            .iter()
            .find(|d| d.candle == InCandle::Is(dtype))
    }
}

/// A storage named by a persistent id `('storage', torch.FloatStorage, '0', 'cpu', 36)`.
#[derive(Clone, Debug)]
pub(super) struct StorageRef {
    /// The record `<name>/data/<key>` that holds its bytes.
    pub key: String,
    /// `None` for `torch.storage.UntypedStorage`, whose size counts bytes.
    pub dtype: Option<&'static TorchDType>,
    /// Its size in elements (bytes if untyped), as declared.
    pub size: usize,
}

/// A tensor: a strided view onto a storage, as `_rebuild_tensor_v2` describes it.
#[derive(Clone, Debug)]
pub(super) struct TensorRef {
    pub storage: StorageRef,
    pub dtype: &'static TorchDType,
    /// Offset of the first element in the storage, in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// What the globals of a `torch.save` pickle build: storages, and tensors viewing them.
#[derive(Clone, Debug)]
pub(super) enum TorchObject {
    /// A storage the file refers to by persistent id (`BINPERSID`).
    Storage(StorageRef),
    /// A tensor: a view onto a storage.
    Tensor(TensorRef),
    /// What a call to any other global builds: nothing at all, only the name of what the
    /// file would have built (an optimizer's or a Lightning module's settings, a pickled
    /// module). A state dict that holds one is refused; other parts of a training
    /// checkpoint may hold them.
    Opaque(Global),
}

impl Object for TorchObject {
    fn kind(&self) -> &'static str {
        match self {
            Self::Storage(_) => "storage",
            Self::Tensor(_) => "tensor",
            Self::Opaque(_) => "pickled Python object",
        }
    }

    fn weight(&self) -> usize {
        let storage = std::mem::size_of::<StorageRef>();
        match self {
            Self::Storage(s) => storage + s.key.len(),
            Self::Opaque(g) => g.module.len() + g.name.len(),
            Self::Tensor(t) => {
                let dims = (t.shape.len() + t.stride.len()) * std::mem::size_of::<usize>();
                std::mem::size_of::<TensorRef>() + t.storage.key.len() + dims
            }
        }
    }
}

/// A value of a `torch.save` pickle.
pub(super) type TorchValue = Value<TorchObject>;

/// The globals a state dict needs: `OrderedDict()`, the tensor rebuild functions, storages.
#[derive(Default)]
pub(super) struct TorchGlobals {
    /// Every storage the pickle named, by key: the legacy format needs their sizes to find
    /// the storages that follow the pickle.
    pub storages: HashMap<String, StorageRef>,
}

impl Host for TorchGlobals {
    type Object = TorchObject;

    fn call(&mut self, func: &Global, args: Vec<TorchValue>) -> PResult<TorchValue> {
        match (func.module.as_str(), func.name.as_str()) {
            ("collections", "OrderedDict") | ("builtins", "dict") if args.is_empty() => {
                Ok(Value::Dict(Vec::new()))
            }
            ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => {
                rebuild_tensor(&args, None)
            }
            ("torch._utils", "_rebuild_tensor_v3") => {
                let dtype = match args.get(6) {
                    Some(Value::Global(g)) if g.module == "torch" => TorchDType::by_name(&g.name),
                    _ => None,
                };
                let dtype = dtype.ok_or("_rebuild_tensor_v3 without a known torch dtype")?;
                rebuild_tensor(&args, Some(dtype))
            }
            // A parameter is its tensor here: candle keeps no `requires_grad` in a state dict.
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
            | ("torch.nn.parameter", "Parameter") => match args.into_iter().next() {
                Some(tensor @ Value::Object(TorchObject::Tensor(_))) => Ok(tensor),
                _ => Err(format!("{func} is not given a tensor")),
            },
            // Tensor subclasses and tensors with extra attributes: (func, type, args, state).
            ("torch._tensor", "_rebuild_from_type_v2") => match <[TorchValue; 4]>::try_from(args) {
                Ok([Value::Global(inner), Value::Global(class), Value::Tuple(inner_args), _]) => {
                    let plain = class.is("torch", "Tensor")
                        || class.is("torch.nn.parameter", "Parameter")
                        || class.is("torch.nn.parameter", "Buffer");
                    if !plain {
                        return Err(format!(
                            "a tensor of subclass {class}, which candle cannot hold"
                        ));
                    }
                    self.call(&inner, inner_args)
                }
                _ => Err(format!("{func} is called with unexpected arguments")),
            },
            ("torch", "Size") => match args.into_iter().next() {
                Some(shape @ Value::Tuple(_)) => Ok(shape),
                _ => Err("torch.Size is not given a tuple".into()),
            },
            // Nothing is imported or run: the value only records what it would have been.
            _ => Ok(Value::Object(TorchObject::Opaque(func.clone()))),
        }
    }

    fn persistent_load(&mut self, pid: TorchValue) -> PResult<TorchValue> {
        let Value::Tuple(items) = pid else {
            return Err(format!("a persistent id is a {}, not a tuple", pid.kind()));
        };
        // PyTorch's legacy format adds a sixth item, `view_metadata`: None since PyTorch 0.4.
        let (tag, class, key, size) = match items.as_slice() {
            [Value::Str(tag), Value::Global(class), key, _location, Value::Int(size)]
            | [Value::Str(tag), Value::Global(class), key, _location, Value::Int(size), Value::None] => {
                (tag, class, key, size)
            }
            [Value::Str(_), Value::Global(_), _, _, Value::Int(_), Value::Tuple(_)] => {
                return Err(format!(
                    "a storage view, which only PyTorch before 0.4 wrote, is not supported; {}",
                    RESAVE
                ))
            }
            _ => {
                return Err("a persistent id is not ('storage', class, key, location, size)".into())
            }
        };
        if tag != "storage" {
            return Err(format!(
                "a persistent id names a {tag:?}; only storages are supported"
            ));
        }
        let key = match key {
            Value::Str(key) => key.clone(),
            Value::Int(key) => key.to_string(),
            other => return Err(format!("a storage key is a {}", other.kind())),
        };
        let untyped =
            class.is("torch.storage", "UntypedStorage") || class.is("torch", "UntypedStorage");
        let dtype = match TorchDType::by_storage_class(&class.name) {
            _ if untyped => None,
            Some(dtype) if class.module == "torch" => Some(dtype),
            _ => return Err(format!("unknown storage class {class}")),
        };
        let size = usize::try_from(*size).map_err(|_| format!("storage {key} has size {size}"))?;
        let storage = StorageRef { key, dtype, size };
        if let Some(seen) = self.storages.get(&storage.key) {
            if (seen.dtype, seen.size) != (storage.dtype, storage.size) {
                return Err(format!(
                    "storage {} is named with two different sizes; the file is damaged",
                    storage.key
                ));
            }
        } else {
            self.storages.insert(storage.key.clone(), storage.clone());
        }
        Ok(Value::Object(TorchObject::Storage(storage)))
    }

    fn build(&mut self, inst: TorchValue, state: TorchValue) -> PResult<TorchValue> {
        // A state dict's `_metadata` (module versions) and a parameter's extra attributes:
        // neither is part of a candle state dict.
        match inst {
            Value::Dict(_)
            | Value::Object(TorchObject::Tensor(_))
            | Value::Object(TorchObject::Opaque(_)) => Ok(inst),
            other => Err(format!(
                "BUILD sets {} state on a {}",
                state.kind(),
                other.kind()
            )),
        }
    }
}

/// How to re-save a file in the format this crate reads best, with code that works for
/// files saved from a GPU and for files that `weights_only=True` refuses.
pub(super) const RESAVE: &str = "re-save it with a recent PyTorch: \
    torch.save(torch.load(old, map_location=\"cpu\", weights_only=False), new) \
    (weights_only=False runs the file's code: only for files you trust)";

/// Why a value the file built by calling `func` cannot be part of a state dict.
pub(super) fn unsupported_global(func: &Global) -> String {
    if func.module.starts_with("__torch__") {
        return format!("the file calls {func}: {TORCHSCRIPT}");
    }
    format!(
        "the file calls {func}, which a state dict never needs: it holds a pickled Python \
         object (torch.save(model) pickles the whole module). Save its state dict instead, \
         in PyTorch with the model's classes importable: torch.save(torch.load(path, \
         map_location=\"cpu\", weights_only=False).state_dict(), new_path) \
         (weights_only=False runs the file's code: only for files you trust)"
    )
}

/// What to do with a TorchScript archive.
pub(super) const TORCHSCRIPT: &str = "it is a TorchScript archive (torch.jit.save), not a \
    state dict; save its state dict in PyTorch: torch.save(torch.jit.load(path, \
    map_location=\"cpu\").state_dict(), new_path)";

/// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`, and
/// its v1 and v3 siblings: the first four arguments are the same.
fn rebuild_tensor(
    args: &[TorchValue],
    v3_dtype: Option<&'static TorchDType>,
) -> PResult<TorchValue> {
    let [storage, offset, shape, stride, ..] = args else {
        return Err(format!(
            "a tensor is rebuilt from {} arguments, not at least 4",
            args.len()
        ));
    };
    let Value::Object(TorchObject::Storage(storage)) = storage else {
        return Err(format!(
            "a tensor is rebuilt from a {}, not a storage",
            storage.kind()
        ));
    };
    let dtype = v3_dtype
        .or(storage.dtype)
        .ok_or("an untyped storage without a dtype")?;
    Ok(Value::Object(TorchObject::Tensor(TensorRef {
        storage: storage.clone(),
        dtype,
        offset: to_usize(offset, "a storage offset")?,
        shape: to_usizes(shape, "a size")?,
        stride: to_usizes(stride, "a stride")?,
    })))
}

fn to_usize(value: &TorchValue, what: &str) -> PResult<usize> {
    match value {
        Value::Int(v) => usize::try_from(*v).map_err(|_| format!("{what} is {v}")),
        other => Err(format!("{what} is a {}, not an int", other.kind())),
    }
}

fn to_usizes(value: &TorchValue, what: &str) -> PResult<Vec<usize>> {
    match value {
        Value::Tuple(items) | Value::List(items) => {
            items.iter().map(|v| to_usize(v, what)).collect()
        }
        other => Err(format!("{what} is a {}, not a tuple", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candle_dtype_that_torch_has_round_trips_through_the_table() {
        let candle = [DType::U8, DType::U32, DType::I16, DType::I32, DType::I64];
        let candle = candle
            .into_iter()
            .chain([DType::BF16, DType::F16, DType::F32, DType::F64]);
        for dtype in candle.chain([DType::F8E4M3]) {
            let torch = TorchDType::of_candle(dtype).expect("in the table");
            assert_eq!(torch.size, dtype.size_in_bytes());
            if let Some(class) = torch.storage {
                assert_eq!(TorchDType::by_storage_class(class), Some(torch));
            }
            assert_eq!(TorchDType::by_name(torch.name), Some(torch));
        }
    }
}
