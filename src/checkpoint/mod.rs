//! Checkpoints: state dicts saved to and loaded from safetensors files and PyTorch's `.pth`
//! files, so that weights move between PyTorch and candle in both directions.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use understanding_buffers::{checkpoint, nn::state_dict::StateDict};
//!
//! let mut sd = StateDict::new();
//! sd.insert("mask", Tensor::new(&[[0f32, 2.], [0., 0.]], &Device::Cpu)?);
//! let path = std::env::temp_dir().join("understanding-buffers-doc-checkpoint.pth");
//! checkpoint::save(&sd, &path)?; // `torch.load(path)` reads this file
//! let loaded = checkpoint::load(&path, &Device::Cpu)?;
//! assert_eq!(loaded.keys().collect::<Vec<_>>(), ["mask"]);
//! assert_eq!(loaded.get("mask").unwrap().to_vec2::<f32>()?, [[0., 2.], [0., 0.]]);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), understanding_buffers::error::Error>(())
//! ```
//!
//! # The two formats
//!
//! **safetensors** is an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range (`"data_offsets"`), then the raw little-endian data.
//! It holds no code and records no key order: [`load_safetensors`] returns the keys in the
//! order of their data in the file. The `safetensors` library (which [`save_safetensors`]
//! uses, like PyTorch's `safetensors.torch.save_file`) writes the tensors sorted by dtype
//! size, then by name, so that order is generally *not* the state dict's order.
//!
//! **`.pth`** is what `torch.save(model.state_dict(), path)` writes: a zip archive of
//! uncompressed records, all in one folder named after the file:
//!
//! - `model/data.pkl`: a [pickle](https://docs.python.org/3/library/pickle.html) (protocol 2)
//!   of the state dict, a `collections.OrderedDict` whose values are calls
//!   `torch._utils._rebuild_tensor_v2(storage, storage_offset, shape, stride, requires_grad,
//!   backward_hooks)`; each storage is a *persistent id* `('storage', torch.FloatStorage,
//!   '0', 'cpu', numel)` that points to a record of its own;
//! - `model/data/0`, `model/data/1`, ...: each storage's raw bytes;
//! - `model/version` and `model/byteorder` (`little`), and, from recent PyTorch versions,
//!   `model/.format_version` and `model/.storage_alignment` (records start at multiples of
//!   64 bytes).
//!
//! The pickle keeps the keys' order. But a pickle is a program: loading one with Python's
//! `pickle` can run any code. [`load_pth`] runs its own small interpreter instead, which
//! knows only the opcodes `torch.save` writes and answers only the few calls a state dict
//! needs, like PyTorch's `torch.load(weights_only=True)`. It ignores the device a tensor was
//! saved from (`'cuda:0'`): tensors go to the device you ask for. Views load with their
//! values: a transpose or a slice is copied out of its storage, and an expanded view (stride
//! 0, PyTorch's `expand`) stays a view, a candle broadcast, so that memory stays in
//! proportion to the file. Anything else (a whole
//! pickled `nn.Module`, a `torch.bool` tensor candle cannot hold, a damaged file) is an error
//! that says what is wrong and how to fix it.
//!
//! [`load`] tells the formats apart by their first bytes, whatever the extension (`.pt`,
//! `.bin` and Lightning's `.ckpt` are `torch.save` files too). It also reads PyTorch's
//! **legacy format** (before PyTorch 1.6, or `_use_new_zipfile_serialization=False`):
//! pickles in a row, then the storages, run by the same interpreter with the same checks.
//! A **training checkpoint** (`{"epoch": 3, "model": {...}, "optimizer": {...}}`) is
//! refused with an error that names the keys holding state dicts; [`load_with_key`] picks
//! one. The rest of such a file is read but never run: a call to any other global (an
//! optimizer's settings, a pickled class) only records its name.
//!
//! Memory: storages are read once, straight into the tensors' buffers, and views of them
//! stay views where candle can express them (C order, transposes, expansions), so loading
//! a file takes about its size in memory. Whatever a file claims, a load (or a refusal)
//! holds at most about 64 MiB beyond twice the tensor bytes the file really stores.
//!
//! Every save is atomic: the file is written under a temporary name in the same folder,
//! flushed to disk, then renamed over the target. If anything fails, the temporary file is
//! removed and a file that was already at the target is left as it was.
//!
//! Supported dtypes, in both formats: `u8`, `u32`, `i16`, `i32`, `i64`, `bf16`, `f16`,
//! `f32`, `f64` and `f8e4m3` (PyTorch's `float8_e4m3fn`); candle's 4- and 6-bit
//! floats and `f8e8m0` are not.

// The code, from the bottom up: `pickle.rs` runs (and writes) pickles without running their
// code, and knows nothing of torch; `torch.rs` says what the globals of a torch.save pickle
// mean (it is the interpreter's host); `pth.rs` reads and writes the zip archive;
// `safetensors.rs` wraps the safetensors crate.
mod legacy;
mod pickle;
mod pth;
mod safetensors;
mod select;
mod storages;
mod torch;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};

use crate::error::{Error, Result};
use crate::nn::load::{IncompatibleKeys, LoadMode};
use crate::nn::module::TorchModule;
use crate::nn::state_dict::StateDict;

/// Saving and loading a whole module, for every [`TorchModule`] (the prelude imports it).
///
/// ```
/// use understanding_buffers::prelude::*;
///
/// let m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
/// let path = std::env::temp_dir().join("understanding-buffers-doc-module.pth");
/// m.save(&path)?; // torch.save(m.state_dict(), path)
/// let mut fresh = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
/// assert!(fresh.load(&path, LoadMode::Strict)?.is_empty()); // every key matched
/// assert_eq!(fresh.state_dict().to_string(), m.state_dict().to_string());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub trait Checkpoint: TorchModule {
    /// Saves the module's state dict to `path` (`.safetensors` or `.pth`), atomically.
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save(&self.state_dict(), path)
    }

    /// Loads a state dict from `path` (safetensors or PyTorch's formats, told apart by
    /// content) with [`TorchModule::load_state_dict`]. On an error the module is unchanged.
    fn load(&mut self, path: impl AsRef<Path>, mode: LoadMode) -> Result<IncompatibleKeys> {
        let state = load(path, &Device::Cpu)?;
        self.load_state_dict(&state, mode)
    }

    /// Loads the state dict under `key` of a training checkpoint (see [`load_with_key`]).
    ///
    /// ```
    /// use understanding_buffers::prelude::*;
    /// # use understanding_buffers::checkpoint;
    ///
    /// let m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
    /// let path = std::env::temp_dir().join("understanding-buffers-doc-module-key.pth");
    /// m.save(&path)?;
    /// // A file saved with torch.save({"epoch": 3, "model": model.state_dict()}, path)
    /// // loads with fresh.load_with_key(path, "model", LoadMode::Strict).
    /// let mut fresh = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
    /// let err = fresh.load_with_key(&path, "model", LoadMode::Strict).unwrap_err();
    /// assert!(err.to_string().contains("no key \"model\""));
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    fn load_with_key(
        &mut self,
        path: impl AsRef<Path>,
        key: &str,
        mode: LoadMode,
    ) -> Result<IncompatibleKeys> {
        let state = load_with_key(path, key, &Device::Cpu)?;
        self.load_state_dict(&state, mode)
    }
}

impl<M: TorchModule + ?Sized> Checkpoint for M {}

/// What errors of the `*_bytes` loaders name as the file.
const IN_MEMORY: &str = "<bytes>";

/// Saves `sd` in the format its extension names: `.safetensors`, or `.pth`, `.pt`, `.bin`
/// for PyTorch's format (see [`save_pth`]).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::{checkpoint, nn::state_dict::StateDict};
///
/// let mut sd = StateDict::new();
/// sd.insert("w", Tensor::ones((2, 3), candle_core::DType::F32, &Device::Cpu)?);
/// let path = std::env::temp_dir().join("understanding-buffers-doc-save.safetensors");
/// checkpoint::save(&sd, &path)?;
/// # std::fs::remove_file(&path).unwrap();
///
/// let err = checkpoint::save(&sd, "weights.npz").unwrap_err();
/// assert!(err.to_string().contains(".safetensors"));
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn save(sd: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    match Format::of(path)? {
        Format::Safetensors => save_safetensors(sd, path),
        Format::Pth => save_pth(sd, path),
    }
}

/// Loads a state dict onto `device` from a safetensors file or a PyTorch file (the zip
/// archive of `torch.save`, or its legacy format), told apart by their content, whatever
/// the extension (`.pth`, `.pt`, `.bin`, `.ckpt`, ...).
///
/// A training checkpoint (`{"epoch": 3, "model": {...}}`) is refused with an error that
/// names the keys holding state dicts: pick one with [`load_with_key`].
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/reference/seed123_with_buffer.pth");
/// let sd = checkpoint::load(path, &Device::Cpu)?;
/// assert_eq!(
///     sd.keys().collect::<Vec<_>>(),
///     ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
/// );
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<StateDict> {
    load_file(path.as_ref(), None, device)
}

/// Loads the state dict under `key` of a training checkpoint onto `device`: the dict
/// `checkpoint[key]` of a file saved with `torch.save({"epoch": 3, "model":
/// model.state_dict(), "optimizer": ...}, path)`, or `"state_dict"` of a PyTorch Lightning
/// `.ckpt`. Like candle's `read_all_with_key`. The rest of the file is read (no code runs)
/// but not kept.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/checkpoint/training_checkpoint.pth");
/// let err = checkpoint::load(path, &Device::Cpu).unwrap_err();
/// assert!(err.to_string().contains("the state dicts (dicts of tensors) are under \"model\""));
/// let sd = checkpoint::load_with_key(path, "model", &Device::Cpu)?;
/// assert_eq!(sd.keys().next(), Some("linear.weight"));
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn load_with_key(path: impl AsRef<Path>, key: &str, device: &Device) -> Result<StateDict> {
    load_file(path.as_ref(), Some(key), device)
}

fn load_file(path: &Path, key: Option<&str>, device: &Device) -> Result<StateDict> {
    let cannot = |e: std::io::Error| Error::checkpoint(path, format!("cannot read: {e}"));
    let mut file = File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    let mut head = Vec::with_capacity(16);
    (&mut file)
        .take(16)
        .read_to_end(&mut head)
        .map_err(cannot)?;
    file.rewind().map_err(cannot)?;
    match Content::of(&head) {
        Ok(Content::Safetensors) => match key {
            None => load_safetensors(path, device),
            Some(key) => Err(Error::checkpoint(
                path,
                format!("a safetensors file holds one state dict, with no key {key:?} to pick: load it with checkpoint::load"),
            )),
        },
        Ok(Content::Zip) => pth::load(BufReader::new(file), key, device, path),
        Ok(Content::Legacy) => legacy::load(BufReader::new(file), len, key, device, path),
        Err(reason) => Err(Error::checkpoint(path, reason)),
    }
}

/// Saves `sd` as a safetensors file, atomically. The file records no key order (see the
/// [module docs](self)).
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::{checkpoint, nn::state_dict::StateDict};
///
/// let mut sd = StateDict::new();
/// sd.insert("pe", Tensor::zeros((4, 8), DType::F32, &Device::Cpu)?);
/// let path = std::env::temp_dir().join("understanding-buffers-doc-save_safetensors.safetensors");
/// checkpoint::save_safetensors(&sd, &path)?;
/// assert_eq!(checkpoint::load_safetensors(&path, &Device::Cpu)?.get("pe").unwrap().dims(), [4, 8]);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn save_safetensors(sd: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    safetensors::save(sd, path.as_ref())
}

/// Loads a safetensors file onto `device`. The keys come in the order of their data in the
/// file, since the format records no other.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/reference/seed123_with_buffer.safetensors");
/// let sd = checkpoint::load_safetensors(path, &Device::Cpu)?;
/// assert_eq!(sd.get("mask").unwrap().dims(), [6, 6]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn load_safetensors(path: impl AsRef<Path>, device: &Device) -> Result<StateDict> {
    let path = path.as_ref();
    safetensors::load_bytes(&read(path)?, device, path)
}

/// [`load_safetensors`] for a file already in memory.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// let err = checkpoint::load_safetensors_bytes(b"not a checkpoint", &Device::Cpu).unwrap_err();
/// assert!(err.to_string().contains("not a readable safetensors file"));
/// ```
pub fn load_safetensors_bytes(bytes: &[u8], device: &Device) -> Result<StateDict> {
    safetensors::load_bytes(bytes, device, Path::new(IN_MEMORY))
}

/// Saves `sd` in PyTorch's `.pth` format, atomically: `torch.load(path)` (with or without
/// `weights_only=True`) returns an `OrderedDict` with the same keys in the same order and
/// the same values.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::{checkpoint, nn::state_dict::StateDict};
///
/// let mut sd = StateDict::new();
/// sd.insert("b", Tensor::new(&[1f32, 2.], &Device::Cpu)?);
/// sd.insert("a", Tensor::new(&[3i64], &Device::Cpu)?);
/// let path = std::env::temp_dir().join("understanding-buffers-doc-save_pth.pth");
/// checkpoint::save_pth(&sd, &path)?;
/// assert_eq!(checkpoint::load_pth(&path, &Device::Cpu)?.keys().collect::<Vec<_>>(), ["b", "a"]);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn save_pth(sd: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    pth::save(sd, path.as_ref())
}

/// Loads a PyTorch file (written by `torch.save` of a state dict, in the zip format or the
/// legacy one) onto `device`, in the file's key order, without running any code from it.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// // Saved by PyTorch from `cuda:0`; loaded wherever we ask.
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/reference/model_with_buffer_mask2.pth");
/// let sd = checkpoint::load_pth(path, &Device::Cpu)?;
/// let mask = sd.get("mask").unwrap().to_vec2::<f32>()?;
/// assert_eq!(mask[0], [0., 2., 2., 2., 2., 2.]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn load_pth(path: impl AsRef<Path>, device: &Device) -> Result<StateDict> {
    let path = path.as_ref();
    let file =
        File::open(path).map_err(|e| Error::checkpoint(path, format!("cannot read: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| Error::checkpoint(path, format!("cannot read: {e}")))?
        .len();
    load_pth_from(BufReader::new(file), len, None, device, path)
}

/// [`load_pth`] for a file already in memory.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// let err = checkpoint::load_pth_bytes(b"", &Device::Cpu).unwrap_err();
/// assert_eq!(err.to_string(), "<bytes>: the file is empty");
/// ```
pub fn load_pth_bytes(bytes: &[u8], device: &Device) -> Result<StateDict> {
    load_pth_from(
        Cursor::new(bytes),
        bytes.len() as u64,
        None,
        device,
        Path::new(IN_MEMORY),
    )
}

/// [`load_with_key`] for a PyTorch file already in memory.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::checkpoint;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/checkpoint/training_checkpoint.pth");
/// let bytes = std::fs::read(path).unwrap();
/// let sd = checkpoint::load_pth_bytes_with_key(&bytes, "model", &Device::Cpu)?;
/// assert_eq!(sd.len(), 7);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn load_pth_bytes_with_key(bytes: &[u8], key: &str, device: &Device) -> Result<StateDict> {
    load_pth_from(
        Cursor::new(bytes),
        bytes.len() as u64,
        Some(key),
        device,
        Path::new(IN_MEMORY),
    )
}

fn load_pth_from<R: Read + Seek>(
    mut reader: R,
    len: u64,
    key: Option<&str>,
    device: &Device,
    source: &Path,
) -> Result<StateDict> {
    let mut head = Vec::with_capacity(16);
    (&mut reader)
        .take(16)
        .read_to_end(&mut head)
        .and_then(|_| reader.rewind())
        .map_err(|e| Error::checkpoint(source, format!("cannot read: {e}")))?;
    match Content::of(&head) {
        Ok(Content::Zip) => pth::load(reader, key, device, source),
        Ok(Content::Legacy) => legacy::load(reader, len, key, device, source),
        Ok(Content::Safetensors) => Err(Error::checkpoint(
            source,
            "this looks like a safetensors file, not a .pth archive; load it with \
             load_safetensors, or with checkpoint::load, which reads both",
        )),
        Err(reason) => Err(Error::checkpoint(source, reason)),
    }
}

/// What a checkpoint file holds, told by its first bytes.
enum Content {
    /// `torch.save`'s zip archive.
    Zip,
    /// PyTorch's legacy format.
    Legacy,
    Safetensors,
}

impl Content {
    fn of(head: &[u8]) -> std::result::Result<Self, String> {
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            return Ok(Self::Zip);
        }
        if head.starts_with(legacy::MAGIC) {
            return Ok(Self::Legacy);
        }
        if head.is_empty() {
            return Err("the file is empty".into());
        }
        if head.get(8) == Some(&b'{') {
            return Ok(Self::Safetensors);
        }
        let shown: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Err(format!(
            "not a checkpoint this crate reads: a PyTorch file is a zip archive, starting \
             with 50 4b 03 04 (\"PK\"), or a legacy pickle, starting with 80 02 8a 0a, and a \
             safetensors file has its JSON header at byte 8; this one starts with {}",
            shown.join(" ")
        ))
    }
}

/// The formats [`save`] writes, told apart by extension.
enum Format {
    Safetensors,
    Pth,
}

impl Format {
    fn of(path: &Path) -> Result<Self> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
        match ext.as_deref() {
            Some("safetensors") => Ok(Self::Safetensors),
            Some("pth" | "pt" | "bin") => Ok(Self::Pth),
            other => Err(Error::checkpoint(
                path,
                format!(
                    "{}: use .safetensors, or .pth, .pt or .bin for PyTorch's format",
                    match other {
                        Some(ext) => format!("unknown checkpoint extension \".{ext}\""),
                        None => "the file name has no extension".into(),
                    }
                ),
            )),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::checkpoint(path, format!("cannot read: {e}")))
}

/// Writes `path` through `write`, atomically: into a new temporary file in the same folder,
/// flushed to disk, then renamed over `path`. On any error the temporary file is removed and
/// whatever was at `path` stays as it was.
fn write_atomically(path: &Path, write: impl FnOnce(&File) -> Result<()>) -> Result<()> {
    let io_error = |what: &str, e: std::io::Error| Error::checkpoint(path, format!("{what}: {e}"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::checkpoint(path, "the path names no file"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = dir.join(temp_name(name));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io_error("cannot create a temporary file in its folder", e))?;
    let written = write(&file)
        .and_then(|()| {
            file.sync_all()
                .map_err(|e| io_error("cannot flush it to disk", e))
        })
        .and_then(|()| {
            drop(file);
            fs::rename(&temp, path).map_err(|e| io_error("cannot move it into place", e))
        });
    if written.is_err() {
        let _ = fs::remove_file(&temp);
        return written;
    }
    // Make the rename itself durable; folders cannot be opened for syncing everywhere.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// `.<name>.<pid>-<n>.tmp`: hidden, and unique among this process's concurrent saves.
fn temp_name(name: &std::ffi::OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}-{n}.tmp", std::process::id()));
    temp
}

/// A tensor's elements as little-endian bytes, in row-major order.
fn tensor_to_le_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let tensor = tensor.to_device(&Device::Cpu)?.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::Input("a contiguous tensor has a strided layout".into()))?;
    let Storage::Cpu(cpu) = &*storage else {
        return Err(Error::Device(
            "a tensor moved to the CPU is not on the CPU".into(),
        ));
    };
    fn le<T: Copy, const N: usize>(
        v: &[T],
        range: (usize, usize),
        f: impl Fn(T) -> [u8; N],
    ) -> Result<Vec<u8>> {
        let elements = v
            .get(range.0..range.1)
            .ok_or_else(|| Error::Input("a tensor's layout lies outside its storage".into()))?;
        Ok(elements.iter().flat_map(|&x| f(x)).collect())
    }
    let range = (start, end);
    match cpu {
        CpuStorage::U8(v) => le(v, range, |x| [x]),
        CpuStorage::U32(v) => le(v, range, u32::to_le_bytes),
        CpuStorage::I16(v) => le(v, range, i16::to_le_bytes),
        CpuStorage::I32(v) => le(v, range, i32::to_le_bytes),
        CpuStorage::I64(v) => le(v, range, i64::to_le_bytes),
        CpuStorage::BF16(v) => le(v, range, |x| x.to_le_bytes()),
        CpuStorage::F16(v) => le(v, range, |x| x.to_le_bytes()),
        CpuStorage::F32(v) => le(v, range, f32::to_le_bytes),
        CpuStorage::F64(v) => le(v, range, f64::to_le_bytes),
        CpuStorage::F8E4M3(v) => le(v, range, |x| [x.to_bits()]),
        CpuStorage::F6E2M3(_)
        | CpuStorage::F6E3M2(_)
        | CpuStorage::F4(_)
        | CpuStorage::F8E8M0(_) => Err(Error::Input(format!(
            "candle's {:?} tensors cannot be saved; convert them with .to_dtype(DType::F32) first",
            tensor.dtype()
        ))),
    }
}

/// A tensor of `dtype` and `shape` on `device` from little-endian, row-major bytes.
fn tensor_from_le_bytes(
    bytes: &[u8],
    dtype: DType,
    shape: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let expected = numel.and_then(|n| n.checked_mul(dtype.size_in_bytes()));
    if expected != Some(bytes.len()) {
        return Err(Error::Input(format!(
            "{} bytes cannot fill a {dtype:?} tensor of shape {shape:?}",
            bytes.len()
        )));
    }
    if cfg!(target_endian = "big") {
        let mut native = bytes.to_vec();
        native
            .chunks_exact_mut(dtype.size_in_bytes())
            .for_each(<[u8]>::reverse);
        return Ok(Tensor::from_raw_buffer(&native, dtype, shape, device)?);
    }
    Ok(Tensor::from_raw_buffer(bytes, dtype, shape, device)?)
}
