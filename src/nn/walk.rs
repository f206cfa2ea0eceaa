//! The module walk: every tensor of a module and its children by dotted name, read
//! (`try_visit`, behind [`TorchModule::visit`]) and written (`visit_mut`); and the one
//! way a module changes, for moves, casts, loads and `set_buffer` alike: `prepare` the new
//! values (everything fallible), then `apply` them, all or none.

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

/// The walk behind [`TorchModule::visit`], stopping at the first error of `f`: `f(full_name,
/// field)` for every parameter, buffer and plain field of `module` and its children, in
/// PyTorch's order (own parameters, own buffers, own plain fields, then each child).
pub(crate) fn try_visit<M: TorchModule + ?Sized>(
    module: &M,
    prefix: &str,
    f: &mut dyn FnMut(&str, FieldRef<'_>) -> Result<()>,
) -> Result<()> {
    let fields = module.fields();
    for (name, field) in &fields {
        if let FieldRef::Parameter(_) = field {
            f(&join(prefix, name), *field)?;
        }
    }
    for (name, field) in &fields {
        if let FieldRef::Buffer { .. } = field {
            f(&join(prefix, name), *field)?;
        }
    }
    for (name, field) in &fields {
        if let FieldRef::PlainField(_) = field {
            f(&join(prefix, name), *field)?;
        }
    }
    for (name, field) in &fields {
        if let FieldRef::Child(child) = field {
            try_visit(*child, &join(prefix, name), f)?;
        }
    }
    Ok(())
}

/// The mutable walk: `f(full_name, slot)` for every parameter and buffer slot.
pub(crate) fn visit_mut<M: TorchModule + ?Sized>(
    module: &mut M,
    prefix: &str,
    f: &mut dyn FnMut(&str, FieldMut<'_>) -> Result<()>,
) -> Result<()> {
    for (name, field) in module.fields_mut() {
        match field {
            FieldMut::Child(child) => visit_mut(child, &join(prefix, name), f)?,
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
    let mut updates = HashMap::new();
    let mut done: HashMap<usize, Param> = HashMap::new();
    try_visit(module, "", &mut |name, entry| {
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
    mut updates: HashMap<String, NewValue>,
) -> Result<()> {
    check_field_lists_agree(module)?;
    visit_mut(module, "", &mut |name, slot| {
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
        "{}: no field holds {}; every tensor must have one",
        module.type_name(),
        homeless.join(", ")
    )))
}

/// Parameters and buffers as `(dotted name, is a parameter)`, as the read walk lists them.
fn read_slots<M: TorchModule + ?Sized>(module: &M) -> BTreeSet<(String, bool)> {
    let mut slots = BTreeSet::new();
    module.visit(&mut |name, entry| match entry {
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

/// `fields()` and `fields_mut()` must name the same parameters and buffers: a hand-written
/// impl that misspells a name in one of them would otherwise load or move nothing there.
fn check_field_lists_agree<M: TorchModule + ?Sized>(module: &mut M) -> Result<()> {
    let read = read_slots(module);
    let mut written = BTreeSet::new();
    visit_mut(module, "", &mut |name, slot| {
        written.insert((name.to_string(), matches!(slot, FieldMut::Parameter(_))));
        Ok(())
    })?;
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
        module.type_name(),
        list(read.difference(&written).collect()),
        list(written.difference(&read).collect())
    )))
}
