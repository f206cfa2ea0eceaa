//! PyTorch-style printing of tensors. (Being written: temporary minimal form.)
use std::fmt;
use candle_core::Tensor;
/// Prints a tensor the way PyTorch's `repr` does.
pub struct TensorRepr<'a>(pub &'a Tensor);
impl fmt::Display for TensorRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor({})", self.0)
    }
}
