//! [`Param`]: a trainable tensor, PyTorch's `nn.Parameter`, on candle's [`Var`].

use std::ops::Deref;

use candle_core::{Tensor, Var};

use crate::error::Result;

/// A parameter: a tensor an optimizer trains. A module field of this type is listed by
/// `named_parameters` and `parameters` (what optimizers get), moved and cast with the module,
/// and saved in its state dict.
///
/// It wraps a candle [`Var`], so a backward pass gives it a gradient. It dereferences to the
/// tensor, so `param.dims()` and `x.matmul(&param)` work as on a `Tensor`.
///
/// Cloning a `Param` gives a second handle to the same variable, as cloning a `Var` does: a
/// cloned module shares its parameters' values until one of them is moved or cast (which
/// makes new variables), and `load_state_dict` writes into the shared values.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use understanding_buffers::nn::param::Param;
///
/// let weight = Param::new(Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?)?;
/// assert_eq!(weight.dims(), [2, 2]);
/// let loss = weight.sqr()?.sum_all()?;
/// let grads = loss.backward()?;
/// assert_eq!(grads.get(&weight).unwrap().to_vec2::<f32>()?, [[2., 4.], [6., 8.]]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Param(Var);

impl Param {
    /// A parameter holding a copy of `tensor`'s values (never the tensor itself, so that
    /// training it changes nothing else).
    pub fn new(tensor: Tensor) -> Result<Self> {
        Ok(Self(Var::from_tensor(&tensor.detach())?))
    }

    /// The candle variable, as optimizers take it.
    pub fn var(&self) -> &Var {
        &self.0
    }

    /// The parameter's tensor.
    pub fn as_tensor(&self) -> &Tensor {
        self.0.as_tensor()
    }

    /// Copies `value` into this parameter's storage, keeping the variable (and so every
    /// optimizer that holds it). `value` must have the parameter's shape, dtype and device.
    /// Whether `self` and `other` are one parameter under two names (tied weights, as
    /// GPT-2 ties its token embedding and its output head): clones of one `Param` share
    /// their variable's storage. Storage identity, not tensor ids, decides: under evcxr each
    /// cell counts tensor ids afresh.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use understanding_buffers::nn::param::Param;
    ///
    /// let p = Param::new(Tensor::ones(3, candle_core::DType::F32, &Device::Cpu)?)?;
    /// assert!(p.is_same(&p.clone()));
    /// assert!(!p.is_same(&Param::new(p.as_tensor().clone())?)); // a copy of its values
    /// # Ok::<(), understanding_buffers::error::Error>(())
    /// ```
    pub fn is_same(&self, other: &Param) -> bool {
        self.storage_key() == other.storage_key()
    }

    /// The identity of the storage behind this parameter (see [`Param::is_same`]).
    pub(crate) fn storage_key(&self) -> usize {
        let (storage, _) = self.0.as_tensor().storage_and_layout();
        &*storage as *const _ as usize
    }

    pub(crate) fn copy_from(&self, value: &Tensor) -> Result<()> {
        // `value` may share this parameter's storage (its own value, or a view of it), which
        // `Var::set` refuses: copy it first. Tensor ids cannot tell: under evcxr each cell
        // counts them afresh, so tensors of two cells can have the same id.
        self.0.set(&value.detach().copy()?)?;
        Ok(())
    }
}

impl Deref for Param {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        self.0.as_tensor()
    }
}

impl AsRef<Tensor> for Param {
    fn as_ref(&self) -> &Tensor {
        self.0.as_tensor()
    }
}
