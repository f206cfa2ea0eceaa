//! PyTorch's `.pth` format: a zip archive holding one pickle and the raw storages.
//!
//! Reading: find `<name>/data.pkl`, run it with [`pickle::load`] and the few globals a state
//! dict needs ([`TorchGlobals`]), then cut each tensor out of its `<name>/data/<key>` record.
//! Every size the file declares is checked against the bytes it holds before anything is
//! allocated.
//! Writing: the same layout, with the records `torch.save` writes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Cursor, Read, Seek, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use zip::result::{ZipError, ZipResult};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::pickle::{self, PResult, Pickler, Value};
use super::torch::{
    InCandle, StorageRef, TensorRef, TorchDType, TorchGlobals, TorchObject, TorchValue,
};
use super::{tensor_from_le_bytes, tensor_to_le_bytes, write_atomically};
use crate::core::state_dict::StateDict;
use crate::error::{Error, Result};

/// Reads a `.pth` file's state dict onto `device`; `source` names it in errors.
pub(super) fn load_bytes(bytes: &[u8], device: &Device, source: &Path) -> Result<StateDict> {
    let fail = |reason: String| Error::checkpoint(source, reason);
    let mut file = PthFile::open(bytes).map_err(fail)?;
    let entries = file.entries().map_err(fail)?;
    let mut sd = StateDict::new();
    for (key, view) in entries {
        let (dtype, data, base) = file.tensor_data(&key, &view).map_err(fail)?;
        let mut tensor = tensor_from_le_bytes(&data, dtype, &base, device)?;
        if base != view.shape {
            // An expanded view: its repeated dimensions stay views (stride 0), as in PyTorch.
            tensor = tensor.broadcast_as(view.shape.as_slice())?;
        }
        sd.insert(key, tensor);
    }
    Ok(sd)
}

/// An opened `.pth` archive, with the storages read so far.
struct PthFile<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    /// `<name>/`, the folder all records live in.
    prefix: String,
    len: u64,
    little_endian: bool,
    storages: HashMap<String, Vec<u8>>,
}

impl<'a> PthFile<'a> {
    fn open(bytes: &'a [u8]) -> PResult<Self> {
        check_magic(bytes)?;
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            format!("the zip archive is damaged or truncated ({e}); a .pth file must be complete")
        })?;
        let prefix = find_prefix(&archive)?;
        let mut file = Self {
            archive,
            prefix,
            len: bytes.len() as u64,
            little_endian: true,
            storages: HashMap::new(),
        };
        file.little_endian = file.byte_order()?;
        Ok(file)
    }

    /// Runs `data.pkl` and returns the state dict's `(key, tensor)` pairs, in file order.
    fn entries(&mut self) -> PResult<Vec<(String, TensorRef)>> {
        let name = format!("{}data.pkl", self.prefix);
        let pickle = self.record(&name)?;
        let value = pickle::load(&pickle, &mut TorchGlobals).map_err(|e| format!("{name}: {e}"))?;
        let pairs = match value {
            Value::Dict(pairs) => pairs,
            Value::Object(TorchObject::Tensor(_)) => {
                return Err(
                    "the file holds a single tensor, not a state dict; save a dict of \
                            named tensors instead: torch.save({'name': tensor}, path)"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "the file holds a {}, not a state dict (a dict of tensors)",
                    other.kind()
                ))
            }
        };
        pairs
            .into_iter()
            .map(|(key, value)| entry(key, value))
            .collect()
    }

    /// The candle dtype and little-endian, row-major bytes of the tensor under `key`, and the
    /// shape those bytes have: the view's, with every expanded dimension (see [`gather`])
    /// of size 1.
    fn tensor_data(
        &mut self,
        key: &str,
        view: &TensorRef,
    ) -> PResult<(DType, Vec<u8>, Vec<usize>)> {
        let dtype = match view.dtype.candle {
            InCandle::Is(dtype) => dtype,
            InCandle::Missing { fix } => {
                return Err(format!(
                    "key {key:?} is a torch.{} tensor, which candle cannot hold; convert it with \
                     {fix} before saving",
                    view.dtype.name
                ))
            }
        };
        let swap = !self.little_endian;
        let storage = self.storage(&view.storage)?;
        let (mut data, base) = gather(key, view, storage)?;
        if swap {
            data.chunks_exact_mut(view.dtype.size)
                .for_each(<[u8]>::reverse);
        }
        Ok((dtype, data, base))
    }

    /// A storage's bytes, read once and checked against the size its persistent id declares.
    fn storage(&mut self, storage: &StorageRef) -> PResult<&[u8]> {
        if !self.storages.contains_key(&storage.key) {
            let data = self.record(&format!("{}data/{}", self.prefix, storage.key))?;
            self.storages.insert(storage.key.clone(), data);
        }
        let data = self
            .storages
            .get(&storage.key)
            .ok_or("storage cache out of sync")?;
        let declared = match storage.dtype {
            Some(dtype) => storage.size.checked_mul(dtype.size),
            None => Some(storage.size),
        };
        if declared != Some(data.len()) {
            return Err(format!(
                "storage {} should hold {} elements but holds {} bytes; the file is damaged",
                storage.key,
                storage.size,
                data.len()
            ));
        }
        Ok(data)
    }

    /// `byteorder` says how storages are stored; files without it are little-endian.
    fn byte_order(&mut self) -> PResult<bool> {
        let name = format!("{}byteorder", self.prefix);
        if self.archive.index_for_name(&name).is_none() {
            return Ok(true);
        }
        match self.record(&name)?.as_slice() {
            b"little" => Ok(true),
            b"big" => Ok(false),
            other => Err(format!(
                "unknown byte order {:?}",
                String::from_utf8_lossy(other)
            )),
        }
    }

    /// The bytes of the record `name`, with its declared size checked against the archive
    /// before anything is allocated.
    fn record(&mut self, name: &str) -> PResult<Vec<u8>> {
        let mut file = self.archive.by_name(name).map_err(|e| match e {
            ZipError::FileNotFound => {
                format!("the record {name} is missing; the file is damaged or truncated")
            }
            e => format!("cannot read the record {name}: {e}"),
        })?;
        let size = file.size();
        // Deflate shrinks data at most 1032-fold; stored records are as large as their data.
        let ceiling = match file.compression() {
            CompressionMethod::Stored => file.compressed_size(),
            _ => file.compressed_size().saturating_mul(1032),
        };
        if size > ceiling || file.compressed_size() > self.len {
            return Err(format!("the record {name} declares {size} bytes, more than the archive holds; the file is damaged"));
        }
        let mut data = Vec::with_capacity(usize::try_from(size).map_err(|e| e.to_string())?);
        file.read_to_end(&mut data)
            .map_err(|e| format!("cannot read the record {name}: {e}; the file is damaged"))?;
        if data.len() as u64 != size {
            return Err(format!(
                "the record {name} holds {} bytes, not {size}; the file is damaged",
                data.len()
            ));
        }
        Ok(data)
    }
}

/// Tells apart the files people mistake for `.pth` archives.
fn check_magic(bytes: &[u8]) -> PResult<()> {
    /// `torch.save(..., _use_new_zipfile_serialization=False)` starts with this pickled number.
    const LEGACY: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Ok(());
    }
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.starts_with(LEGACY) {
        return Err(
            "this is PyTorch's legacy format (before 1.6, or saved with \
                    _use_new_zipfile_serialization=False), which this crate does not read; \
                    re-save it with a recent PyTorch: torch.save(torch.load(old), new)"
                .into(),
        );
    }
    if bytes.get(8) == Some(&b'{') {
        return Err(
            "this looks like a safetensors file, not a .pth archive; load it with \
                    load_safetensors (or give it the .safetensors extension)"
                .into(),
        );
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Err(format!(
        "not a PyTorch checkpoint: a .pth file is a zip archive and starts with 50 4b 03 04 \
         (\"PK\"), this one starts with {}",
        head.join(" ")
    ))
}

/// The folder `<name>/` of `<name>/data.pkl`, the record every `torch.save` archive has.
fn find_prefix(archive: &ZipArchive<Cursor<&[u8]>>) -> PResult<String> {
    let names: Vec<String> = archive
        .file_names_raw()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let pickles: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .collect();
    let prefix = match pickles.as_slice() {
        [one] => one.trim_end_matches("data.pkl").to_owned(),
        [] => {
            let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
            return Err(format!(
                "not a PyTorch checkpoint: the zip archive has no <name>/data.pkl record \
                 (torch.save writes <name>/data.pkl and <name>/data/0, ...); it holds {} \
                 record(s): {}{}",
                names.len(),
                shown.join(", "),
                if names.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        _ => {
            return Err(format!(
                "the zip archive holds {} data.pkl records, not one",
                pickles.len()
            ))
        }
    };
    if names.iter().any(|n| *n == format!("{prefix}constants.pkl")) {
        return Err(
            "this is a TorchScript archive (torch.jit.save), not a state dict; load it \
                    in PyTorch and save model.state_dict() with torch.save"
                .into(),
        );
    }
    Ok(prefix)
}

/// A `(key, value)` pair of the top-level dict, which must map names to tensors.
fn entry(key: TorchValue, value: TorchValue) -> PResult<(String, TensorRef)> {
    let Value::Str(key) = key else {
        return Err(format!(
            "the state dict has a key that is a {}, not a str",
            key.kind()
        ));
    };
    match value {
        Value::Object(TorchObject::Tensor(tensor)) => Ok((key, tensor)),
        Value::Dict(_) => Err(format!(
            "the value under key {key:?} is a dict, not a tensor: the file holds more than a \
             state dict (a training checkpoint?). Save the state dict alone in PyTorch: \
             torch.save(checkpoint[{key:?}], path)"
        )),
        other => Err(format!(
            "the value under key {key:?} is a {}, not a tensor",
            other.kind()
        )),
    }
}

/// The view's elements in row-major order, copied out of `storage` (strided views
/// included), and the shape they have.
///
/// A dimension of stride 0 repeats the same elements (PyTorch's `expand`, e.g.
/// `torch.tensor([1., 2.]).expand(3, 2)` has strides `(0, 1)`): it is gathered once, with
/// size 1 in the returned shape, and the caller broadcasts it back, so memory stays in
/// proportion to the storage. Other views that read an element more than once (`as_strided`
/// windows) are refused, for the same reason.
fn gather(key: &str, view: &TensorRef, storage: &[u8]) -> PResult<(Vec<u8>, Vec<usize>)> {
    let (shape, stride, size) = (&view.shape, &view.stride, view.dtype.size);
    let damaged = |what: String| format!("key {key:?}: {what}; the file is damaged");
    if shape.len() != stride.len() {
        return Err(damaged(format!(
            "{} sizes but {} strides",
            shape.len(),
            stride.len()
        )));
    }
    if !storage.len().is_multiple_of(size) {
        return Err(damaged(format!(
            "a storage of {} bytes for {size}-byte elements",
            storage.len()
        )));
    }
    let available = storage.len() / size;
    if shape.contains(&0) {
        return Ok((Vec::new(), shape.clone()));
    }
    let overflow = || damaged("the shape overflows".into());
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(overflow)?;
    // Expanded dimensions are read once.
    let base: Vec<usize> = shape
        .iter()
        .zip(stride)
        .map(|(&n, &s)| if s == 0 { 1 } else { n })
        .collect();
    let numel: usize = base.iter().product();
    let last = base
        .iter()
        .zip(stride)
        .try_fold(view.offset, |end, (&d, &s)| {
            (d - 1)
                .checked_mul(s)
                .and_then(|reach| end.checked_add(reach))
        });
    let last = last.ok_or_else(overflow)?;
    if last >= available {
        return Err(damaged(format!(
            "it reads element {last} of a storage of {available}"
        )));
    }
    if numel > available {
        return Err(format!(
            "key {key:?} is a view that reads elements more than once (shape {shape:?}, strides \
             {stride:?}): {numel} elements from a storage of {available}; save it with \
             .contiguous() first"
        ));
    }
    let bytes_at = |pos: usize, count: usize| storage.get(pos * size..(pos + count) * size);
    if is_row_major(&base, stride) {
        let data = bytes_at(view.offset, numel).ok_or_else(overflow)?;
        return Ok((data.to_vec(), base));
    }
    let mut out = Vec::with_capacity(numel * size);
    let mut index = vec![0usize; base.len()];
    for _ in 0..numel {
        let pos = view.offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(bytes_at(pos, 1).ok_or_else(overflow)?);
        // Next index, last dimension fastest.
        for (i, &n) in index.iter_mut().zip(&base).rev() {
            *i += 1;
            if *i < n {
                break;
            }
            *i = 0;
        }
    }
    Ok((out, base))
}

/// Whether `stride` lays `shape` out in C order (dimensions of size 1 may have any stride).
fn is_row_major(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1;
    for (&n, &s) in shape.iter().zip(stride).rev() {
        if n != 1 && s != expected {
            return false;
        }
        expected *= n;
    }
    true
}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Writes `sd` as `torch.save(sd, path)` would, atomically.
pub(super) fn save(sd: &StateDict, path: &Path) -> Result<()> {
    let pickle = state_dict_pickle(sd).map_err(|reason| Error::checkpoint(path, reason))?;
    let name = archive_name(path);
    let zip_error = |e: ZipError| Error::checkpoint(path, format!("cannot write the archive: {e}"));
    write_atomically(path, |file: &File| {
        let mut zip = ZipWriter::new(BufWriter::new(file));
        add_record(&mut zip, &format!("{name}/data.pkl"), &pickle).map_err(zip_error)?;
        add_record(&mut zip, &format!("{name}/.format_version"), b"1").map_err(zip_error)?;
        add_record(&mut zip, &format!("{name}/.storage_alignment"), b"64").map_err(zip_error)?;
        add_record(&mut zip, &format!("{name}/byteorder"), b"little").map_err(zip_error)?;
        for (index, (key, tensor)) in sd.iter().enumerate() {
            let data = tensor_to_le_bytes(tensor)
                .map_err(|e| Error::checkpoint(path, format!("key {key:?}: {e}")))?;
            add_record(&mut zip, &format!("{name}/data/{index}"), &data).map_err(zip_error)?;
        }
        add_record(&mut zip, &format!("{name}/version"), b"3\n").map_err(zip_error)?;
        let writer = zip.finish().map_err(zip_error)?;
        writer
            .into_inner()
            .map_err(|e| Error::checkpoint(path, format!("cannot write: {}", e.error())))?;
        Ok(())
    })
}

/// One uncompressed record, its data aligned to 64 bytes as torch aligns it (so that
/// `torch.load(..., mmap=True)` can map it).
fn add_record<W: Write + Seek>(zip: &mut ZipWriter<W>, name: &str, data: &[u8]) -> ZipResult<()> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(64)
        .last_modified_time(zip::DateTime::default())
        .large_file(data.len() as u64 >= u64::from(u32::MAX));
    zip.start_file(name, options)?;
    zip.write_all(data)?;
    Ok(())
}

/// torch names the archive's folder after the file (`model.pth` -> `model/`).
fn archive_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "archive".into()
    } else {
        name
    }
}

/// `data.pkl` for `sd`: an `OrderedDict` of `_rebuild_tensor_v2` calls, storage `i` holding
/// the `i`-th tensor.
fn state_dict_pickle(sd: &StateDict) -> PResult<Vec<u8>> {
    let mut p = Pickler::new();
    p.global("collections", "OrderedDict");
    p.empty_tuple();
    p.reduce();
    p.memo_put();
    let entries: Vec<(&str, &Tensor)> = sd.iter().collect();
    // Python's pickler sets items in batches of 1000; so do we.
    for (batch_index, batch) in entries.chunks(1000).enumerate() {
        p.mark();
        for (offset, (key, tensor)) in batch.iter().enumerate() {
            p.str(key);
            pickle_tensor(&mut p, key, tensor, batch_index * 1000 + offset)?;
        }
        p.setitems();
    }
    Ok(p.finish())
}

/// `_rebuild_tensor_v2(('storage', torch.FloatStorage, '<index>', 'cpu', numel), 0, shape,
/// stride, False, OrderedDict())`, or `_rebuild_tensor_v3` with an untyped storage and the
/// dtype for dtypes without a storage class.
fn pickle_tensor(p: &mut Pickler, key: &str, tensor: &Tensor, index: usize) -> PResult<()> {
    let dtype = TorchDType::of_candle(tensor.dtype()).ok_or_else(|| {
        format!(
            "key {key:?} is a candle {:?} tensor, which this crate cannot save; convert it \
             with .to_dtype(DType::F32) first",
            tensor.dtype()
        )
    })?;
    let shape = tensor.dims();
    let numel = tensor.elem_count();
    p.global(
        "torch._utils",
        if dtype.storage.is_some() {
            "_rebuild_tensor_v2"
        } else {
            "_rebuild_tensor_v3"
        },
    );
    p.mark();
    p.mark();
    p.str("storage");
    match dtype.storage {
        Some(class) => p.global("torch", class),
        None => p.global("torch.storage", "UntypedStorage"),
    }
    p.str(&index.to_string());
    p.str("cpu");
    let size = if dtype.storage.is_some() {
        numel
    } else {
        numel * dtype.size
    };
    p.int(size as u64);
    p.tuple();
    p.persistent_id();
    p.int(0);
    p.int_tuple(shape);
    p.int_tuple(&row_major_strides(shape));
    p.bool(false);
    p.global("collections", "OrderedDict");
    p.empty_tuple();
    p.reduce();
    if dtype.storage.is_none() {
        p.global("torch", dtype.name);
    }
    p.tuple();
    p.reduce();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_major_strides_match_pytorch() {
        assert_eq!(row_major_strides(&[6, 6]), [6, 1]);
        assert_eq!(row_major_strides(&[2, 3, 4]), [12, 4, 1]);
        assert_eq!(row_major_strides(&[]), Vec::<usize>::new());
        assert!(is_row_major(&[2, 1, 3], &[3, 99, 1]));
        assert!(!is_row_major(&[2, 3], &[1, 2]));
    }
}
