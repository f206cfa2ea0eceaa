//! The module registry: registration rules, walks, moves and casts, and property tests that
//! moves and casts never touch plain fields and that save → load → state_dict is the identity.

use candle_core::{DType, Device, Tensor};
use proptest::prelude::*;
use understanding_buffers::prelude::*;
use understanding_buffers::registry::TensorKind as Kind;

/// A module with a parameter, a persistent and a non-persistent buffer, an integer buffer,
/// a child, and a plain field.
struct Toy {
    registry: Registry,
    child: Child,
    scratch: Tensor,
}

struct Child {
    registry: Registry,
}

impl Module for Child {
    fn type_name(&self) -> &'static str {
        "Child"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
}

impl Module for Toy {
    fn type_name(&self) -> &'static str {
        "Toy"
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }
    fn children(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![("child", &self.child)]
    }
    fn children_mut(&mut self) -> Vec<(&'static str, &mut dyn Module)> {
        vec![("child", &mut self.child)]
    }
    fn plain_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("scratch", &self.scratch)]
    }
}

fn toy(values: &[f32]) -> Toy {
    let cpu = &Device::Cpu;
    let n = values.len();
    let mut registry = Registry::new();
    registry
        .register_parameter("weight", Tensor::from_slice(values, n, cpu).unwrap())
        .unwrap();
    registry
        .register_buffer(
            "stats",
            Tensor::from_slice(values, n, cpu).unwrap().sqr().unwrap(),
            true,
        )
        .unwrap();
    registry
        .register_buffer("cache", Tensor::ones(n, DType::F32, cpu).unwrap(), false)
        .unwrap();
    registry
        .register_buffer("steps", Tensor::new(&[3i64], cpu).unwrap(), true)
        .unwrap();
    let mut child_registry = Registry::new();
    child_registry
        .register_parameter(
            "bias",
            Tensor::from_slice(values, n, cpu).unwrap().neg().unwrap(),
        )
        .unwrap();
    child_registry
        .register_buffer("mask", Tensor::ones((n, n), DType::U8, cpu).unwrap(), true)
        .unwrap();
    Toy {
        registry,
        child: Child {
            registry: child_registry,
        },
        scratch: Tensor::from_slice(values, n, cpu).unwrap(),
    }
}

#[test]
fn walks_follow_pytorchs_order() {
    let m = toy(&[1.0, 2.0]);
    assert_eq!(
        m.state_dict().keys().collect::<Vec<_>>(),
        ["weight", "stats", "steps", "child.bias", "child.mask"]
    );
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "child.bias"]);
    let names: Vec<String> = m.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["stats", "cache", "steps", "child.mask"]);
    let kinds: Vec<Kind> = m.diagnostics().rows().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Parameter,
            Kind::Buffer,
            Kind::NonPersistentBuffer,
            Kind::Buffer,
            Kind::PlainField,
            Kind::Parameter,
            Kind::Buffer
        ]
    );
}

#[test]
fn registration_errors_say_what_is_wrong() {
    let mut r = Registry::new();
    let t = Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap();
    r.register_buffer("mask", t.clone(), true).unwrap();
    let err = r
        .register_parameter("mask", t.clone())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "\"mask\" is already registered as a buffer; use set_buffer to change its value"
    );
    let err = r
        .register_buffer("a.b", t.clone(), true)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid name \"a.b\""), "{err}");
    let err = r
        .register_buffer("", t.clone(), true)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid name \"\""), "{err}");
    let err = r.buffer("musk").unwrap_err().to_string();
    assert_eq!(
        err,
        "no buffer named \"musk\" in this module; its buffers are: [\"mask\"]"
    );
    let m = toy(&[1.0]);
    let err = m.buffer("child.nope").unwrap_err().to_string();
    assert_eq!(
        err,
        "Toy has no buffer \"child.nope\"; its buffers are [\"stats\", \"cache\", \"steps\", \"child.mask\"]"
    );
    let err = m.parameter("nope").unwrap_err().to_string();
    assert!(err.starts_with("Toy has no parameter \"nope\""), "{err}");
}

#[test]
fn set_buffer_reaches_children_and_keeps_the_kind() {
    let mut m = toy(&[1.0, 2.0]);
    m.set_buffer(
        "child.mask",
        Tensor::zeros((2, 2), DType::U8, &Device::Cpu).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m.buffer("child.mask").unwrap().to_vec2::<u8>().unwrap(),
        [[0, 0], [0, 0]]
    );
    assert!(m
        .set_buffer(
            "weight",
            Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap()
        )
        .is_err());
    assert_eq!(m.parameters().len(), 2);
}

#[test]
fn casts_keep_integer_buffers() {
    let mut m = toy(&[1.0, 2.0]);
    m.to_dtype(DType::BF16).unwrap();
    let dtypes: Vec<(String, DType)> = m
        .diagnostics()
        .rows()
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                match r.dtype.as_str() {
                    "BF16" => DType::BF16,
                    "I64" => DType::I64,
                    "U8" => DType::U8,
                    _ => DType::F32,
                },
            )
        })
        .collect();
    assert_eq!(
        dtypes,
        [
            ("weight".to_string(), DType::BF16),
            ("stats".to_string(), DType::BF16),
            ("cache".to_string(), DType::BF16),
            ("steps".to_string(), DType::I64),
            ("scratch".to_string(), DType::F32),
            ("child.bias".to_string(), DType::BF16),
            ("child.mask".to_string(), DType::U8),
        ]
    );
}

#[test]
fn train_and_eval_are_recursive() {
    let mut m = toy(&[1.0]);
    assert!(m.is_training() && m.child.is_training());
    m.eval();
    assert!(!m.is_training() && !m.child.is_training());
    m.train();
    assert!(m.is_training() && m.child.is_training());
}

#[test]
fn device_report_names_strays() {
    // Without a second device, a report built by hand shows what check() says.
    use understanding_buffers::diagnostics::{DeviceReport, TensorRow};
    let t = Tensor::zeros((6, 6), DType::F32, &Device::Cpu).unwrap();
    let mut mask = TensorRow::new("mask".into(), &t, Kind::PlainField);
    mask.device = "cpu".into();
    let mut weight = TensorRow::new("W_query.weight".into(), &t, Kind::Parameter);
    weight.device = "cuda:0".into();
    let report = DeviceReport::new(
        "CausalAttentionWithoutBuffers",
        "cuda:0".into(),
        vec![mask, weight],
    );
    let err = report.check().unwrap_err().to_string();
    assert_eq!(
        err,
        "CausalAttentionWithoutBuffers is on cuda:0 but these tensors are not: mask (plain field, on cpu). \
         Register them as buffers so that to_device moves them, or move them yourself."
    );
    assert!(report.to_string().contains("<- not on the module's device"));
    assert!(report.rich().1.contains("ub-stray"));
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ub-module-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn moves_and_casts_never_touch_plain_fields(
        values in prop::collection::vec(-1e3f32..1e3, 1..16),
        dtype in prop::sample::select(vec![DType::F16, DType::BF16, DType::F64, DType::F32]),
    ) {
        let mut m = toy(&values);
        let before = m.scratch.clone();
        m.to_dtype(dtype).unwrap();
        m.to_device(&Device::Cpu).unwrap();
        prop_assert_eq!(m.scratch.id(), before.id());
        prop_assert_eq!(m.scratch.dtype(), DType::F32);
        prop_assert_eq!(m.parameter("weight").unwrap().dtype(), dtype);
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
        let keys = fresh.load(&path, true).unwrap();
        prop_assert!(keys.is_empty());
        for ((ka, a), (kb, b)) in m.state_dict().iter().zip(fresh.state_dict().iter()) {
            prop_assert_eq!(ka, kb);
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
