//! PyTorch's legacy `.pth` format, written before PyTorch 1.6 and by
//! `torch.save(obj, path, _use_new_zipfile_serialization=False)`: five pickles in a row,
//! then the storages.
//!
//! 1. the magic number `0x1950a86a20f9469cfc6c`;
//! 2. the protocol version, `1001`;
//! 3. `sys_info`: `{"protocol_version": 1001, "little_endian": True, "type_sizes": {...}}`;
//! 4. the object (the state dict), whose storages are persistent ids
//!    `('storage', torch.FloatStorage, '<key>', 'cpu', numel, None)`;
//! 5. the storage keys, in the order their data follows;
//!
//! then, for each key, its number of elements (8 bytes, little-endian) and its raw bytes.
//!
//! The same interpreter as for zip archives runs the pickles (no code runs, memory bounded),
//! and storages are read straight into tensors, each checked against the size the pickle
//! declared and against the file's length before anything is allocated.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::Device;

use super::pickle::{self, PResult, Value, ENDS_EARLY};
use super::pth::{MAX_PICKLE, PICKLE_ALLOWANCE};
use super::select;
use super::storages::{self, Storages};
use super::torch::{StorageRef, TorchGlobals, TorchValue};
use crate::error::{Error, Result};
use crate::nn::state_dict::StateDict;

/// The first bytes of every legacy file: `PROTO 2`, then the magic number as a `LONG1`.
pub(super) const MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Reads the state dict of the legacy file `reader`, `len` bytes long (under `key` of a
/// training checkpoint, if given) onto `device`; `source` names it in errors.
pub(super) fn load<R: Read + Seek>(
    mut reader: R,
    len: u64,
    key: Option<&str>,
    device: &Device,
    source: &Path,
) -> Result<StateDict> {
    let fail = |reason: String| Error::checkpoint(source, reason);
    let header = Header::read(&mut reader, len).map_err(fail)?;
    let entries = select::state_dict(header.object, key).map_err(fail)?;
    let mut file =
        LegacyFile::new(reader, len, header.start, &header.keys, &header.storages).map_err(fail)?;
    storages::build(entries, &mut file, header.little_endian, device, &fail)
}

/// The five pickles.
struct Header {
    object: TorchValue,
    keys: Vec<String>,
    storages: HashMap<String, StorageRef>,
    little_endian: bool,
    /// Where the storages start.
    start: u64,
}

impl Header {
    /// Reads the pickles from a prefix of the file, longer each time one ends early.
    fn read(reader: &mut (impl Read + Seek), len: u64) -> PResult<Self> {
        let cap = len.min(MAX_PICKLE);
        let mut want = cap.min(1 << 20);
        loop {
            let mut prefix = Vec::with_capacity(want as usize);
            reader
                .seek(SeekFrom::Start(0))
                .and_then(|_| reader.by_ref().take(want).read_to_end(&mut prefix))
                .map_err(|e| format!("cannot read: {e}"))?;
            match Self::parse(&prefix) {
                Err(e) if e.contains(ENDS_EARLY) && want < cap => want = (want * 4).min(cap),
                Err(e) if e.contains(ENDS_EARLY) && cap < len => {
                    return Err(format!(
                        "the legacy file's pickles take more than {MAX_PICKLE} bytes; a state \
                         dict's take a few hundred per tensor: the file is damaged or crafted"
                    ))
                }
                other => return other,
            }
        }
    }

    fn parse(data: &[u8]) -> PResult<Self> {
        // The magic number takes 77 bits, more than the interpreter's integers: compared as
        // bytes, with the pickle's STOP.
        if !data.starts_with(MAGIC) || data.get(MAGIC.len()) != Some(&b'.') {
            return Err("not a PyTorch legacy file: its magic number is wrong".into());
        }
        let mut at = MAGIC.len() + 1;
        let mut next = |host: &mut TorchGlobals, what: &str| -> PResult<TorchValue> {
            let rest = data.get(at..).unwrap_or_default();
            let (value, used) = pickle::load_prefix(rest, host, PICKLE_ALLOWANCE).map_err(|e| {
                format!("a file in PyTorch's legacy format, damaged: its {what}: {e}")
            })?;
            at += used;
            Ok(value)
        };
        let mut none = TorchGlobals::default();
        match next(&mut none, "protocol version")? {
            Value::Int(1001) => {}
            other => {
                return Err(format!(
                    "unknown legacy protocol version {other:?}; this crate reads version 1001"
                ))
            }
        }
        let little_endian = match next(&mut none, "sys_info")? {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(k) if k == "little_endian"))
                .map(|(_, v)| matches!(v, Value::Bool(true)))
                .unwrap_or(true),
            other => return Err(format!("sys_info is a {}, not a dict", other.kind())),
        };
        let mut host = TorchGlobals::default();
        let object = next(&mut host, "object")?;
        let keys = match next(&mut none, "storage keys")? {
            Value::List(keys) => keys
                .into_iter()
                .map(|k| match k {
                    Value::Str(k) => Ok(k),
                    other => Err(format!("a storage key is a {}", other.kind())),
                })
                .collect::<PResult<Vec<_>>>()?,
            other => {
                return Err(format!(
                    "the storage keys are a {}, not a list",
                    other.kind()
                ))
            }
        };
        Ok(Self {
            object,
            keys,
            storages: host.storages,
            little_endian,
            start: at as u64,
        })
    }
}

/// The storages of a legacy file: where each one's bytes start, and how many there are.
struct LegacyFile<R> {
    reader: R,
    at: HashMap<String, (u64, u64)>,
}

impl<R: Read + Seek> LegacyFile<R> {
    /// Lays the storages out after `start` in the order of `keys`, each its 8-byte count and
    /// its bytes, and checks that they fit in the file's `len` bytes.
    fn new(
        reader: R,
        len: u64,
        start: u64,
        keys: &[String],
        storages: &HashMap<String, StorageRef>,
    ) -> PResult<Self> {
        let mut at = HashMap::new();
        let mut pos = start;
        for key in keys {
            let storage = storages.get(key).ok_or_else(|| {
                format!("storage {key} is listed but never used; the file is damaged")
            })?;
            let element = storage.dtype.map_or(1, |d| d.size) as u64;
            let bytes = (storage.size as u64).checked_mul(element);
            let end = bytes.and_then(|b| pos.checked_add(8)?.checked_add(b));
            match (bytes, end) {
                (Some(bytes), Some(end)) if end <= len => {
                    at.insert(key.clone(), (pos, bytes));
                    pos = end;
                }
                _ => {
                    return Err(format!(
                        "storage {key} of {} elements lies past the end of the file ({len} \
                         bytes); the file is truncated or damaged",
                        storage.size
                    ))
                }
            }
        }
        Ok(Self { reader, at })
    }
}

impl<R: Read + Seek> Storages for LegacyFile<R> {
    fn open(&mut self, storage: &StorageRef) -> PResult<(u64, Box<dyn Read + '_>)> {
        let &(pos, bytes) = self.at.get(&storage.key).ok_or_else(|| {
            format!(
                "storage {} is not in the file's list of storages; the file is damaged",
                storage.key
            )
        })?;
        let mut count = [0u8; 8];
        self.reader
            .seek(SeekFrom::Start(pos))
            .and_then(|_| self.reader.read_exact(&mut count))
            .map_err(|e| format!("cannot read storage {}: {e}", storage.key))?;
        if u64::from_le_bytes(count) != storage.size as u64 {
            return Err(format!(
                "storage {} holds {} elements where the pickle says {}; the file is damaged",
                storage.key,
                u64::from_le_bytes(count),
                storage.size
            ));
        }
        Ok((bytes, Box::new(self.reader.by_ref().take(bytes))))
    }
}
