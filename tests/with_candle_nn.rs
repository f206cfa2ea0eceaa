//! A candle user's file: `use candle_nn::*;` and this crate's prelude, both glob-imported,
//! and both crates' items used side by side. `Module` is candle's trait here (`impl Module`,
//! `Module::forward`) while `#[derive(Module)]` is this crate's derive: derive macros live in
//! a namespace of their own. This crate's trait is `TorchModule`, and its library is
//! `understanding_buffers::nn`, so a glob of the crate root leaves `::core` alone.
//!
//! The one pair of names both crates have is the layers (`Linear`, `Embedding`, `Dropout`,
//! as PyTorch and candle both have them): a file that glob-imports both names them by path.

// Two globs bringing different items under one name is only a warning today (rustc picks
// one, issue #114095); here it is the error it will become.
#![deny(ambiguous_glob_imports)]

use candle_nn::*;
use understanding_buffers::prelude::*;

/// A candle user's model with this crate's module semantics: a parameterised layer, a buffer.
#[derive(Module)]
struct Scaled {
    #[module(rename = "W")]
    w: understanding_buffers::nn::Linear,
    scale: Buffer,
}

// candle's `Module`, by its short name, beside the derive of the same name.
impl Module for Scaled {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.apply(&self.w)?.broadcast_mul(&self.scale)
    }
}

#[test]
fn candle_nn_and_the_prelude_glob_import_together() -> Result<()> {
    let cpu = Device::Cpu;
    let xs = Tensor::ones((4, 3), DType::F32, &cpu)?;

    // candle-nn's way: a VarMap, a VarBuilder and candle's `linear`.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &cpu);
    let theirs: candle_nn::Linear = linear(3, 2, vb.pp("proj"))?;
    assert_eq!(Module::forward(&theirs, &xs)?.dims(), &[4, 2]);
    assert_eq!(varmap.all_vars().len(), 2);

    // This crate's way: typed fields, PyTorch's state dict.
    let ours = Scaled {
        w: understanding_buffers::nn::Linear::new(3, 2, true)?,
        scale: Buffer::new(Tensor::new(&[2f32, 3.], &cpu)?),
    };
    assert_eq!(
        ours.state_dict().keys().collect::<Vec<_>>(),
        ["scale", "W.weight", "W.bias"]
    );
    let ys = Module::forward(&ours, &xs)?;
    assert_eq!(ys.dims(), &[4, 2]);
    // The same layer through candle's plumbing: `apply` and `seq()` take ours and theirs.
    let chain = seq()
        .add(theirs)
        .add(understanding_buffers::nn::Linear::new(2, 5, false)?);
    assert_eq!(xs.apply(&chain)?.dims(), &[4, 5]);
    assert_eq!(xs.apply(&ours)?.to_vec2::<f32>()?, ys.to_vec2::<f32>()?);

    // candle's optimizer (brought by both globs: the same item) steps our parameters only.
    let mut sgd = SGD::new(ours.parameters(), 0.1)?;
    let before = ours.w.weight.to_vec2::<f32>()?;
    sgd.backward_step(&ys.sum_all()?)?;
    assert_ne!(ours.w.weight.to_vec2::<f32>()?, before);
    assert_eq!(ours.buffer("scale")?.to_vec1::<f32>()?, [2., 3.]);
    Ok(())
}

/// `TorchModule` is the trait; candle's `Module` keeps its name. A type can be both.
#[test]
fn the_trait_is_torch_module_and_candle_keeps_module() {
    fn torch_module<M: TorchModule>(_: &M) {}
    fn candle_module<M: Module>(_: &M) {}
    let layer = understanding_buffers::nn::Linear::new(3, 2, false).unwrap();
    torch_module(&layer);
    candle_module(&layer);
}

/// A glob of the crate root brings `nn`, `checkpoint`, `error`, … but no `core`: paths that
/// start with `core::` still name the core library.
mod crate_root_glob {
    #[allow(unused_imports)]
    use understanding_buffers::*;

    #[test]
    fn core_is_still_the_core_library() {
        assert_eq!(core::mem::size_of::<u32>(), 4);
        assert_eq!(core::cmp::max(1, 2), 2);
    }
}
