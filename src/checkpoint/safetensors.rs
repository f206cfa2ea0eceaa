//! safetensors files, through the `safetensors` crate: an 8-byte header length, a JSON header
//! (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}`), then the
//! raw little-endian data of every tensor, back to back.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, View};
use candle_core::{DType, Device};

use super::{tensor_from_le_bytes, tensor_to_le_bytes, write_atomically};
use crate::error::{Error, Result};
use crate::nn::state_dict::StateDict;

/// A tensor's bytes, ready for the `safetensors` serializer (candle's own `View` impl
/// panics if a tensor cannot be copied; this one is filled beforehand, with errors).
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Writes `sd` to `path`, atomically.
pub(super) fn save(sd: &StateDict, path: &Path) -> Result<()> {
    let fail = |reason: String| Error::checkpoint(path, reason);
    let mut tensors = Vec::with_capacity(sd.len());
    for (key, tensor) in sd.iter() {
        let dtype = safetensors_dtype(tensor.dtype()).ok_or_else(|| {
            fail(format!(
                "key {key:?} is a candle {:?} tensor, which this crate cannot save; convert it \
                 with .to_dtype(DType::F32) first",
                tensor.dtype()
            ))
        })?;
        let data = tensor_to_le_bytes(tensor).map_err(|e| fail(format!("key {key:?}: {e}")))?;
        tensors.push((
            key,
            Bytes {
                dtype,
                shape: tensor.dims().to_vec(),
                data,
            },
        ));
    }
    let bytes = ::safetensors::serialize(tensors, None)
        .map_err(|e| fail(format!("cannot serialize: {e}")))?;
    write_atomically(path, |mut file: &File| {
        file.write_all(&bytes)
            .map_err(|e| fail(format!("cannot write: {e}")))
    })
}

/// Reads a safetensors file's tensors onto `device`, in the order of their data in the file.
pub(super) fn load_bytes(bytes: &[u8], device: &Device, source: &Path) -> Result<StateDict> {
    let fail = |reason: String| Error::checkpoint(source, reason);
    let unreadable = |e: ::safetensors::SafeTensorError| {
        let hint = if bytes.starts_with(b"PK\x03\x04") {
            "this is a zip archive, like a PyTorch .pth file; load it with load_pth"
        } else {
            "the file is damaged, truncated, or not a safetensors file"
        };
        fail(format!("not a readable safetensors file ({e}); {hint}"))
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(unreadable)?;
    let file = SafeTensors::deserialize(bytes).map_err(unreadable)?;
    let mut sd = StateDict::new();
    for key in metadata.offset_keys() {
        let view = file.tensor(&key).map_err(unreadable)?;
        let dtype = candle_dtype(&key, view.dtype()).map_err(fail)?;
        let tensor = tensor_from_le_bytes(view.data(), dtype, view.shape(), device)?;
        sd.insert(key, tensor);
    }
    Ok(sd)
}

fn safetensors_dtype(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::U8 => Dtype::U8,
        DType::U32 => Dtype::U32,
        DType::I16 => Dtype::I16,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::BF16 => Dtype::BF16,
        DType::F16 => Dtype::F16,
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F8E4M3 => Dtype::F8_E4M3,
        // The 4- and 6-bit floats and F8E8M0 (stored as raw bytes by candle).
        _ => return None,
    })
}

fn candle_dtype(key: &str, dtype: Dtype) -> std::result::Result<DType, String> {
    let (target, torch) = match dtype {
        Dtype::U8 => return Ok(DType::U8),
        Dtype::U32 => return Ok(DType::U32),
        Dtype::I16 => return Ok(DType::I16),
        Dtype::I32 => return Ok(DType::I32),
        Dtype::I64 => return Ok(DType::I64),
        Dtype::BF16 => return Ok(DType::BF16),
        Dtype::F16 => return Ok(DType::F16),
        Dtype::F32 => return Ok(DType::F32),
        Dtype::F64 => return Ok(DType::F64),
        Dtype::F8_E4M3 => return Ok(DType::F8E4M3),
        Dtype::BOOL => ("U8", "torch.uint8"),
        Dtype::I8 => ("I16", "torch.int16"),
        Dtype::U16 => ("I32", "torch.int32"),
        Dtype::U64 => ("I64", "torch.int64"),
        _ => ("F32", "torch.float32"),
    };
    Err(format!(
        "key {key:?} holds {dtype:?} values, which candle cannot hold; convert the tensor to \
         {target} before saving (in PyTorch: .to({torch}))"
    ))
}
