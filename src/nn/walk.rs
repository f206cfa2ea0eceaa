//! The module walk: every tensor of a module and its children by dotted name, read
//! (`visit`, behind [`TorchModule::visit`]) and written (`visit_fields_mut`); and the one
//! way a module changes, for moves, casts, loads and `set_buffer` alike: `prepare` the new
//! values (everything fallible), then `apply` them, all or none.
//!
//! The functions generic over the module only take its field lists and hand them to code
//! that is not generic: a notebook cell that moves or loads a module it defined then
//! compiles a few lines for that type, not the whole walk (~100 functions for a `load`).

use std::collections::{BTreeSet, HashMap};

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::nn::buffer::Buffer;
use crate::nn::module::{FieldMut, FieldRef, TorchModule};
use crate::nn::param::Param;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The walk behind [`TorchModule::visit`]: `f(full_name, field)` for every parameter, buffer
/// and plain field of `module` and its children, in PyTorch's order (see `visit_fields`).
pub(crate) fn visit<M: TorchModule + ?Sized>(module: &M, f: &mut dyn FnMut(&str, FieldRef<'_>)) {
    visit_all_fields(&module.fields(), f);
}

/// `visit_fields` with an `f` that cannot fail.
fn visit_all_fields(
    fields: &[(&'static str, FieldRef<'_>)],
    f: &mut dyn FnMut(&str, FieldRef<'_>),
) {
    let walked = visit_fields(fields, "", &mut |name, field| {
        f(name, field);
        Ok(())
    });
    debug_assert!(walked.is_ok(), "the closure above never fails");
}

/// `f(full_name, field)` for every parameter, buffer and plain field of `fields` (a module's
/// `fields()`) and of its children, in PyTorch's order (own parameters, own buffers, own plain
/// fields, then each child), stopping at the first error of `f`.
fn visit_fields(
    fields: &[(&'static str, FieldRef<'_>)],
    prefix: &str,
    f: &mut dyn FnMut(&str, FieldRef<'_>) -> Result<()>,
) -> Result<()> {
    for (name, field) in fields {
        if let FieldRef::Parameter(_) = field {
            f(&join(prefix, name), *field)?;
        }
    }
    for (name, field) in fields {
        if let FieldRef::Buffer { .. } = field {
            f(&join(prefix, name), *field)?;
        }
    }
    for (name, field) in fields {
        if let FieldRef::PlainField(_) = field {
            f(&join(prefix, name), *field)?;
        }
    }
    for (name, field) in fields {
        if let FieldRef::Child(child) = field {
            visit_fields(&child.fields(), &join(prefix, name), f)?;
        }
    }
    Ok(())
}

/// The mutable walk: `f(full_name, slot)` for every parameter and buffer slot of `fields`
/// (a module's `fields_mut()`) and of its children.
fn visit_fields_mut(
    fields: Vec<(&'static str, FieldMut<'_>)>,
    prefix: &str,
    f: &mut dyn FnMut(&str, FieldMut<'_>) -> Result<()>,
) -> Result<()> {
    for (name, field) in fields {
        match field {
            FieldMut::Child(child) => visit_fields_mut(child.fields_mut(), &join(prefix, name), f)?,
            FieldMut::Other => {}
            slot => f(&join(prefix, name), slot)?,
        }
    }
    Ok(())
}

/// A value to store by name: a new parameter (moves, casts), or a tensor to copy into a
/// parameter or to make a buffer's value (loads, `set_buffer`).
pub(crate) enum NewValue {
    Parameter(Param),
    Tensor(Tensor),
}

/// For every parameter and non-empty buffer, `change(tensor)`: `None` keeps it, `Some` gives
/// its new value. Everything fallible happens here, before the module is touched. A
/// parameter shared by several fields (tied weights) becomes one new parameter, shared by
/// the same fields.
pub(crate) fn prepare<M: TorchModule + ?Sized>(
    module: &M,
    change: &dyn Fn(&Tensor) -> Option<candle_core::Result<Tensor>>,
) -> Result<HashMap<String, NewValue>> {
    prepare_fields(&module.fields(), change)
}

fn prepare_fields(
    fields: &[(&'static str, FieldRef<'_>)],
    change: &dyn Fn(&Tensor) -> Option<candle_core::Result<Tensor>>,
) -> Result<HashMap<String, NewValue>> {
    let mut updates = HashMap::new();
    let mut done: HashMap<usize, Param> = HashMap::new();
    visit_fields(fields, "", &mut |name, entry| {
        let new = match entry {
            FieldRef::Parameter(p) => match done.get(&p.storage_key()) {
                Some(shared) => NewValue::Parameter(shared.clone()),
                None => match change(p.as_tensor()) {
                    Some(t) => {
                        let new = Param::new(t?)?;
                        done.insert(p.storage_key(), new.clone());
                        NewValue::Parameter(new)
                    }
                    None => return Ok(()),
                },
            },
            FieldRef::Buffer {
                buffer: Some(b), ..
            } => match change(b.as_tensor()) {
                Some(t) => NewValue::Tensor(t?),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        updates.insert(name.to_string(), new);
        Ok(())
    })?;
    Ok(updates)
}

/// Stores `updates` into the module, after checking that its two field lists agree, so that
/// every update has a home: either all are stored, or (on an error) none is.
pub(crate) fn apply<M: TorchModule + ?Sized>(
    module: &mut M,
    updates: HashMap<String, NewValue>,
) -> Result<()> {
    let type_name = module.type_name();
    let read = read_slots(&module.fields());
    let written = written_slots(module.fields_mut())?;
    check_field_lists_agree(type_name, &read, &written)?;
    apply_to_fields(type_name, module.fields_mut(), updates)
}

fn apply_to_fields(
    type_name: &str,
    fields: Vec<(&'static str, FieldMut<'_>)>,
    mut updates: HashMap<String, NewValue>,
) -> Result<()> {
    visit_fields_mut(fields, "", &mut |name, slot| {
        let Some(value) = updates.remove(name) else {
            return Ok(());
        };
        match (slot, value) {
            (FieldMut::Parameter(p), NewValue::Parameter(new)) => *p = new,
            (FieldMut::Parameter(p), NewValue::Tensor(t)) => p.copy_from(&t)?,
            (FieldMut::Buffer(b), NewValue::Tensor(t)) => *b = Buffer::new(t),
            (FieldMut::OptionalBuffer(b), NewValue::Tensor(t)) => *b = Some(Buffer::new(t)),
            _ => {
                return Err(Error::Module(format!(
                    "{name} is a parameter in fields() but a buffer in fields_mut(), or the reverse"
                )))
            }
        }
        Ok(())
    })?;
    let mut homeless: Vec<String> = updates.into_keys().collect();
    if homeless.is_empty() {
        return Ok(());
    }
    homeless.sort();
    Err(Error::Module(format!(
        "{type_name}: no field holds {}; every tensor must have one",
        homeless.join(", ")
    )))
}

/// Parameters and buffers as `(dotted name, is a parameter)`, as the read walk lists them.
fn read_slots(fields: &[(&'static str, FieldRef<'_>)]) -> BTreeSet<(String, bool)> {
    let mut slots = BTreeSet::new();
    visit_all_fields(fields, &mut |name, entry| match entry {
        FieldRef::Parameter(_) => {
            slots.insert((name.to_string(), true));
        }
        FieldRef::Buffer { .. } => {
            slots.insert((name.to_string(), false));
        }
        _ => {}
    });
    slots
}

/// Parameters and buffers as `(dotted name, is a parameter)`, as the write walk lists them.
fn written_slots(fields: Vec<(&'static str, FieldMut<'_>)>) -> Result<BTreeSet<(String, bool)>> {
    let mut written = BTreeSet::new();
    visit_fields_mut(fields, "", &mut |name, slot| {
        written.insert((name.to_string(), matches!(slot, FieldMut::Parameter(_))));
        Ok(())
    })?;
    Ok(written)
}

/// `fields()` and `fields_mut()` must name the same parameters and buffers: a hand-written
/// impl that misspells a name in one of them would otherwise load or move nothing there.
fn check_field_lists_agree(
    type_name: &str,
    read: &BTreeSet<(String, bool)>,
    written: &BTreeSet<(String, bool)>,
) -> Result<()> {
    if read == written {
        return Ok(());
    }
    let list = |slots: Vec<&(String, bool)>| {
        let names: Vec<&str> = slots.iter().map(|(n, _)| n.as_str()).collect();
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        }
    };
    Err(Error::Module(format!(
        "{}'s fields() and fields_mut() disagree: only fields() lists {}, only fields_mut() lists {}. \
         A hand-written impl TorchModule must list the same fields, by the same names, in both \
         (#[derive(Module)] writes both from one declaration). Nothing was changed.",
        type_name,
        list(read.difference(written).collect()),
        list(written.difference(read).collect())
    )))
}
