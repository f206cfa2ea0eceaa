//! From storages to tensors, for both `.pth` formats: each storage is read once, straight
//! into the buffer of a candle tensor, and every tensor of the state dict is a view of it.
//!
//! - A view whose elements lie in C order, or in C order after permuting its dimensions
//!   (a transpose), is a candle view of the storage: no copy, as in PyTorch, so a file of
//!   N bytes takes N bytes of memory.
//! - An expanded dimension (stride 0, PyTorch's `expand`) is read once and broadcast.
//! - Other views (a column cut out of a matrix) are copied, and the copies of a whole file
//!   may not exceed the bytes it stores: many keys on one storage cannot multiply it.
//! - Keys that name the same view (tied weights) share one tensor.

use std::collections::HashMap;
use std::io::Read;

use candle_core::{DType, Device, Tensor};

use super::pickle::PResult;
use super::torch::{InCandle, StorageRef, TensorRef};
use crate::error::{Error, Result};
use crate::nn::state_dict::StateDict;

/// Where a format keeps its storages.
pub(super) trait Storages {
    /// The bytes of storage `storage.key`: how many the file holds, and a reader of them.
    fn open(&mut self, storage: &StorageRef) -> PResult<(u64, Box<dyn Read + '_>)>;
}

/// The bytes views may copy beyond what the file stores.
const COPY_FLOOR: usize = 16 << 20;

/// Builds the state dict of `entries`, reading each storage they view once from `storages`;
/// `little_endian` says how the storages are stored. Errors name the key and what to do.
pub(super) fn build(
    entries: Vec<(String, TensorRef)>,
    storages: &mut impl Storages,
    little_endian: bool,
    device: &Device,
    fail: &impl Fn(String) -> Error,
) -> Result<StateDict> {
    // Refuse what candle cannot hold before reading anything.
    for (key, view) in &entries {
        if let InCandle::Missing { fix } = view.dtype.candle {
            return Err(fail(format!(
                "key {key:?} is a torch.{} tensor, which candle cannot hold; convert it with \
                 {fix} before saving",
                view.dtype.name
            )));
        }
    }
    // How many keys use each storage, so that a storage is dropped after its last one.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, view) in &entries {
        *uses.entry(view.storage.key.as_str()).or_default() += 1;
    }
    let mut uses: HashMap<String, usize> =
        uses.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    let mut read: HashMap<String, Tensor> = HashMap::new();
    let mut views: HashMap<ViewId, Tensor> = HashMap::new();
    let (mut stored, mut copied) = (0usize, 0usize);
    let mut sd = StateDict::new();
    for (key, view) in entries {
        let id = ViewId::of(&view);
        let tensor = match views.get(&id) {
            Some(tensor) => tensor.clone(),
            None => {
                if !read.contains_key(&view.storage.key) {
                    let storage = read_storage(storages, &view, little_endian, device).map_err(
                        |e| match e {
                            Error::Checkpoint { reason, .. } => fail(reason),
                            e => e,
                        },
                    )?;
                    stored = stored.saturating_add(storage.elem_count() * view.dtype.size);
                    read.insert(view.storage.key.clone(), storage);
                }
                let storage = read
                    .get(&view.storage.key)
                    .ok_or_else(|| fail("storage cache out of sync".into()))?;
                let (tensor, copy) = view_of(storage, &key, &view).map_err(fail)?;
                copied = copied.saturating_add(copy);
                if copied > stored.saturating_add(COPY_FLOOR) {
                    return Err(fail(format!(
                        "key {key:?}: the file's views copy {copied} bytes out of the {stored} \
                         bytes it stores (many keys on strided views of one storage); save \
                         each tensor with .contiguous() or .clone() first"
                    )));
                }
                views.insert(id, tensor.clone());
                tensor
            }
        };
        if let Some(n) = uses.get_mut(&view.storage.key) {
            *n -= 1;
            if *n == 0 {
                read.remove(&view.storage.key);
            }
        }
        sd.insert(key, tensor);
    }
    Ok(sd)
}

/// What makes two keys the same tensor.
#[derive(PartialEq, Eq, Hash)]
struct ViewId {
    storage: String,
    dtype: &'static str,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl ViewId {
    fn of(view: &TensorRef) -> Self {
        Self {
            storage: view.storage.key.clone(),
            dtype: view.dtype.name,
            offset: view.offset,
            shape: view.shape.clone(),
            stride: view.stride.clone(),
        }
    }
}

/// The storage `view` views, as a 1-D tensor of the view's dtype, its size checked against
/// the file before anything is allocated.
fn read_storage(
    storages: &mut impl Storages,
    view: &TensorRef,
    little_endian: bool,
    device: &Device,
) -> Result<Tensor> {
    let storage = &view.storage;
    let damaged = |what: String| Error::checkpoint("", format!("{what}; the file is damaged"));
    let InCandle::Is(dtype) = view.dtype.candle else {
        return Err(damaged("a dtype candle lacks".into()));
    };
    let declared = match storage.dtype {
        Some(d) => storage.size.checked_mul(d.size),
        None => Some(storage.size),
    };
    let (held, mut reader) = storages
        .open(storage)
        .map_err(|e| Error::checkpoint("", e))?;
    if declared.map(|d| d as u64) != Some(held) {
        return Err(damaged(format!(
            "storage {} should hold {} elements but holds {held} bytes",
            storage.key, storage.size
        )));
    }
    let bytes = held as usize;
    if !bytes.is_multiple_of(view.dtype.size) {
        return Err(damaged(format!(
            "storage {} of {bytes} bytes for {}-byte elements",
            storage.key, view.dtype.size
        )));
    }
    let numel = bytes / view.dtype.size;
    // Stored in the other byte order than this machine's.
    let swap = little_endian == cfg!(target_endian = "big") && view.dtype.size > 1;
    let io = |e: std::io::Error| {
        Error::checkpoint(
            "",
            format!(
                "cannot read storage {}: {e}; the file is damaged or truncated",
                storage.key
            ),
        )
    };
    fn typed<T: bytemuck::Pod + candle_core::WithDType>(
        reader: &mut dyn Read,
        numel: usize,
        swap: bool,
        device: &Device,
    ) -> std::result::Result<Result<Tensor>, std::io::Error> {
        let mut data = vec![T::zeroed(); numel];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data);
        reader.read_exact(bytes)?;
        at_end(reader)?;
        if swap {
            bytes
                .chunks_exact_mut(std::mem::size_of::<T>())
                .for_each(<[u8]>::reverse);
        }
        Ok(Tensor::from_vec(data, numel, device).map_err(Error::from))
    }
    let reader: &mut dyn Read = &mut reader;
    let tensor = match dtype {
        DType::U8 => typed::<u8>(reader, numel, swap, device),
        DType::U32 => typed::<u32>(reader, numel, swap, device),
        DType::I16 => typed::<i16>(reader, numel, swap, device),
        DType::I32 => typed::<i32>(reader, numel, swap, device),
        DType::I64 => typed::<i64>(reader, numel, swap, device),
        DType::BF16 => typed::<half::bf16>(reader, numel, swap, device),
        DType::F16 => typed::<half::f16>(reader, numel, swap, device),
        DType::F32 => typed::<f32>(reader, numel, swap, device),
        DType::F64 => typed::<f64>(reader, numel, swap, device),
        other => {
            // One-byte float formats: read as bytes, then converted by candle.
            let mut data = vec![0u8; bytes];
            reader
                .read_exact(&mut data)
                .and_then(|()| at_end(reader))
                .map_err(io)?;
            return Ok(Tensor::from_raw_buffer(&data, other, &[numel], device)?);
        }
    };
    tensor.map_err(io)?
}

/// Reads `reader` to its end, which must have come: a zip record checks its CRC-32 there.
fn at_end(reader: &mut dyn Read) -> std::io::Result<()> {
    match reader.read(&mut [0u8; 1])? {
        0 => Ok(()),
        _ => Err(std::io::Error::other(
            "the record holds more bytes than its size",
        )),
    }
}

/// The tensor `view` describes, made of the 1-D `storage`, and the bytes it copied.
fn view_of(storage: &Tensor, key: &str, view: &TensorRef) -> PResult<(Tensor, usize)> {
    let (shape, stride, size) = (&view.shape, &view.stride, view.dtype.size);
    let damaged = |what: String| format!("key {key:?}: {what}; the file is damaged");
    let candle = |e: candle_core::Error| format!("key {key:?}: {e}");
    if shape.len() != stride.len() {
        return Err(damaged(format!(
            "{} sizes but {} strides",
            shape.len(),
            stride.len()
        )));
    }
    let available = storage.elem_count();
    let dtype = storage.dtype();
    if shape.contains(&0) {
        let empty = Tensor::zeros(shape.as_slice(), dtype, storage.device()).map_err(candle)?;
        return Ok((empty, 0));
    }
    let overflow = || damaged("the shape overflows".into());
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(overflow)?;
    // Expanded dimensions are read once, then broadcast.
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
    let (tensor, copied) = match permuted_row_major(&base, stride) {
        // A transpose of C order, or C order itself: a view, no copy.
        Some(order) => {
            let permuted: Vec<usize> = order.iter().map(|&d| base[d]).collect();
            let mut inverse = vec![0; order.len()];
            for (i, &d) in order.iter().enumerate() {
                inverse[d] = i;
            }
            let t = storage
                .narrow(0, view.offset, numel)
                .and_then(|t| t.reshape(permuted))
                .and_then(|t| t.permute(inverse))
                .map_err(candle)?;
            (t, 0)
        }
        None => {
            let mut ids = Vec::with_capacity(numel);
            let mut index = vec![0usize; base.len()];
            for _ in 0..numel {
                let pos = view.offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
                ids.push(pos as i64);
                // Next index, last dimension fastest.
                for (i, &n) in index.iter_mut().zip(&base).rev() {
                    *i += 1;
                    if *i < n {
                        break;
                    }
                    *i = 0;
                }
            }
            let ids = Tensor::from_vec(ids, numel, storage.device()).map_err(candle)?;
            let t = storage
                .index_select(&ids, 0)
                .and_then(|t| t.reshape(base.as_slice()))
                .map_err(candle)?;
            (t, numel * size)
        }
    };
    if base == *shape {
        return Ok((tensor, copied));
    }
    let expanded = tensor.broadcast_as(shape.as_slice()).map_err(candle)?;
    Ok((expanded, copied))
}

/// The order of dimensions (outermost first) in which `stride` lays `shape` out in C order
/// without gaps, if there is one. Dimensions of size 1 may have any stride.
fn permuted_row_major(shape: &[usize], stride: &[usize]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..shape.len()).collect();
    // Outermost (largest stride) first; size-1 dimensions anywhere, kept in place.
    order.sort_by_key(|&d| std::cmp::Reverse(if shape[d] == 1 { usize::MAX } else { stride[d] }));
    let mut expected = 1;
    for &d in order.iter().rev() {
        if shape[d] != 1 && stride[d] != expected {
            return None;
        }
        expected *= shape[d];
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_are_permutations_of_c_order() {
        assert_eq!(permuted_row_major(&[6, 6], &[6, 1]), Some(vec![0, 1]));
        assert_eq!(permuted_row_major(&[4, 3], &[1, 4]), Some(vec![1, 0]));
        assert_eq!(
            permuted_row_major(&[2, 1, 3], &[3, 99, 1]),
            Some(vec![1, 0, 2])
        );
        assert_eq!(permuted_row_major(&[3], &[4]), None);
        assert_eq!(permuted_row_major(&[], &[]), Some(vec![]));
    }
}
