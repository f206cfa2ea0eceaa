//! Lists of modules as fields: `Vec<M>` and `[M; N]` are PyTorch's `nn.ModuleList` (and
//! what `nn.Sequential` holds), their elements named `0`, `1`, … (`blocks.0.att.W_query.weight`
//! in a state dict); `Option<M>` is a child that may be absent (PyTorch: `self.block = None`).
//!
//! ```
//! use understanding_buffers::prelude::*;
//!
//! #[derive(Module)]
//! struct Block {
//!     #[module(rename = "W_query")]
//!     w_query: Linear,
//! }
//!
//! #[derive(Module)]
//! struct Model {
//!     blocks: Vec<Block>,
//!     head: Option<Linear>,
//! }
//!
//! let block = || -> Result<Block> { Ok(Block { w_query: Linear::new(4, 4, false)? }) };
//! let model = Model { blocks: vec![block()?, block()?], head: None };
//! assert_eq!(
//!     model.state_dict().keys().collect::<Vec<_>>(),
//!     ["blocks.0.W_query.weight", "blocks.1.W_query.weight"]
//! );
//! assert_eq!(
//!     model.to_string(),
//!     "Model(\n  (blocks): ModuleList(\n    (0-1): 2 x Block(\n      \
//!      (W_query): Linear(in_features=4, out_features=4, bias=False)\n    )\n  )\n)"
//! );
//! # Ok::<(), understanding_buffers::error::Error>(())
//! ```

use std::sync::{Mutex, OnceLock};

use crate::nn::field::Field;
use crate::nn::module::TorchModule;
use crate::nn::module::{FieldMut, FieldRef};

/// The name of list element `index` (`"0"`, `"1"`, …). Field names are `&'static str`, so
/// each index's name is made once per process and kept.
pub fn index_name(index: usize) -> &'static str {
    static NAMES: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    while names.len() <= index {
        let next = names.len().to_string();
        names.push(Box::leak(next.into_boxed_str()));
    }
    names[index]
}

/// A list's printout, as PyTorch prints a `ModuleList`: runs of equal elements collapsed
/// (`(0-11): 12 x Block(...)`).
fn list_repr(children: &[&dyn TorchModule]) -> String {
    if children.is_empty() {
        return "ModuleList()".to_string();
    }
    let reprs: Vec<String> = children.iter().map(|c| c.repr()).collect();
    let mut lines = Vec::new();
    let mut start = 0;
    while start < reprs.len() {
        let end = (start..reprs.len())
            .take_while(|&i| reprs[i] == reprs[start])
            .last()
            .unwrap_or(start);
        let body = reprs[start].replace('\n', "\n  ");
        lines.push(if end > start {
            format!("({start}-{end}): {} x {body}", end - start + 1)
        } else {
            format!("({start}): {body}")
        });
        start = end + 1;
    }
    format!("ModuleList(\n  {}\n)", lines.join("\n  "))
}

macro_rules! module_list {
    ($($impl:tt)*) => {
        $($impl)* {
            fn type_name(&self) -> &'static str {
                "ModuleList"
            }
            fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)> {
                self.iter()
                    .enumerate()
                    .map(|(i, m)| (index_name(i), FieldRef::Child(m)))
                    .collect()
            }
            fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)> {
                self.iter_mut()
                    .enumerate()
                    .map(|(i, m)| (index_name(i), FieldMut::Child(m)))
                    .collect()
            }
            fn repr(&self) -> String {
                let children: Vec<&dyn TorchModule> = self.iter().map(|m| m as &dyn TorchModule).collect();
                list_repr(&children)
            }
        }
    };
}

module_list!(impl<M: TorchModule> TorchModule for Vec<M>);
module_list!(impl<M: TorchModule, const N: usize> TorchModule for [M; N]);

/// `None` is an absent child: the walk sees nothing (PyTorch: `self.block = None`).
impl<M: TorchModule> Field for Option<M> {
    fn field(&self) -> FieldRef<'_> {
        self.as_ref()
            .map_or(FieldRef::Other, |m| FieldRef::Child(m))
    }
    fn field_mut(&mut self) -> FieldMut<'_> {
        self.as_mut()
            .map_or(FieldMut::Other, |m| FieldMut::Child(m))
    }
}
