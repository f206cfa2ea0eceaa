//! [`StateDict`]: named tensors in a fixed order, like PyTorch's `OrderedDict` state dicts.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// A module's saved state: `(name, tensor)` pairs in PyTorch's order (own parameters, own
/// persistent buffers, then each child's entries under `child.` names).
///
/// Printing it gives PyTorch's `OrderedDict([...])` text, as Jupyter shows it, one key per
/// line (`{:#}`: as Python's `print` does; see [`crate::nn::repr`]):
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::nn::state_dict::StateDict;
///
/// let mut sd = StateDict::new();
/// sd.insert("mask", Tensor::new(&[[0f32, 1.], [0., 0.]], &Device::Cpu)?);
/// assert_eq!(sd.keys().collect::<Vec<_>>(), ["mask"]);
/// assert_eq!(format!("{sd:#}"), "OrderedDict([('mask', tensor([[0., 1.],\n        [0., 0.]]))])");
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    entries: Vec<(String, Tensor)>,
    /// Where each key is in `entries`: lookups take constant time, so that loading a
    /// module of n tensors is O(n), not O(n²).
    index: HashMap<String, usize>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `tensor`: an existing key keeps its place, a new one goes last.
    pub fn insert(&mut self, key: impl Into<String>, tensor: Tensor) {
        let key = key.into();
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = tensor,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, tensor));
            }
        }
    }

    /// The tensor stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Removes `key` and returns its tensor (the keys after it keep their order).
    pub fn remove(&mut self, key: &str) -> Option<Tensor> {
        let at = self.index.remove(key)?;
        let (_, tensor) = self.entries.remove(at);
        for i in self.index.values_mut() {
            if *i > at {
                *i -= 1;
            }
        }
        Some(tensor)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// `(key, tensor)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(k, t)| (k.as_str(), t))
    }

    /// How many tensors it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total size of the tensors' data in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(_, t)| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }

    /// A copy with every tensor on `device`.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        self.map(|t| t.to_device(device))
    }

    /// A copy with every floating-point tensor cast to `dtype`; integer tensors keep theirs.
    /// `dtype` must be a floating-point type, as for [`TorchModule::to_dtype`](crate::nn::TorchModule::to_dtype).
    ///
    /// ```
    /// use candle_core::{DType, Device, Tensor};
    /// use understanding_buffers::nn::state_dict::StateDict;
    ///
    /// let mut sd = StateDict::new();
    /// sd.insert("w", Tensor::ones(2, DType::F32, &Device::Cpu)?);
    /// sd.insert("steps", Tensor::new(&[3i64], &Device::Cpu)?);
    /// let half = sd.to_dtype(DType::F16)?;
    /// assert_eq!((half.get("w").unwrap().dtype(), half.get("steps").unwrap().dtype()), (DType::F16, DType::I64));
    /// assert!(sd.to_dtype(DType::U8).is_err());
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        if !dtype.is_float() {
            return Err(Error::Input(format!(
                "StateDict::to_dtype only accepts floating-point dtypes (like TorchModule::to_dtype), got {dtype:?}"
            )));
        }
        self.map(|t| {
            if t.dtype().is_float() {
                t.to_dtype(dtype)
            } else {
                Ok(t.clone())
            }
        })
    }

    fn map(&self, f: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Result<Self> {
        let entries = self
            .entries
            .iter()
            .map(|(k, t)| Ok((k.clone(), f(t)?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            entries,
            index: self.index.clone(),
        })
    }
}

impl FromIterator<(String, Tensor)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> Self {
        let mut sd = Self::new();
        for (k, t) in iter {
            sd.insert(k, t);
        }
        sd
    }
}

impl IntoIterator for StateDict {
    type Item = (String, Tensor);
    type IntoIter = std::vec::IntoIter<(String, Tensor)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}
