//! What a module's field is, told by its type: [`Field`] turns a reference to a field into a
//! [`FieldRef`] (for reading walks) or a [`FieldMut`] (for moves, casts and loads).
//!
//! | field type | is | moved, cast | saved | trained |
//! |---|---|---|---|---|
//! | [`Param`], `Option<Param>` | a parameter | yes | yes | yes |
//! | [`Buffer`], `Option<Buffer>` | a buffer | yes | yes, unless `#[module(persistent = false)]` | no |
//! | `Tensor` | a plain field | no | no | no |
//! | a type implementing [`TorchModule`] | a child module | its own tensors are | its own are | its own are |
//! | numbers, `bool`, `String` | configuration | — | — | — |
//!
//! `#[derive(Module)]` calls [`Field::field`] and [`Field::field_mut`] on every field; a
//! hand-written `impl TorchModule` does the same (see [`TorchModule`]). A field of any other
//! type needs `#[module(skip)]`.

use candle_core::Tensor;

use crate::nn::buffer::Buffer;
use crate::nn::module::{FieldMut, FieldRef, TorchModule};
use crate::nn::param::Param;

/// A type a module field can have. Implemented for [`Param`], [`Buffer`], their `Option`s,
/// `Tensor`, every [`TorchModule`], and the number, flag and string types a module keeps as
/// configuration.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a module field type: not a Param, Buffer, Tensor, child module (TorchModule), number, bool or String",
    label = "a field of this type",
    note = "mark the field #[module(skip)] if the module walk should not see it"
)]
pub trait Field {
    /// The field as reading walks see it.
    fn field(&self) -> FieldRef<'_>;
    /// The field as moves, casts and loads see it.
    fn field_mut(&mut self) -> FieldMut<'_>;
}

impl Field for Param {
    fn field(&self) -> FieldRef<'_> {
        FieldRef::Parameter(self)
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        FieldMut::Parameter(self)
    }
}

/// `None` is PyTorch's `register_parameter(name, None)`, as `nn.Linear(bias=False)` has.
impl Field for Option<Param> {
    fn field(&self) -> FieldRef<'_> {
        self.as_ref().map_or(FieldRef::Other, FieldRef::Parameter)
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        self.as_mut().map_or(FieldMut::Other, FieldMut::Parameter)
    }
}

impl Field for Buffer {
    fn field(&self) -> FieldRef<'_> {
        FieldRef::Buffer {
            buffer: Some(self),
            persistent: true,
        }
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        FieldMut::Buffer(self)
    }
}

impl Field for Option<Buffer> {
    fn field(&self) -> FieldRef<'_> {
        FieldRef::Buffer {
            buffer: self.as_ref(),
            persistent: true,
        }
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        FieldMut::OptionalBuffer(self)
    }
}

impl Field for Tensor {
    fn field(&self) -> FieldRef<'_> {
        FieldRef::PlainField(self)
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        FieldMut::Other
    }
}

impl<M: TorchModule> Field for M {
    fn field(&self) -> FieldRef<'_> {
        FieldRef::Child(self)
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        FieldMut::Child(self)
    }
}

macro_rules! configuration {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn field(&self) -> FieldRef<'_> {
                FieldRef::Other
            }
            fn field_mut(&mut self) -> FieldMut<'_> {
                FieldMut::Other
            }
        }
    )*};
}

configuration!(bool, char, String, &'static str);
configuration!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

/// The field types `#[module(persistent = false)]` applies to: [`Buffer`] and `Option<Buffer>`.
#[diagnostic::on_unimplemented(
    message = "#[module(persistent = false)] is for Buffer and Option<Buffer> fields, not `{Self}`"
)]
pub trait BufferField {
    /// The buffer, if it holds a tensor.
    fn buffer(&self) -> Option<&Buffer>;
}

impl BufferField for Buffer {
    fn buffer(&self) -> Option<&Buffer> {
        Some(self)
    }
}

impl BufferField for Option<Buffer> {
    fn buffer(&self) -> Option<&Buffer> {
        self.as_ref()
    }
}

/// A buffer field that the state dict leaves out (PyTorch: `register_buffer(name, tensor,
/// persistent=False)`); what `#[module(persistent = false)]` writes.
pub fn non_persistent<B: BufferField>(buffer: &B) -> FieldRef<'_> {
    FieldRef::Buffer {
        buffer: buffer.buffer(),
        persistent: false,
    }
}
