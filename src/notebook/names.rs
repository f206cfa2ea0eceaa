//! [`names`]: the names of a `named_parameters()` or `named_buffers()` list, as PyTorch
//! users write `[name for name, _ in model.named_buffers()]`.

/// The names of a list of `(name, value)` pairs, in order, such as
/// [`TorchModule::named_buffers`](crate::nn::TorchModule::named_buffers) returns.
///
/// ```
/// use understanding_buffers::prelude::*;
///
/// let model = PositionalEncodingWithBuffer::new(100, 8, 6, 0)?;
/// assert_eq!(names(&model.named_buffers()), ["pe"]);
/// assert_eq!(names(&model.named_parameters()), ["embedding.weight"]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn names<T>(named: &[(String, T)]) -> Vec<&str> {
    named.iter().map(|(name, _)| name.as_str()).collect()
}
