//! Modules as typed fields: what `#[derive(Module)]` makes of each field type, PyTorch's
//! walk order, empty buffers, moves and casts, loads that keep parameter identity (and what
//! an optimizer sees), gradients, hand-written impls, and the errors of field lists that
//! disagree.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};
use common::reference;
use proptest::prelude::*;
use understanding_buffers::nn::{Field, FieldMut, FieldRef, TensorKind as Kind};
use understanding_buffers::prelude::*;

#[derive(Clone, Debug, Module)]
struct Child {
    bias: Param,
    mask: Buffer,
    dropout: Dropout,
}

/// Every kind of field, declared out of PyTorch's order on purpose.
#[derive(Clone, Debug, Module)]
struct Toy {
    child: Child,
    scratch: Tensor,
    stats: Buffer,
    #[module(persistent = false)]
    cache: Buffer,
    weight: Param,
    steps: Buffer,
    lazy: Option<Buffer>,
    #[module(rename = "Gain")]
    gain: Option<Param>,
    #[module(skip)]
    notes: Vec<String>,
    width: usize,
}

fn toy(values: &[f32]) -> Toy {
    let cpu = &Device::Cpu;
    let n = values.len();
    let t = || Tensor::from_slice(values, n, cpu).unwrap();
    Toy {
        child: Child {
            bias: Param::new(t().neg().unwrap()).unwrap(),
            mask: Buffer::new(Tensor::ones((n, n), DType::U8, cpu).unwrap()),
            dropout: Dropout::new(0.0).unwrap(),
        },
        scratch: t(),
        stats: Buffer::new(t().sqr().unwrap()),
        cache: Buffer::new(Tensor::ones(n, DType::F32, cpu).unwrap()),
        weight: Param::new(t()).unwrap(),
        steps: Buffer::new(Tensor::new(&[3i64], cpu).unwrap()),
        lazy: None,
        gain: None,
        notes: vec!["not a tensor".into()],
        width: n,
    }
}

fn names<T>(list: Vec<(String, T)>) -> Vec<String> {
    list.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn walks_follow_pytorchs_order_whatever_the_field_order() {
    let m = toy(&[1.0, 2.0]);
    assert_eq!(
        m.state_dict().keys().collect::<Vec<_>>(),
        ["weight", "stats", "steps", "child.bias", "child.mask"]
    );
    assert_eq!(names(m.named_parameters()), ["weight", "child.bias"]);
    assert_eq!(
        names(m.named_buffers()),
        ["stats", "cache", "steps", "child.mask"]
    );
    let rows: Vec<(String, Kind)> = m
        .diagnostics()
        .rows()
        .iter()
        .map(|r| (r.name.clone(), r.kind))
        .collect();
    let expected = [
        ("weight", Kind::Parameter),
        ("stats", Kind::Buffer),
        ("cache", Kind::NonPersistentBuffer),
        ("steps", Kind::Buffer),
        ("lazy", Kind::Buffer),
        ("scratch", Kind::PlainField),
        ("child.bias", Kind::Parameter),
        ("child.mask", Kind::Buffer),
    ];
    assert_eq!(
        rows,
        expected.map(|(n, k)| (n.to_string(), k)).to_vec(),
        "skipped and configuration fields are not listed"
    );
    assert_eq!((m.width, m.notes.len()), (2, 1));
}

#[test]
fn a_rename_gives_the_pytorch_name_and_an_empty_optional_parameter_is_absent() {
    let mut m = toy(&[1.0, 2.0]);
    assert!(!names(m.named_parameters()).contains(&"Gain".to_string()));
    m.gain = Some(Param::new(Tensor::ones(2, DType::F32, &Device::Cpu).unwrap()).unwrap());
    assert_eq!(
        names(m.named_parameters()),
        ["weight", "Gain", "child.bias"]
    );
    assert!(m.state_dict().contains_key("Gain"));
}

#[test]
fn an_empty_buffer_is_listed_but_neither_saved_nor_named_until_it_holds_a_tensor() {
    let mut m = toy(&[1.0, 2.0]);
    let report = m.diagnostics();
    let lazy = report.rows().iter().find(|r| r.name == "lazy").unwrap();
    assert_eq!((lazy.kind, lazy.tensor.as_ref()), (Kind::Buffer, None));
    assert!(report.to_string().contains("lazy"), "{report}");
    assert!(!m.state_dict().contains_key("lazy"));
    assert!(!names(m.named_buffers()).contains(&"lazy".to_string()));
    let err = m.buffer("lazy").unwrap_err().to_string();
    assert_eq!(
        err,
        "the buffer \"lazy\" of Toy is empty (None); give it a tensor with set_buffer"
    );
    // A state dict holding "lazy" is unexpected while the buffer is empty, as in PyTorch.
    let mut state = m.state_dict();
    state.insert("lazy", Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap());
    let keys = m.load_state_dict(&state, LoadMode::NonStrict).unwrap();
    assert_eq!(keys.unexpected_keys, ["lazy"]);

    m.set_buffer("lazy", Tensor::new(&[7f32], &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(m.lazy.as_ref().unwrap().to_vec1::<f32>().unwrap(), [7.]);
    assert_eq!(
        m.state_dict().keys().collect::<Vec<_>>(),
        [
            "weight",
            "stats",
            "steps",
            "lazy",
            "child.bias",
            "child.mask"
        ]
    );
    m.to_dtype(DType::F16).unwrap();
    assert_eq!(m.lazy.as_ref().unwrap().dtype(), DType::F16);
}

#[test]
fn asking_for_what_a_module_lacks_says_what_it_has() {
    let m = toy(&[1.0]);
    let err = m.buffer("child.nope").unwrap_err().to_string();
    assert_eq!(
        err,
        "Toy has no buffer \"child.nope\"; its buffers are [\"stats\", \"cache\", \"steps\", \"lazy\", \"child.mask\"]"
    );
    let err = m.parameter("nope").unwrap_err().to_string();
    assert_eq!(
        err,
        "Toy has no parameter \"nope\"; its parameters are [\"weight\", \"child.bias\"]"
    );
}

#[test]
fn set_buffer_reaches_children_and_refuses_parameters() {
    let mut m = toy(&[1.0, 2.0]);
    m.set_buffer(
        "child.mask",
        Tensor::zeros((2, 2), DType::U8, &Device::Cpu).unwrap(),
    )
    .unwrap();
    assert_eq!(m.child.mask.to_vec2::<u8>().unwrap(), [[0, 0], [0, 0]]);
    let weight = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
    let err = m.set_buffer("weight", weight).unwrap_err().to_string();
    assert!(err.starts_with("Toy has no buffer \"weight\""), "{err}");
    assert_eq!(m.weight.to_vec1::<f32>().unwrap(), [1., 2.]);
}

#[test]
fn casts_convert_floating_point_parameters_and_buffers_only() {
    let mut m = toy(&[1.0, 2.0]);
    m.to_dtype(DType::BF16).unwrap();
    let dtypes: Vec<(String, DType)> = m
        .diagnostics()
        .rows()
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.dtype()?)))
        .collect();
    let expected = [
        ("weight", DType::BF16),
        ("stats", DType::BF16),
        ("cache", DType::BF16),
        ("steps", DType::I64),
        ("scratch", DType::F32),
        ("child.bias", DType::BF16),
        ("child.mask", DType::U8),
    ];
    assert_eq!(dtypes, expected.map(|(n, d)| (n.to_string(), d)).to_vec());
    let err = m.to_dtype(DType::U8).unwrap_err().to_string();
    assert!(err.contains("only accepts floating-point dtypes"), "{err}");
}

#[test]
fn a_plain_field_left_in_another_dtype_is_flagged_by_the_report() {
    let mut model = PositionalEncodingWithPlainField::new(100, 8, 10, 0).unwrap();
    let report = model.diagnostics();
    assert!(report.dtype_strays().is_empty());
    model.to_dtype(DType::BF16).unwrap();
    let report = model.diagnostics();
    assert_eq!(report.dtype(), Some(DType::BF16));
    let strays: Vec<&str> = report
        .dtype_strays()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(strays, ["pe"]);
    let text = report.to_string();
    let pe_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("pe"))
        .unwrap();
    assert!(
        pe_line.contains("plain field") && pe_line.ends_with("⚠ not in the module's dtype (BF16)"),
        "{text}"
    );
    // In HTML too the stray is named in words, not marked by colour alone.
    let html = report.rich().1;
    assert!(html.contains("ub-stray"), "{html}");
    assert!(
        html.contains("<td class=\"ub-note\">⚠ not in the module&#39;s dtype (BF16)</td>")
            || html.contains("<td class=\"ub-note\">⚠ not in the module's dtype (BF16)</td>"),
        "{html}"
    );
    // The same model with a buffer: nothing strays.
    let mut buffered = PositionalEncodingWithBuffer::new(100, 8, 10, 0).unwrap();
    buffered.to_dtype(DType::BF16).unwrap();
    assert!(buffered.diagnostics().dtype_strays().is_empty());
    assert!(buffered.check_devices().is_ok());
}

#[test]
fn train_and_eval_reach_every_dropout() {
    let mut m = toy(&[1.0]);
    assert!(m.is_training() && m.child.dropout.is_training());
    m.eval();
    assert!(!m.is_training() && !m.child.dropout.is_training());
    m.train();
    assert!(m.is_training() && m.child.dropout.is_training());
}

#[test]
fn backward_gives_gradients_to_parameters_only() {
    let m = toy(&[1.0, 2.0, 3.0]);
    let y = m.weight.mul(&m.stats).unwrap();
    let y = y.add(&m.scratch).unwrap().add(&m.child.bias).unwrap();
    let loss = y.mul(&m.cache).unwrap().sum_all().unwrap();
    let report = m.gradients(&loss).unwrap();
    assert_eq!(report.with_gradient(), ["weight", "child.bias"]);
    assert_eq!(
        report.without_gradient(),
        ["stats", "cache", "steps", "lazy", "scratch", "child.mask"]
    );
    let weight = report.rows().iter().find(|r| r.name == "weight").unwrap();
    assert_eq!(weight.gradient.as_deref(), Some(&[3][..]));
    assert!(weight.requires_grad);
    assert!(report
        .rows()
        .iter()
        .filter(|r| r.kind != Kind::Parameter)
        .all(|r| !r.requires_grad));
    let text = report.to_string();
    assert!(
        text.starts_with("Toy — gradients after backward()\n"),
        "{text}"
    );
    let words = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap();
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(
        words("scratch"),
        ["scratch", "plain", "field", "no", "None"],
        "{text}"
    );
    assert_eq!(
        words("weight"),
        ["weight", "parameter", "yes", "tensor", "of", "shape", "[3]"],
        "{text}"
    );

    // The lesson's modules: the weights get gradients, the mask none, buffer or not.
    let batch = example_batch(&Device::Cpu).unwrap();
    let with = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let loss = with.forward(&batch).unwrap().sum_all().unwrap();
    let report = with.gradients(&loss).unwrap();
    assert_eq!(
        report.with_gradient(),
        ["W_query.weight", "W_key.weight", "W_value.weight"]
    );
    assert_eq!(report.without_gradient(), ["mask"]);
    let without = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false).unwrap();
    let loss = without.forward(&batch).unwrap().sum_all().unwrap();
    let report = without.gradients(&loss).unwrap();
    assert_eq!(report.without_gradient(), ["mask"]);
    assert_eq!(report.rows()[0].kind, Kind::PlainField);
}

#[test]
fn a_load_writes_into_the_parameters_an_optimizer_already_holds() {
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let mut sgd = SGD::new(m.parameters(), 0.1).unwrap();
    let before: Vec<_> = m.parameters().iter().map(|v| v.id()).collect();
    m.load(
        reference("seed123_with_buffer.safetensors"),
        LoadMode::Strict,
    )
    .unwrap();
    let after: Vec<_> = m.parameters().iter().map(|v| v.id()).collect();
    assert_eq!(before, after, "the same variables, with the loaded values");
    let loaded = m.w_query.weight.to_vec2::<f32>().unwrap();
    let file =
        checkpoint::load(reference("seed123_with_buffer.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(
        loaded,
        file.get("W_query.weight")
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    );

    let loss = m
        .forward(&example_batch(&Device::Cpu).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let step = (grads.get(&m.w_query.weight).unwrap() * 0.1).unwrap();
    let expected = (m.w_query.weight.as_tensor() - step).unwrap();
    let expected = expected.to_vec2::<f32>().unwrap();
    sgd.step(&grads).unwrap();
    let trained = m.w_query.weight.to_vec2::<f32>().unwrap();
    assert_ne!(
        trained, loaded,
        "the optimizer trained the module's weights"
    );
    assert_eq!(trained, expected, "starting from the loaded values");
}

#[test]
fn a_load_copies_transposed_and_expanded_values_into_the_parameters() {
    let mut linear = Linear::new(3, 2, true).unwrap();
    let weight_id = linear.weight.id();
    let cpu = &Device::Cpu;
    let mut state = StateDict::new();
    // A (3, 2) tensor read as its (2, 3) transpose, and a row expanded to two (stride 0).
    let base = Tensor::new(&[[1f32, 4.], [2., 5.], [3., 6.]], cpu).unwrap();
    state.insert("weight", base.t().unwrap());
    state.insert(
        "bias",
        Tensor::new(&[7f32], cpu).unwrap().broadcast_as(2).unwrap(),
    );
    linear.load_state_dict(&state, LoadMode::Strict).unwrap();
    assert_eq!(linear.weight.id(), weight_id);
    assert_eq!(
        linear.weight.to_vec2::<f32>().unwrap(),
        [[1., 2., 3.], [4., 5., 6.]]
    );
    assert_eq!(
        linear.bias.as_ref().unwrap().to_vec1::<f32>().unwrap(),
        [7., 7.]
    );
    // A module's own state dict loads into it as a no-op.
    linear
        .load_state_dict(&linear.state_dict(), LoadMode::Strict)
        .unwrap();
    assert_eq!(linear.weight.to_vec2::<f32>().unwrap()[1], [4., 5., 6.]);
    // A value computed from the parameter itself (here its transpose, sharing its storage).
    let mut square = Linear::new(2, 2, false).unwrap();
    let w = square.weight.to_vec2::<f32>().unwrap();
    let mut state = StateDict::new();
    state.insert("weight", square.weight.t().unwrap());
    square.load_state_dict(&state, LoadMode::Strict).unwrap();
    let t = square.weight.to_vec2::<f32>().unwrap();
    assert_eq!(t, [[w[0][0], w[1][0]], [w[0][1], w[1][1]]]);
}

#[test]
fn an_optimizer_built_before_a_cast_keeps_the_old_variables() {
    // Documented on TorchModule::to_dtype and to_device: moved or cast parameters are new
    // variables, so an optimizer must be built afterwards.
    let mut m = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false).unwrap();
    let old = m.parameters();
    let mut sgd = SGD::new(old.clone(), 0.5).unwrap();
    m.to_device(&Device::Cpu).unwrap(); // same place: nothing moves, same variables
    let ids = |vars: &[candle_core::Var]| vars.iter().map(|v| v.id()).collect::<Vec<_>>();
    assert_eq!(ids(&m.parameters()), ids(&old));
    m.to_dtype(DType::F64).unwrap();
    assert!(ids(&m.parameters())
        .iter()
        .all(|id| !ids(&old).contains(id)));
    let module_before = m.w_query.weight.to_vec2::<f64>().unwrap();
    let old_before = old[0].to_vec2::<f32>().unwrap();
    let loss = old[0].sqr().unwrap().sum_all().unwrap();
    sgd.backward_step(&loss).unwrap();
    assert_ne!(
        old[0].to_vec2::<f32>().unwrap(),
        old_before,
        "it trains the old f32 weights"
    );
    assert_eq!(
        m.w_query.weight.to_vec2::<f64>().unwrap(),
        module_before,
        "the module's f64 weights are not the optimizer's"
    );
}

/// A hand-written impl, as `TorchModule`'s documentation shows it, with one child misnamed in
/// `fields_mut` (the bug the derive makes impossible).
struct Misnamed {
    w_query: Linear,
}

impl TorchModule for Misnamed {
    fn type_name(&self) -> &'static str {
        "Misnamed"
    }
    fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)> {
        vec![("W_query", self.w_query.field())]
    }
    fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)> {
        vec![("W_qeury", self.w_query.field_mut())]
    }
}

#[test]
fn a_misnamed_child_is_an_error_that_changes_nothing() {
    let mut m = Misnamed {
        w_query: Linear::new(3, 2, false).unwrap(),
    };
    let before = m.w_query.weight.to_vec2::<f32>().unwrap();
    let mut state = m.state_dict();
    state.insert(
        "W_query.weight",
        Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    let err = m
        .load_state_dict(&state, LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Misnamed's fields() and fields_mut() disagree: only fields() lists W_query.weight, \
         only fields_mut() lists W_qeury.weight. A hand-written impl TorchModule must list the same \
         fields, by the same names, in both (#[derive(Module)] writes both from one \
         declaration). Nothing was changed."
    );
    assert_eq!(m.w_query.weight.to_vec2::<f32>().unwrap(), before);
    assert!(m.to_dtype(DType::F16).is_err());
    assert_eq!(m.w_query.weight.dtype(), DType::F32);
}

/// The hand-written impl of `TorchModule`'s documentation, correct this time.
struct Scale {
    weight: Param,
    running_max: Buffer,
}

impl TorchModule for Scale {
    fn type_name(&self) -> &'static str {
        "Scale"
    }
    fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)> {
        vec![
            ("weight", self.weight.field()),
            ("running_max", self.running_max.field()),
        ]
    }
    fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)> {
        vec![
            ("weight", self.weight.field_mut()),
            ("running_max", self.running_max.field_mut()),
        ]
    }
}

#[test]
fn a_hand_written_impl_gets_every_operation() {
    let cpu = &Device::Cpu;
    let mut scale = Scale {
        weight: Param::new(Tensor::ones(3, DType::F32, cpu).unwrap()).unwrap(),
        running_max: Buffer::new(Tensor::zeros(3, DType::F32, cpu).unwrap()),
    };
    assert_eq!(
        scale.state_dict().keys().collect::<Vec<_>>(),
        ["weight", "running_max"]
    );
    let mut state = scale.state_dict();
    state.insert("running_max", Tensor::new(&[1f32, 2., 3.], cpu).unwrap());
    scale.load_state_dict(&state, LoadMode::Strict).unwrap();
    assert_eq!(scale.running_max.to_vec1::<f32>().unwrap(), [1., 2., 3.]);
    scale.to_dtype(DType::F16).unwrap();
    assert_eq!(
        (scale.weight.dtype(), scale.running_max.dtype()),
        (DType::F16, DType::F16)
    );
    assert_eq!(scale.parameters().len(), 1);
}

#[test]
fn a_cloned_module_shares_its_parameters_until_it_is_moved_or_cast() {
    let mut a = toy(&[1.0, 2.0]);
    let b = a.clone();
    let mut state = a.state_dict();
    state.insert("weight", Tensor::new(&[5f32, 6.], &Device::Cpu).unwrap());
    a.load_state_dict(&state, LoadMode::Strict).unwrap();
    assert_eq!(b.weight.to_vec1::<f32>().unwrap(), [5., 6.], "one variable");
    let mut c = b.clone();
    c.to_dtype(DType::F64).unwrap(); // new variables: c is on its own now
    state.insert("weight", Tensor::new(&[7f32, 8.], &Device::Cpu).unwrap());
    a.load_state_dict(&state, LoadMode::Strict).unwrap();
    assert_eq!(b.weight.to_vec1::<f32>().unwrap(), [7., 8.]);
    assert_eq!(c.weight.to_vec1::<f64>().unwrap(), [5., 6.]);
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ub-module-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn casts_change_parameters_and_buffers_but_never_plain_fields(
        values in prop::collection::vec(-1e3f32..1e3, 1..16),
        dtype in prop::sample::select(vec![DType::F16, DType::BF16, DType::F64]),
    ) {
        let mut m = toy(&values);
        let before = m.scratch.clone();
        m.to_dtype(dtype).unwrap();
        prop_assert_eq!(m.scratch.id(), before.id());
        prop_assert_eq!(m.scratch.dtype(), DType::F32);
        prop_assert_eq!(m.weight.dtype(), dtype);
        prop_assert_eq!(m.stats.dtype(), dtype);
        prop_assert_eq!(m.child.bias.dtype(), dtype);
    }

    #[test]
    fn save_load_state_dict_is_the_identity(
        values in prop::collection::vec(prop::num::f32::ANY, 1..16),
        ext in prop::sample::select(vec!["pth", "safetensors"]),
    ) {
        let m = toy(&values);
        let path = scratch(&format!("toy.{ext}"));
        m.save(&path).unwrap();
        let mut fresh = toy(&vec![0.0; values.len()]);
        let keys = fresh.load(&path, LoadMode::Strict).unwrap();
        prop_assert!(keys.is_empty());
        let saved = m.state_dict();
        let loaded = fresh.state_dict();
        prop_assert_eq!(saved.keys().collect::<Vec<_>>(), loaded.keys().collect::<Vec<_>>());
        for ((_, a), (_, b)) in saved.iter().zip(loaded.iter()) {
            prop_assert_eq!(a.dtype(), b.dtype());
            prop_assert_eq!(a.dims(), b.dims());
            let bits = |t: &Tensor| -> Vec<u8> {
                let t = t.flatten_all().unwrap();
                match t.dtype() {
                    DType::F32 => t.to_vec1::<f32>().unwrap().iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
                    DType::I64 => t.to_vec1::<i64>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect(),
                    DType::U8 => t.to_vec1::<u8>().unwrap(),
                    other => panic!("unexpected dtype {other:?}"),
                }
            };
            prop_assert_eq!(bits(a), bits(b));
        }
    }
}

#[test]
fn the_scratch_folder_is_private_to_its_process() {
    let dir = scratch_dir().unwrap();
    assert_eq!(scratch_dir().unwrap(), dir, "one folder per process");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "readable by its owner only");
    }
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let pid = std::process::id().to_string();
    assert!(
        name.starts_with(&format!("understanding-buffers-{pid}-")),
        "{name}"
    );
    // Another process gets a folder of its own, and an abandoned folder (of a process that
    // has ended) is removed when the next one is made.
    let temp = std::env::temp_dir();
    let abandoned = temp.join("understanding-buffers-999999999-1");
    std::fs::create_dir_all(&abandoned).unwrap();
    let other = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "print_a_scratch_folder",
            "--nocapture",
            "--ignored",
        ])
        .env_remove("UB_SCRATCH_DIR")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&other.stdout);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("scratch: "))
        .unwrap_or_else(|| panic!("the child printed no folder:\n{out}"));
    assert_ne!(std::path::Path::new(line), dir);
    if std::path::Path::new("/proc/self").exists() {
        assert!(
            !abandoned.exists(),
            "the ended process's folder is still there"
        );
    }
}

/// Run by the test above in a process of its own.
#[test]
#[ignore = "run by the_scratch_folder_is_private_to_its_process"]
fn print_a_scratch_folder() {
    println!("scratch: {}", scratch_dir().unwrap().display());
}

#[derive(Module)]
struct TiedHead {
    embedding: Embedding,
    head: Linear,
}

fn tied() -> TiedHead {
    let embedding = Embedding::new(10, 4, 0).unwrap();
    let mut head = Linear::new(4, 10, false).unwrap();
    head.weight = embedding.weight.clone(); // GPT-2 ties its output head to its embedding
    TiedHead { embedding, head }
}

#[test]
fn tied_weights_are_one_parameter_for_an_optimizer() {
    let m = tied();
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["embedding.weight"],
        "PyTorch lists a shared parameter once"
    );
    assert_eq!(
        m.state_dict().keys().collect::<Vec<_>>(),
        ["embedding.weight", "head.weight"],
        "the state dict keeps every name"
    );
    let before = m.embedding.weight.to_vec2::<f32>().unwrap();
    let mut sgd = SGD::new(m.parameters(), 0.5).unwrap();
    sgd.backward_step(&m.head.weight.sum_all().unwrap())
        .unwrap();
    let after = m.embedding.weight.to_vec2::<f32>().unwrap();
    let step = before[0][0] - after[0][0];
    assert!(
        (step - 0.5).abs() < 1e-6,
        "one step of lr 0.5 moved it by {step}"
    );
    assert_eq!(m.head.weight.to_vec2::<f32>().unwrap(), after);
}

#[test]
fn tied_weights_stay_tied_through_casts_moves_and_loads() {
    let mut m = tied();
    m.to_dtype(DType::F16).unwrap();
    assert!(m.head.weight.is_same(&m.embedding.weight));
    assert_eq!(m.embedding.weight.dtype(), DType::F16);
    m.to_device(&Device::Cpu).unwrap();
    m.to_dtype(DType::F32).unwrap();
    assert!(m.head.weight.is_same(&m.embedding.weight));
    let source = tied();
    m.load_state_dict(&source.state_dict(), LoadMode::Strict)
        .unwrap();
    assert!(m.head.weight.is_same(&m.embedding.weight));
    assert_eq!(
        m.head.weight.to_vec2::<f32>().unwrap(),
        source.embedding.weight.to_vec2::<f32>().unwrap()
    );
}

#[test]
fn eval_reaches_every_layer_and_keeps_the_module_differentiable() {
    let mut linear = Linear::new(3, 2, true).unwrap();
    let mut embedding = Embedding::new(10, 4, 0).unwrap();
    let mut positional = PositionalEncodingWithBuffer::new(10, 4, 6, 0).unwrap();
    let mut attention = CausalAttentionWithBuffer::new(3, 2, 6, 0.1, false).unwrap();
    linear.eval();
    embedding.eval();
    positional.eval();
    attention.eval();
    assert!(!linear.is_training() && !embedding.is_training());
    assert!(!positional.is_training() && !attention.is_training());
    assert!(!attention.w_query.is_training() && !attention.dropout.is_training());
    // PyTorch's eval() changes what dropout does, not autograd: a backward pass still works.
    let x = example_batch(&Device::Cpu).unwrap();
    let grads = attention
        .gradients(&attention.forward(&x).unwrap().sum_all().unwrap())
        .unwrap();
    assert_eq!(
        grads.with_gradient(),
        ["W_query.weight", "W_key.weight", "W_value.weight"]
    );
    attention.train();
    assert!(attention.is_training() && attention.w_key.is_training());
}

#[derive(Module)]
struct Block {
    #[module(rename = "W_query")]
    w_query: Linear,
    scale: Buffer,
}

#[derive(Module)]
struct Stack {
    blocks: Vec<Block>,
    pair: [Linear; 2],
    head: Option<Linear>,
    missing: Option<Linear>,
}

fn stack() -> Stack {
    let block = || Block {
        w_query: Linear::new(3, 3, false).unwrap(),
        scale: Buffer::new(Tensor::ones(3, DType::F32, &Device::Cpu).unwrap()),
    };
    Stack {
        blocks: vec![block(), block(), block()],
        pair: [
            Linear::new(3, 3, true).unwrap(),
            Linear::new(3, 3, true).unwrap(),
        ],
        head: Some(Linear::new(3, 2, false).unwrap()),
        missing: None,
    }
}

#[test]
fn lists_of_modules_have_pytorchs_names_and_take_part_in_every_operation() {
    let mut m = stack();
    let keys: Vec<String> = m.state_dict().keys().map(String::from).collect();
    assert_eq!(
        keys,
        [
            "blocks.0.scale",
            "blocks.0.W_query.weight",
            "blocks.1.scale",
            "blocks.1.W_query.weight",
            "blocks.2.scale",
            "blocks.2.W_query.weight",
            "pair.0.weight",
            "pair.0.bias",
            "pair.1.weight",
            "pair.1.bias",
            "head.weight",
        ]
    );
    assert_eq!(m.parameters().len(), 8);
    m.to_dtype(DType::F16).unwrap();
    assert_eq!(m.blocks[2].scale.dtype(), DType::F16);
    assert_eq!(m.pair[1].weight.dtype(), DType::F16);
    m.eval();
    assert!(!m.blocks[0].w_query.is_training() && !m.pair[0].is_training());
    // A round trip through a PyTorch file keeps every list element in its place.
    let path = std::env::temp_dir().join(format!("ub-list-{}.pth", std::process::id()));
    m.save(&path).unwrap();
    let mut back = stack();
    back.to_dtype(DType::F16).unwrap();
    assert!(back.load(&path, LoadMode::Strict).unwrap().is_empty());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        back.blocks[1]
            .w_query
            .weight
            .to_vec2::<half::f16>()
            .unwrap(),
        m.blocks[1].w_query.weight.to_vec2::<half::f16>().unwrap()
    );
    // A list that is shorter than the checkpoint's: PyTorch's unexpected keys.
    let mut short = stack();
    short.blocks.pop();
    let err = short
        .load_state_dict(&stack().state_dict(), LoadMode::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "Unexpected key(s) in state_dict: \"blocks.2.scale\", \"blocks.2.W_query.weight\""
        ),
        "{err}"
    );
}

/// The ids an embedding refuses: below 0 as well as past the last row, wherever they sit
/// among valid ones, in every integer dtype and in strided views, each named in the error.
#[test]
fn embedding_ids_are_checked_at_both_ends() {
    let embedding = Embedding::new(10, 4, 0).unwrap();
    let cpu = &Device::Cpu;
    let refused = |ids: Tensor| match embedding.forward(&ids) {
        Ok(_) => panic!("ids {ids} accepted"),
        Err(Error::Input(message)) => message,
        Err(other) => panic!("not an input error: {other}"),
    };
    let range = "the embedding has 10 rows (valid ids are 0 to 9)";
    // A negative id among valid ones: the largest id (3) is in range.
    let ids = Tensor::new(&[[3i64, -1, 2]], cpu).unwrap();
    assert_eq!(
        refused(ids),
        format!("token id -1 is out of range: {range}")
    );
    let ids = Tensor::new(&[i64::MIN, 0], cpu).unwrap();
    assert_eq!(
        refused(ids),
        format!("token id {} is out of range: {range}", i64::MIN)
    );
    let ids = Tensor::new(&[[0i32, -7]], cpu).unwrap();
    assert_eq!(
        refused(ids),
        format!("token id -7 is out of range: {range}")
    );
    // Past the end, in the unsigned dtypes too.
    let ids = Tensor::new(&[[9u32, 10]], cpu).unwrap();
    assert_eq!(
        refused(ids),
        format!("token id 10 is out of range: {range}")
    );
    let ids = Tensor::new(&[u32::MAX], cpu).unwrap();
    assert_eq!(
        refused(ids),
        format!("token id {} is out of range: {range}", u32::MAX)
    );
    let ids = Tensor::new(&[255u8], cpu).unwrap();
    assert_eq!(
        refused(ids),
        format!("token id 255 is out of range: {range}")
    );
    // A strided view: the transpose of valid rows with one negative id.
    let ids = Tensor::new(&[[1i64, 2], [3, -4]], cpu)
        .unwrap()
        .t()
        .unwrap();
    assert_eq!(
        refused(ids),
        format!("token id -4 is out of range: {range}")
    );
    // Valid ids at both ends, in a view, are looked up as they are.
    let ids = Tensor::new(&[[0i64, 9], [5, 1]], cpu).unwrap().t().unwrap();
    let vectors = embedding.forward(&ids).unwrap();
    assert_eq!(vectors.dims(), &[2, 2, 4]);
    let weight = embedding.weight.to_vec2::<f32>().unwrap();
    let row = |i: usize, j: usize| vectors.i((i, j)).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        [row(0, 0), row(0, 1), row(1, 0), row(1, 1)],
        [
            weight[0].clone(),
            weight[5].clone(),
            weight[9].clone(),
            weight[1].clone()
        ]
    );
    // No ids, no check: an empty batch gives no vectors.
    let none = Tensor::zeros((1, 0), DType::U32, cpu).unwrap();
    assert_eq!(embedding.forward(&none).unwrap().dims(), &[1, 0, 4]);
}
