//! [`Buffer`]: a tensor that belongs to a module but is never trained (PyTorch's
//! `register_buffer`).

use std::ops::Deref;

use candle_core::Tensor;

/// A buffer: a tensor the module owns without training it. A module field of this type moves
/// and casts with the module (`to_device`, `to_dtype`) and is saved in its state dict; with
/// `#[module(persistent = false)]` it is not saved. It is never handed to an optimizer and
/// never gets a gradient.
///
/// `Option<Buffer>` is PyTorch's `register_buffer(name, None)`: a buffer the module knows by
/// name but that holds nothing yet, absent from `state_dict` and `named_buffers` until a
/// tensor is set.
///
/// It dereferences to its tensor, so a forward pass reads `self.mask` the same way whether
/// the field is a `Buffer` or a plain `Tensor`.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::nn::buffer::Buffer;
///
/// let mask = Buffer::new(Tensor::ones((2, 2), DType::F32, &Device::Cpu)?);
/// assert_eq!(mask.dims(), [2, 2]);
/// assert!(!mask.is_variable()); // never trained
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Buffer(Tensor);

impl Buffer {
    /// A buffer holding `tensor`, detached from any computation graph.
    pub fn new(tensor: Tensor) -> Self {
        Self(tensor.detach())
    }

    /// The buffer's tensor.
    pub fn as_tensor(&self) -> &Tensor {
        &self.0
    }

    /// The buffer's tensor, by value.
    pub fn into_tensor(self) -> Tensor {
        self.0
    }
}

impl From<Tensor> for Buffer {
    fn from(tensor: Tensor) -> Self {
        Self::new(tensor)
    }
}

impl Deref for Buffer {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

impl AsRef<Tensor> for Buffer {
    fn as_ref(&self) -> &Tensor {
        &self.0
    }
}
