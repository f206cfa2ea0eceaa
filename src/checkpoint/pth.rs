//! PyTorch's `.pth` format: a zip archive holding one pickle and the raw storages.
//!
//! Reading: find `<name>/data.pkl`, run it with [`pickle::load`] and the few globals a state
//! dict needs ([`TorchGlobals`]), then cut each tensor out of its `<name>/data/<key>` record.
//! Every size the file declares is checked against the bytes it holds before anything is
//! allocated.
//! Writing: the same layout, with the records `torch.save` writes.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

use candle_core::{Device, Tensor};
use zip::read::{ArchiveOffset, Config};
use zip::result::{ZipError, ZipResult};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::pickle::{self, PResult, Pickler};
use super::storages::{self, Storages};
use super::torch::{StorageRef, TorchDType, TorchGlobals};
use super::{select, tensor_to_le_bytes, write_atomically};
use crate::error::{Error, Result};
use crate::nn::state_dict::StateDict;

/// The largest `data.pkl` read: a state dict's pickle takes a few hundred bytes per tensor.
pub(super) const MAX_PICKLE: u64 = 16 << 20;

/// What the pickle interpreter may allocate, beyond the bytes of the file's storages.
pub(super) const PICKLE_ALLOWANCE: usize = 32 << 20;

/// Reads the state dict of the `.pth` archive `reader` (under `key` of a training
/// checkpoint, if given) onto `device`; `source` names the file in errors.
pub(super) fn load<R: Read + Seek>(
    reader: R,
    key: Option<&str>,
    device: &Device,
    source: &Path,
) -> Result<StateDict> {
    let fail = |reason: String| Error::checkpoint(source, reason);
    let mut file = PthFile::open(reader).map_err(fail)?;
    let entries = file.entries(key).map_err(fail)?;
    let little_endian = file.little_endian;
    storages::build(entries, &mut file, little_endian, device, &fail)
}

/// An opened `.pth` archive.
struct PthFile<R> {
    archive: ZipArchive<R>,
    /// `<name>/`, the folder all records live in.
    prefix: String,
    /// The bytes the storage records take in the archive.
    stored: u64,
    little_endian: bool,
}

impl<R: Read + Seek> PthFile<R> {
    fn open(reader: R) -> PResult<Self> {
        let mut archive = open_archive(reader)?;
        let prefix = find_prefix(&archive)?;
        let data = format!("{prefix}data/");
        let stored = (0..archive.len())
            .filter_map(|i| {
                let f = archive.by_index_raw(i).ok()?;
                let is_data = f.name().ok()?.starts_with(&data);
                Some((is_data, f.compressed_size()))
            })
            .filter(|(is_data, _)| *is_data)
            .fold(0u64, |sum, (_, size)| sum.saturating_add(size));
        let mut file = Self {
            archive,
            prefix,
            stored,
            little_endian: true,
        };
        file.little_endian = file.byte_order()?;
        Ok(file)
    }

    /// Runs `data.pkl` and returns the state dict's `(key, tensor)` pairs, in file order.
    fn entries(&mut self, key: Option<&str>) -> PResult<Vec<(String, super::torch::TensorRef)>> {
        let name = format!("{}data.pkl", self.prefix);
        let pickle = self.record(&name, MAX_PICKLE)?;
        let allowance =
            PICKLE_ALLOWANCE.saturating_add(usize::try_from(self.stored).unwrap_or(usize::MAX));
        let value = pickle::load(&pickle, &mut TorchGlobals::default(), allowance)
            .map_err(|e| format!("{name}: {e}"))?;
        drop(pickle);
        select::state_dict(value, key)
    }

    /// `byteorder` says how storages are stored; files without it are little-endian.
    fn byte_order(&mut self) -> PResult<bool> {
        let name = format!("{}byteorder", self.prefix);
        if self.archive.index_for_name(&name).is_none() {
            return Ok(true);
        }
        match self.record(&name, 16)?.as_slice() {
            b"little" => Ok(true),
            b"big" => Ok(false),
            other => Err(format!(
                "unknown byte order {:?}",
                String::from_utf8_lossy(other)
            )),
        }
    }

    /// The bytes of the small record `name`, at most `max` of them.
    fn record(&mut self, name: &str, max: u64) -> PResult<Vec<u8>> {
        let (size, mut reader) = self.open_record(name)?;
        if size > max {
            return Err(format!(
                "the record {name} holds {size} bytes, more than the {max} it may; the file is \
                 damaged or crafted"
            ));
        }
        let mut data = Vec::with_capacity(size as usize);
        reader
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot read the record {name}: {e}; the file is damaged"))?;
        if data.len() as u64 != size {
            return Err(format!(
                "the record {name} holds {} bytes, not {size}; the file is damaged",
                data.len()
            ));
        }
        Ok(data)
    }

    /// A reader of the record `name` and the bytes it holds, checked before anything is
    /// allocated: a stored record holds what it declares; a compressed one (torch never
    /// compresses, but other zip tools do) is inflated once to count its bytes, so that a
    /// record that claims more than it expands to allocates nothing.
    fn open_record(&mut self, name: &str) -> PResult<(u64, Box<dyn Read + '_>)> {
        let missing = |e: ZipError| match e {
            ZipError::FileNotFound => {
                format!("the record {name} is missing; the file is damaged or truncated")
            }
            e => format!("cannot read the record {name}: {e}"),
        };
        let (size, compressed, method) = {
            let file = self.archive.by_name(name).map_err(missing)?;
            (file.size(), file.compressed_size(), file.compression())
        };
        if method != CompressionMethod::Stored {
            // Deflate shrinks data at most 1032-fold.
            if size > compressed.saturating_mul(1032) {
                return Err(format!("the record {name} declares {size} bytes, more than it can hold; the file is damaged"));
            }
            let file = self.archive.by_name(name).map_err(missing)?;
            let real = std::io::copy(&mut file.take(size.saturating_add(1)), &mut std::io::sink())
                .map_err(|e| format!("cannot read the record {name}: {e}; the file is damaged"))?;
            if real != size {
                return Err(format!(
                    "the record {name} holds {real} bytes, not {size}; the file is damaged"
                ));
            }
        }
        // The zip file stops at its size, and checks its CRC-32 when read to the end.
        let file = self.archive.by_name(name).map_err(missing)?;
        Ok((size, Box::new(file)))
    }
}

impl<R: Read + Seek> Storages for PthFile<R> {
    fn open(&mut self, storage: &StorageRef) -> PResult<(u64, Box<dyn Read + '_>)> {
        let name = format!("{}data/{}", self.prefix, storage.key);
        self.open_record(&name)
    }
}

/// Opens the zip archive torch wrote.
///
/// The archive starts at byte 0: torch never prepends anything. The zip crate's default
/// (`ArchiveOffset::Detect`) guesses where the central directory starts from its size,
/// as if it ended where the end-of-central-directory record starts; but torch writes the
/// zip64 end records (56 + 20 bytes) in between. When the first central header is also
/// 76 bytes long (46 bytes and the name `<stem>/data.pkl`, i.e. a 21-character file
/// stem), that guess lands on the second header, and the crate takes the 76 bytes for a
/// prefix and misreads every offset. A known offset of 0 avoids the guess; other zips are
/// read with detection if that fails.
fn open_archive<R: Read + Seek>(mut reader: R) -> PResult<ZipArchive<R>> {
    let damaged = |e: ZipError| {
        format!("the zip archive is damaged or truncated ({e}); a .pth file must be complete")
    };
    let at_zero = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let first = ZipArchive::with_config(at_zero, &mut reader).map(drop);
    reader.rewind().map_err(|e| format!("cannot read: {e}"))?;
    match first {
        Ok(()) => ZipArchive::with_config(at_zero, reader).map_err(damaged),
        Err(_) => ZipArchive::new(reader).map_err(damaged),
    }
}

/// The folder `<name>/` of `<name>/data.pkl`, the record every `torch.save` archive has.
fn find_prefix<R: Read + Seek>(archive: &ZipArchive<R>) -> PResult<String> {
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
        return Err(super::torch::TORCHSCRIPT.to_string());
    }
    Ok(prefix)
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
    }
}
