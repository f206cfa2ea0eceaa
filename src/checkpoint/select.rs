//! Picking the state dict out of what a `torch.save` pickle built: the whole object for
//! `torch.save(model.state_dict(), path)`, or the dict under one key of a training
//! checkpoint (`{"epoch": 3, "model": {...}, "optimizer": {...}}`, Lightning's
//! `{"state_dict": {...}, ...}`).

use super::pickle::{PResult, Value};
use super::torch::{unsupported_global, TensorRef, TorchObject, TorchValue};

/// The `(name, tensor)` pairs of the state dict in `value`, in file order: `value` itself,
/// or, with a `key`, the dict under that key.
pub(super) fn state_dict(
    value: TorchValue,
    key: Option<&str>,
) -> PResult<Vec<(String, TensorRef)>> {
    let pairs = match (value, key) {
        (Value::Dict(pairs), None) => {
            if !pairs.iter().all(|(_, v)| is_tensor(v)) {
                return Err(not_a_state_dict(&pairs));
            }
            pairs
        }
        (Value::Dict(pairs), Some(key)) => {
            let found = pairs
                .iter()
                .position(|(k, _)| matches!(k, Value::Str(k) if k == key));
            let Some(found) = found else {
                return Err(format!(
                    "the file has no key {key:?}; {}",
                    describe_keys(&pairs)
                ));
            };
            match pairs.into_iter().nth(found) {
                Some((_, Value::Dict(inner))) => inner,
                Some((_, other)) => {
                    return Err(format!(
                        "the value under key {key:?} is a {}, not a state dict (a dict of tensors)",
                        other.kind()
                    ))
                }
                None => return Err("a key vanished".into()),
            }
        }
        (Value::Object(TorchObject::Tensor(_)), _) => {
            return Err(
                "the file holds a single tensor, not a state dict; save a dict of \
                        named tensors instead: torch.save({'name': tensor}, path)"
                    .into(),
            )
        }
        (Value::Object(TorchObject::Opaque(func)), _) => return Err(unsupported_global(&func)),
        (other, _) => {
            return Err(format!(
                "the file holds a {}, not a state dict (a dict of tensors)",
                other.kind()
            ))
        }
    };
    pairs.into_iter().map(|(k, v)| entry(k, v)).collect()
}

fn is_tensor(value: &TorchValue) -> bool {
    matches!(value, Value::Object(TorchObject::Tensor(_)))
}

/// Whether `value` is a non-empty dict of tensors under string keys.
fn is_state_dict(value: &TorchValue) -> bool {
    matches!(value, Value::Dict(pairs) if !pairs.is_empty()
        && pairs.iter().all(|(k, v)| matches!(k, Value::Str(_)) && is_tensor(v)))
}

/// The top-level dict holds something else than tensors: a training checkpoint, most likely.
fn not_a_state_dict(pairs: &[(TorchValue, TorchValue)]) -> String {
    let first = pairs.iter().find(|(_, v)| !is_tensor(v));
    let holds = match first {
        Some((Value::Str(k), v)) => format!("the value under key {k:?} is a {}", v.kind()),
        Some((k, _)) => format!("it has a key that is a {}", k.kind()),
        None => "it holds something else".into(),
    };
    if let Some((_, Value::Object(TorchObject::Opaque(func)))) = first {
        if pairs.len() == 1 {
            return unsupported_global(func);
        }
    }
    format!(
        "the file holds more than a state dict (a training checkpoint?): {holds}, not a \
         tensor; {}",
        describe_keys(pairs)
    )
}

/// Names the keys of a training checkpoint, and those that hold state dicts.
fn describe_keys(pairs: &[(TorchValue, TorchValue)]) -> String {
    const SHOWN: usize = 12;
    let names: Vec<String> = pairs
        .iter()
        .filter_map(|(k, _)| match k {
            Value::Str(k) => Some(format!("{k:?}")),
            _ => None,
        })
        .collect();
    let mut listed = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        listed.push_str(&format!(", ... ({} in all)", names.len()));
    }
    let dicts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| is_state_dict(v))
        .filter_map(|(k, _)| match k {
            Value::Str(k) => Some(format!("{k:?}")),
            _ => None,
        })
        .collect();
    match dicts.first() {
        None => format!(
            "its keys are {listed}, and none holds a dict of tensors; save the state dict \
             alone in PyTorch: torch.save(model.state_dict(), path)"
        ),
        Some(first) => format!(
            "its keys are {listed}; the state dicts (dicts of tensors) are under {}. Pick \
             one by key: checkpoint::load_with_key(path, {first}, &device), or \
             module.load_with_key(path, {first}, LoadMode::Strict)",
            dicts.join(", ")
        ),
    }
}

/// A `(key, value)` pair of the state dict, which must map names to tensors.
fn entry(key: TorchValue, value: TorchValue) -> PResult<(String, TensorRef)> {
    let Value::Str(key) = key else {
        return Err(format!(
            "the state dict has a key that is a {}, not a str",
            key.kind()
        ));
    };
    match value {
        Value::Object(TorchObject::Tensor(tensor)) => Ok((key, tensor)),
        Value::Object(TorchObject::Opaque(func)) => Err(format!(
            "the value under key {key:?} is not a tensor: {}",
            unsupported_global(&func)
        )),
        other => Err(format!(
            "the value under key {key:?} is a {}, not a tensor",
            other.kind()
        )),
    }
}
