//! Checkpoints: PyTorch's reference files load; our files load back bit for bit; damaged,
//! foreign and crafted files give clear errors and never panic; saves are atomic.

mod common;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::pickle::{archive, f32_bytes, pth, Pkl};
use proptest::prelude::*;
use safetensors::View;
use understanding_buffers::checkpoint::{
    self, load_pth, load_pth_bytes, load_safetensors, load_safetensors_bytes, save_pth,
    save_safetensors,
};
use understanding_buffers::nn::state_dict::StateDict;

const SUPPORTED: [DType; 10] = [
    DType::U8,
    DType::U32,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::BF16,
    DType::F16,
    DType::F32,
    DType::F64,
    DType::F8E4M3,
];

/// The crate's folder; read at run time, since the GPU machine runs these tests elsewhere.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn reference(name: &str) -> PathBuf {
    root().join("data/reference").join(name)
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A fresh, empty folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ub-checkpoint-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tensor's elements as bytes, by candle's own conversion (not the one under test).
fn bits(t: &Tensor) -> Vec<u8> {
    View::data(&t).into_owned()
}

fn keys(sd: &StateDict) -> Vec<&str> {
    sd.keys().collect()
}

fn error_of(result: understanding_buffers::Result<StateDict>) -> String {
    match result {
        Ok(sd) => panic!("expected an error, loaded {:?}", keys(&sd)),
        Err(e) => e.to_string(),
    }
}

/// The `data.pkl` record of a `.pth` archive.
fn data_pkl(bytes: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let names = record_names(&zip);
    let name = names.iter().find(|n| n.ends_with("/data.pkl")).unwrap();
    let mut pickle = Vec::new();
    zip.by_name(name).unwrap().read_to_end(&mut pickle).unwrap();
    pickle
}

fn record_names(zip: &zip::ZipArchive<Cursor<&[u8]>>) -> Vec<String> {
    zip.file_names_raw()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// PyTorch's reference files
// ---------------------------------------------------------------------------------------

#[test]
fn every_reference_file_loads() {
    let mut count = 0;
    for entry in std::fs::read_dir(reference("")).unwrap() {
        let path = entry.unwrap().path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !["pth", "safetensors"].contains(&ext) {
            continue;
        }
        let sd = checkpoint::load(&path, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        assert!(sd.len() >= 2, "{}: {:?}", path.display(), keys(&sd));
        for (key, t) in sd.iter() {
            assert_eq!(t.dtype(), DType::F32, "{key}");
            assert!(t.device().is_cpu());
        }
        count += 1;
    }
    assert_eq!(
        count, 8,
        "the six checkpoints of lesson 1 and the two positional-encoding ones of lesson 2"
    );
}

#[test]
fn mask2_checkpoint_saved_on_cuda_loads_in_order_with_its_twos() {
    let path = reference("model_with_buffer_mask2.pth");
    // PyTorch recorded the GPU it saved from; we load onto the CPU regardless.
    assert!(String::from_utf8_lossy(&data_pkl(&read(&path))).contains("cuda:0"));
    let sd = load_pth(&path, &Device::Cpu).unwrap();
    assert_eq!(
        keys(&sd),
        ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
    );
    let mask = sd.get("mask").unwrap();
    assert_eq!((mask.dtype(), mask.dims()), (DType::F32, &[6, 6][..]));
    let mask = mask.to_vec2::<f32>().unwrap();
    for (i, row) in mask.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(v, if j > i { 2. } else { 0. }, "mask[{i}][{j}]");
        }
    }
    for key in ["W_query.weight", "W_key.weight", "W_value.weight"] {
        assert_eq!(sd.get(key).unwrap().dims(), [2, 3]);
    }
    // Same weights as the module saved before its mask was changed.
    let before = load_pth(reference("seed123_with_buffer.pth"), &Device::Cpu).unwrap();
    assert_eq!(
        bits(sd.get("W_key.weight").unwrap()),
        bits(before.get("W_key.weight").unwrap())
    );
}

#[test]
fn seed123_pth_and_safetensors_hold_the_same_tensors() {
    for (stem, order) in [
        (
            "seed123_with_buffer",
            &["mask", "W_query.weight", "W_key.weight", "W_value.weight"][..],
        ),
        (
            "seed123_without_buffer",
            &["W_query.weight", "W_key.weight", "W_value.weight"][..],
        ),
    ] {
        let pth = load_pth(reference(&format!("{stem}.pth")), &Device::Cpu).unwrap();
        let st = load_safetensors(reference(&format!("{stem}.safetensors")), &Device::Cpu).unwrap();
        assert_eq!(keys(&pth), order, "{stem}.pth keeps PyTorch's order");
        let mut st_keys = keys(&st);
        st_keys.sort();
        let mut sorted = order.to_vec();
        sorted.sort();
        assert_eq!(st_keys, sorted, "{stem}.safetensors");
        for (key, t) in pth.iter() {
            let other = st.get(key).unwrap();
            assert_eq!(
                (t.dtype(), t.dims()),
                (other.dtype(), other.dims()),
                "{stem}: {key}"
            );
            assert_eq!(bits(t), bits(other), "{stem}: {key}");
        }
    }
    let mask = load_pth(reference("seed123_with_buffer.pth"), &Device::Cpu).unwrap();
    let mask = mask.get("mask").unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(mask[2], [0., 0., 0., 1., 1., 1.]);
}

/// A file of `tests/fixtures/checkpoint/`, written by PyTorch 2.15 with `make_fixtures.py`.
fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/checkpoint").join(name)
}

#[test]
fn torch_files_with_parameters_metadata_and_protocol_4_load() {
    // state_dict(keep_vars=True) pickles nn.Parameters and BUILDs `_metadata` onto the
    // OrderedDict; pickle_protocol=4 adds FRAME, STACK_GLOBAL and MEMOIZE.
    for name in ["keep_vars_metadata.pth", "protocol4.pth"] {
        let sd = load_pth(fixture(name), &Device::Cpu).unwrap();
        assert_eq!(
            keys(&sd),
            [
                "linear.weight",
                "linear.bias",
                "norm.weight",
                "norm.bias",
                "norm.running_mean",
                "norm.running_var",
                "norm.num_batches_tracked"
            ],
            "{name}"
        );
        let vec = |k: &str| {
            sd.get(k)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let tenths: Vec<f32> = (0..6).map(|i| i as f32 / 10.).collect();
        assert_eq!(vec("linear.weight"), tenths);
        assert_eq!(sd.get("linear.weight").unwrap().dims(), [2, 3]);
        assert_eq!(vec("linear.bias"), [-1., 1.]);
        assert_eq!(vec("norm.running_mean"), [0.5, 0.25]);
        assert_eq!(vec("norm.running_var"), [1., 1.]);
        let steps = sd.get("norm.num_batches_tracked").unwrap();
        assert_eq!((steps.dtype(), steps.dims()), (DType::I64, &[][..]));
        assert_eq!(steps.to_scalar::<i64>().unwrap(), 0);
    }
}

#[test]
fn torch_views_of_one_storage_load_as_their_values() {
    let sd = checkpoint::load(fixture("views.pth"), &Device::Cpu).unwrap();
    assert_eq!(keys(&sd), ["t", "row", "col", "scalar", "empty"]);
    let t = sd.get("t").unwrap();
    assert_eq!(t.dims(), [4, 3]);
    assert_eq!(t.to_vec2::<f32>().unwrap()[3], [3., 7., 11.]);
    assert_eq!(
        sd.get("row").unwrap().to_vec1::<f32>().unwrap(),
        [4., 5., 6., 7.]
    );
    assert_eq!(
        sd.get("col").unwrap().to_vec1::<f32>().unwrap(),
        [2., 6., 10.]
    );
    assert_eq!(sd.get("scalar").unwrap().to_scalar::<f32>().unwrap(), 3.5);
    assert_eq!(sd.get("empty").unwrap().dims(), [0, 3]);
}

#[test]
fn torch_files_of_every_dtype_candle_has_load() {
    let sd = load_pth(fixture("dtypes.pth"), &Device::Cpu).unwrap();
    let expected = [
        ("uint8", DType::U8),
        ("int16", DType::I16),
        ("int32", DType::I32),
        ("int64", DType::I64),
        ("bfloat16", DType::BF16),
        ("float16", DType::F16),
        ("float32", DType::F32),
        ("float64", DType::F64),
        ("uint32", DType::U32),           // _rebuild_tensor_v3
        ("float8_e4m3fn", DType::F8E4M3), // _rebuild_tensor_v3
    ];
    assert_eq!(keys(&sd), expected.map(|(k, _)| k));
    for (key, dtype) in expected {
        let t = sd.get(key).unwrap();
        assert_eq!((t.dtype(), t.dims()), (dtype, &[2, 3][..]), "{key}");
        let values = t
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(values, [0., 1., 2., 3., 4., 5.], "{key}");
    }
}

#[test]
fn torch_files_candle_cannot_hold_are_refused_with_the_fix() {
    let cases = [
        (
            "bool_mask.pth",
            "key \"mask\" is a torch.bool tensor, which candle cannot hold; convert it with \
             .to(torch.uint8) before saving",
        ),
        (
            "uint16.pth",
            "key \"q\" is a torch.uint16 tensor, which candle cannot hold; convert it with \
             .to(torch.int32) before saving",
        ),
        (
            "training_checkpoint.pth",
            "the state dicts (dicts of tensors) are under \"model\". Pick one by key: \
             checkpoint::load_with_key(path, \"model\", &device)",
        ),
        ("whole_module.pth", "calls __main__.Tiny"),
        ("torchscript.pt", "a TorchScript archive (torch.jit.save)"),
        // Advice that works (checked with PyTorch 2.15): files saved from a GPU need
        // map_location, pickled modules weights_only=False.
        (
            "whole_module.pth",
            "torch.save(torch.load(path, map_location=\"cpu\", weights_only=False).state_dict(), new_path)",
        ),
        (
            "torchscript.pt",
            "torch.save(torch.jit.load(path, map_location=\"cpu\").state_dict(), new_path)",
        ),
    ];
    for (name, expected) in cases {
        let err = error_of(checkpoint::load(fixture(name), &Device::Cpu));
        assert!(err.contains(expected), "{name}: {err}");
        assert!(
            err.starts_with(&fixture(name).display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn safetensors_keys_come_in_the_order_of_their_data() {
    let bytes = read(reference("seed123_with_buffer.safetensors"));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let sd = load_safetensors_bytes(&bytes, &Device::Cpu).unwrap();
    assert_eq!(keys(&sd), meta.offset_keys());
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

fn any_tensor() -> impl Strategy<Value = Tensor> {
    let dims = prop::collection::vec(0usize..4, 0..4);
    (prop::sample::select(SUPPORTED.to_vec()), dims).prop_flat_map(|(dtype, shape)| {
        let len = shape.iter().product::<usize>() * dtype.size_in_bytes();
        prop::collection::vec(any::<u8>(), len).prop_map(move |data| {
            Tensor::from_raw_buffer(&data, dtype, &shape, &Device::Cpu).unwrap()
        })
    })
}

fn any_state_dict() -> impl Strategy<Value = StateDict> {
    let key = "[a-zA-Z0-9_.]{1,10}|\\PC{0,6}"
        .prop_filter("reserved by safetensors", |k| k != "__metadata__");
    prop::collection::vec((key, any_tensor()), 0..6).prop_map(|pairs| pairs.into_iter().collect())
}

fn assert_same_tensors(loaded: &StateDict, saved: &StateDict) {
    assert_eq!(loaded.len(), saved.len());
    for (key, t) in saved.iter() {
        let back = loaded
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} is missing"));
        assert_eq!(back.dtype(), t.dtype(), "{key:?}");
        assert_eq!(back.dims(), t.dims(), "{key:?}");
        assert_eq!(bits(back), bits(t), "{key:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pth_round_trip_is_the_identity(sd in any_state_dict()) {
        let dir = scratch("pth-round-trip");
        let path = dir.join("model.pth");
        save_pth(&sd, &path).unwrap();
        let loaded = load_pth(&path, &Device::Cpu).unwrap();
        prop_assert_eq!(keys(&loaded), keys(&sd));
        assert_same_tensors(&loaded, &sd);
        let again = load_pth_bytes(&read(&path), &Device::Cpu).unwrap();
        prop_assert_eq!(keys(&again), keys(&sd));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn safetensors_round_trip_is_the_identity(sd in any_state_dict()) {
        let dir = scratch("safetensors-round-trip");
        let path = dir.join("model.safetensors");
        save_safetensors(&sd, &path).unwrap();
        assert_same_tensors(&load_safetensors(&path, &Device::Cpu).unwrap(), &sd);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn views_round_trip_as_their_values() {
    let dir = scratch("views");
    let base = Tensor::arange(0f32, 24., &Device::Cpu)
        .unwrap()
        .reshape((4, 6))
        .unwrap();
    let mut sd = StateDict::new();
    sd.insert("transposed", base.t().unwrap());
    sd.insert("narrowed", base.narrow(1, 2, 3).unwrap());
    sd.insert("scalar", Tensor::new(7.5f64, &Device::Cpu).unwrap());
    sd.insert(
        "empty",
        Tensor::zeros((0, 3), DType::I64, &Device::Cpu).unwrap(),
    );
    for name in ["views.pth", "views.safetensors"] {
        checkpoint::save(&sd, dir.join(name)).unwrap();
        let loaded = checkpoint::load(dir.join(name), &Device::Cpu).unwrap();
        let t = loaded.get("transposed").unwrap();
        assert_eq!(
            t.to_vec2::<f32>().unwrap(),
            base.t().unwrap().to_vec2::<f32>().unwrap()
        );
        let n = loaded.get("narrowed").unwrap();
        assert_eq!(n.to_vec2::<f32>().unwrap()[1], [8., 9., 10.]);
        assert_eq!(
            loaded.get("scalar").unwrap().to_scalar::<f64>().unwrap(),
            7.5
        );
        assert_eq!(loaded.get("empty").unwrap().dims(), [0, 3]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn saved_pth_matches_the_layout_torch_save_writes() {
    let dir = scratch("layout");
    let path = dir.join("model.pth");
    let sd = load_pth(reference("seed123_with_buffer.pth"), &Device::Cpu).unwrap();
    save_pth(&sd, &path).unwrap();
    let bytes = read(&path);
    let names = record_names(&zip::ZipArchive::new(Cursor::new(bytes.as_slice())).unwrap());
    for name in [
        "data.pkl",
        "byteorder",
        "version",
        "data/0",
        "data/1",
        "data/2",
        "data/3",
    ] {
        assert!(
            names.contains(&format!("model/{name}")),
            "{name} in {names:?}"
        );
    }
    // Same pickle as torch.save's, but for the device string and the memo numbering.
    let ours = data_pkl(&bytes);
    assert!(ours.starts_with(b"\x80\x02ccollections\nOrderedDict\n"));
    let text = String::from_utf8_lossy(&ours);
    for needle in [
        "torch._utils\n_rebuild_tensor_v2",
        "torch\nFloatStorage",
        "cpu",
        "W_value.weight",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// What PyTorch can write: strides, offsets, parameters, newer protocols, big-endian
// ---------------------------------------------------------------------------------------

#[test]
fn strided_views_and_storage_offsets_are_cut_out_of_shared_storages() {
    let storage = f32_bytes(&(0..12).map(|v| v as f32).collect::<Vec<_>>());
    let pickle = Pkl::state_dict(|p| {
        p.str("t") // a 3x4 storage read as its 4x3 transpose
            .tensor("FloatStorage", "0", 12, 0, &[4, 3], &[1, 4])
            .str("row") // row 1, through a storage offset
            .tensor("FloatStorage", "0", 12, 4, &[4], &[1])
            .str("col") // column 2, strided
            .tensor("FloatStorage", "0", 12, 2, &[3], &[4])
            .str("scalar") // a 0-dim tensor
            .tensor("FloatStorage", "0", 12, 11, &[], &[])
    });
    let sd = load_pth_bytes(&pth(&pickle, &[&storage]), &Device::Cpu).unwrap();
    assert_eq!(keys(&sd), ["t", "row", "col", "scalar"]);
    let t = sd.get("t").unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(t[1], [1., 5., 9.]);
    assert_eq!(
        sd.get("row").unwrap().to_vec1::<f32>().unwrap(),
        [4., 5., 6., 7.]
    );
    assert_eq!(
        sd.get("col").unwrap().to_vec1::<f32>().unwrap(),
        [2., 6., 10.]
    );
    assert_eq!(sd.get("scalar").unwrap().to_scalar::<f32>().unwrap(), 11.);
}

#[test]
fn expanded_views_load_with_pytorchs_values_and_stay_views() {
    // What torch.save writes for `torch.tensor([1., 2.]).expand(3, 2)`: the 2-element
    // storage, shape (3, 2), strides (0, 1); and for `torch.arange(3.).reshape(3, 1)
    // .expand(3, 4)`: strides (1, 0).
    let pickle = Pkl::state_dict(|p| {
        p.str("rows")
            .tensor("FloatStorage", "0", 2, 0, &[3, 2], &[0, 1])
            .str("columns")
            .tensor("FloatStorage", "1", 3, 0, &[3, 4], &[1, 0])
            .str("huge") // 2^40 elements from one: never materialised
            .tensor("FloatStorage", "0", 2, 1, &[1 << 20, 1 << 20], &[0, 0])
    });
    let storages = [f32_bytes(&[1., 2.]), f32_bytes(&[0., 1., 2.])];
    let file = pth(&pickle, &[&storages[0], &storages[1]]);
    let sd = load_pth_bytes(&file, &Device::Cpu).unwrap();
    let rows = sd.get("rows").unwrap();
    assert_eq!(
        rows.to_vec2::<f32>().unwrap(),
        [[1., 2.], [1., 2.], [1., 2.]]
    );
    assert_eq!(rows.stride(), [0, 1], "still an expanded view");
    let columns = sd.get("columns").unwrap();
    assert_eq!(
        columns.to_vec2::<f32>().unwrap(),
        [[0., 0., 0., 0.], [1., 1., 1., 1.], [2., 2., 2., 2.]]
    );
    let huge = sd.get("huge").unwrap();
    assert_eq!(
        (huge.dims(), huge.stride()),
        (&[1 << 20, 1 << 20][..], &[0, 0][..])
    );
    assert_eq!(
        huge.narrow(0, 12345, 1)
            .unwrap()
            .narrow(1, 678, 2)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap(),
        [[2., 2.]]
    );
    // Saved again, the expanded values are written out in full, as torch.save(t.contiguous()).
    let dir = scratch("expanded");
    let mut small = StateDict::new();
    small.insert("rows", rows.clone());
    save_pth(&small, dir.join("rows.pth")).unwrap();
    let back = load_pth(dir.join("rows.pth"), &Device::Cpu).unwrap();
    assert_eq!(
        back.get("rows").unwrap().to_vec2::<f32>().unwrap(),
        [[1., 2.], [1., 2.], [1., 2.]]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn parameters_metadata_and_repeated_keys_read_as_pytorch_reads_them() {
    let pickle = Pkl::default()
        .proto(2)
        .ordered_dict()
        .put(0)
        .mark()
        .str("w") // nn.Parameter, as torch.save(model.state_dict(keep_vars=True)) writes it
        .global("torch._utils", "_rebuild_parameter")
        .tensor("FloatStorage", "0", 2, 0, &[2], &[1])
        .op(&[0x88])
        .ordered_dict()
        .op(&[0x87]) // TUPLE3
        .reduce()
        .str("b")
        .tensor("LongStorage", "1", 1, 0, &[1], &[1])
        .str("w") // a repeated key keeps its first place and takes the last value
        .tensor("FloatStorage", "0", 2, 1, &[1], &[1])
        .op(b"u")
        // state_dict()._metadata, set by BUILD on the OrderedDict
        .op(b"}")
        .str("_metadata")
        .ordered_dict()
        .str("")
        .op(b"}")
        .str("version")
        .int(1)
        .op(b"ss")
        .op(b"sb.")
        .0;
    let storages: [&[u8]; 2] = [&f32_bytes(&[1.5, -2.]), &7i64.to_le_bytes()];
    let sd = load_pth_bytes(&pth(&pickle, &storages), &Device::Cpu).unwrap();
    assert_eq!(keys(&sd), ["w", "b"]);
    assert_eq!(sd.get("w").unwrap().to_vec1::<f32>().unwrap(), [-2.]);
    assert_eq!(sd.get("b").unwrap().to_vec1::<i64>().unwrap(), [7]);
}

#[test]
fn protocol_5_pickles_with_frames_and_stack_globals_load() {
    fn short(s: &str) -> Vec<u8> {
        let mut op = vec![0x8c, s.len() as u8];
        op.extend(s.as_bytes());
        op
    }
    // What pickle.dumps(..., protocol=5) writes: FRAME, SHORT_BINUNICODE + STACK_GLOBAL,
    // MEMOIZE, BINGET of a memoized global.
    let mut body = Pkl::default();
    for op in [short("collections"), short("OrderedDict"), vec![0x93, 0x94]] {
        body = body.op(&op);
    }
    body = body
        .empty_tuple()
        .reduce()
        .op(&[0x94])
        .mark()
        .op(&short("x"));
    for op in [
        short("torch._utils"),
        short("_rebuild_tensor_v2"),
        vec![0x93, 0x94],
    ] {
        body = body.op(&op);
    }
    body = body.mark().mark().op(&short("storage"));
    for op in [short("torch"), short("HalfStorage"), vec![0x93, 0x94]] {
        body = body.op(&op);
    }
    body = body
        .op(&short("0"))
        .op(&short("cpu"))
        .op(&[b'K', 3])
        .tuple()
        .op(b"Q")
        .op(&[b'K', 0])
        .op(&[b'K', 3, 0x85]) // TUPLE1
        .op(&[b'K', 1, 0x85])
        .op(&[0x89])
        .get(0) // the memoized OrderedDict class
        .empty_tuple()
        .reduce()
        .tuple()
        .reduce()
        .op(b"u");
    let mut pickle = vec![0x80, 5, 0x95];
    pickle.extend((body.0.len() as u64 + 1).to_le_bytes());
    pickle.extend(body.0);
    pickle.push(b'.');
    let half: Vec<u8> = [0x3c00u16, 0x4000, 0xc200]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let sd = load_pth_bytes(&pth(&pickle, &[&half]), &Device::Cpu).unwrap();
    let x = sd.get("x").unwrap();
    assert_eq!(x.dtype(), DType::F16);
    assert_eq!(
        x.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap(),
        [1., 2., -3.]
    );
}

#[test]
fn a_dict_memoized_before_it_is_filled_reads_back_filled() {
    // `}q\x00(...u0h\x00.`: the memo entry is the dict itself, as in Python.
    let pickle = Pkl::default()
        .proto(2)
        .op(b"}")
        .put(0)
        .mark()
        .str("m")
        .tensor("ByteStorage", "0", 2, 0, &[2], &[1])
        .op(b"u")
        .op(b"0")
        .get(0)
        .op(b".")
        .0;
    let sd = load_pth_bytes(&pth(&pickle, &[&[3, 4]]), &Device::Cpu).unwrap();
    assert_eq!(sd.get("m").unwrap().to_vec1::<u8>().unwrap(), [3, 4]);
}

#[test]
fn uint32_and_float8_use_rebuild_tensor_v3_both_ways() {
    let dir = scratch("v3");
    let mut sd = StateDict::new();
    sd.insert(
        "u",
        Tensor::new(&[1u32, 70000, u32::MAX], &Device::Cpu).unwrap(),
    );
    let f8 = Tensor::new(&[0.5f32, -2., 448.], &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F8E4M3)
        .unwrap();
    sd.insert("f8", f8);
    save_pth(&sd, dir.join("v3.pth")).unwrap();
    let pickle = data_pkl(&read(dir.join("v3.pth")));
    let text = String::from_utf8_lossy(&pickle);
    assert!(
        text.contains("torch._utils\n_rebuild_tensor_v3")
            && text.contains("torch.storage\nUntypedStorage")
    );
    assert!(text.contains("torch\nuint32") && text.contains("torch\nfloat8_e4m3fn"));
    let loaded = load_pth(dir.join("v3.pth"), &Device::Cpu).unwrap();
    assert_same_tensors(&loaded, &sd);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn big_endian_files_are_read_by_their_byteorder_record() {
    let pickle = Pkl::state_dict(|p| p.str("x").tensor("IntStorage", "0", 2, 0, &[2], &[1]));
    let storage: Vec<u8> = [1i32, -2].iter().flat_map(|v| v.to_be_bytes()).collect();
    let bytes = archive(&[
        ("data.pkl", &pickle),
        ("byteorder", b"big"),
        ("data/0", &storage),
    ]);
    let sd = load_pth_bytes(&bytes, &Device::Cpu).unwrap();
    assert_eq!(sd.get("x").unwrap().to_vec1::<i32>().unwrap(), [1, -2]);
}

// ---------------------------------------------------------------------------------------
// Errors: each says what is wrong and how to fix it
// ---------------------------------------------------------------------------------------

#[test]
fn a_bool_tensor_is_an_error_naming_the_key_and_the_fix() {
    let pickle = Pkl::state_dict(|p| p.str("m").tensor("BoolStorage", "0", 3, 0, &[3], &[1]));
    let err = error_of(load_pth_bytes(&pth(&pickle, &[&[1, 0, 1]]), &Device::Cpu));
    assert_eq!(
        err,
        "<bytes>: key \"m\" is a torch.bool tensor, which candle cannot hold; convert it with \
         .to(torch.uint8) before saving"
    );
}

#[test]
fn a_bool_safetensors_tensor_is_an_error_naming_the_key_and_the_fix() {
    let header = br#"{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend([1, 0]);
    let err = error_of(load_safetensors_bytes(&bytes, &Device::Cpu));
    assert!(
        err.contains("key \"m\" holds BOOL values, which candle cannot hold"),
        "{err}"
    );
    assert!(err.contains(".to(torch.uint8)"), "{err}");
}

#[test]
fn truncated_files_are_errors_that_say_so() {
    let bytes = read(reference("model_with_buffer_mask2.pth"));
    let err = error_of(load_pth_bytes(&bytes[..bytes.len() / 2], &Device::Cpu));
    assert!(err.contains("damaged or truncated"), "{err}");
    let bytes = read(reference("seed123_with_buffer.safetensors"));
    let err = error_of(load_safetensors_bytes(
        &bytes[..bytes.len() - 1],
        &Device::Cpu,
    ));
    assert!(
        err.contains("damaged, truncated, or not a safetensors file"),
        "{err}"
    );
}

#[test]
fn every_proper_prefix_of_a_real_file_is_an_error() {
    let pth = read(reference("model_with_buffer_mask2.pth"));
    for len in 0..pth.len() {
        assert!(
            load_pth_bytes(&pth[..len], &Device::Cpu).is_err(),
            "prefix of {len} bytes"
        );
    }
    let st = read(reference("seed123_with_buffer.safetensors"));
    for len in 0..st.len() {
        assert!(
            load_safetensors_bytes(&st[..len], &Device::Cpu).is_err(),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn a_zip_that_is_not_a_checkpoint_is_named_as_such() {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("notes/readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let err = error_of(load_pth_bytes(&bytes, &Device::Cpu));
    assert!(err.contains("not a PyTorch checkpoint"), "{err}");
    assert!(
        err.contains("no <name>/data.pkl record") && err.contains("notes/readme.txt"),
        "{err}"
    );
    let err = error_of(load_safetensors_bytes(&bytes, &Device::Cpu));
    assert!(err.contains("load it with load_pth"), "{err}");
}

#[test]
fn other_files_mistaken_for_pth_files_are_named() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "the file is empty"),
        (
            b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.",
            "legacy format",
        ),
        (
            &read(reference("seed123_with_buffer.safetensors")),
            "looks like a safetensors file",
        ),
        (b"GIF89a....", "starts with 47 49 46 38"),
    ];
    for (bytes, expected) in cases {
        let err = error_of(load_pth_bytes(bytes, &Device::Cpu));
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn unknown_extensions_list_the_supported_ones() {
    let sd = StateDict::new();
    for path in ["weights.npz", "weights"] {
        let err = checkpoint::save(&sd, path).unwrap_err().to_string();
        assert!(
            err.contains("use .safetensors, or .pth, .pt or .bin"),
            "{err}"
        );
        assert!(err.starts_with(path), "{err}");
    }
    let err = checkpoint::save(&sd, "weights.npz")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown checkpoint extension \".npz\""),
        "{err}"
    );
}

#[test]
fn load_reads_the_format_from_the_content_whatever_the_extension() {
    let dir = scratch("content");
    let pth = read(reference("seed123_with_buffer.pth"));
    let st = read(reference("seed123_with_buffer.safetensors"));
    let legacy = read(fixture("legacy.pth"));
    let cases: [(&str, &[u8], usize); 6] = [
        ("model.pt", &pth, 4),
        ("pytorch_model.bin", &pth, 4),
        ("last.ckpt", &pth, 4),
        ("weights", &pth, 4),
        ("model.pth", &st, 4),
        ("old.tar", &legacy, 7),
    ];
    for (name, bytes, n) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let sd = checkpoint::load(&path, &Device::Cpu).unwrap();
        assert_eq!(sd.len(), n, "{name}");
    }
    let path = dir.join("notes.pth");
    std::fs::write(&path, b"GIF89a....").unwrap();
    let err = error_of(checkpoint::load(&path, &Device::Cpu));
    assert!(err.contains("starts with 47 49 46 38"), "{err}");
}

/// A file torch.save wrote under a stem of every length from 1 to 40 characters: the zip
/// crate's archive-offset detection took a 21-character stem's archive for one with a
/// 76-byte prefix (the zip64 end records torch writes).
#[test]
fn torch_files_under_stems_of_1_to_40_characters_load() {
    for n in 1..=40 {
        let path = fixture(&format!("stems/{}.pth", "s".repeat(n)));
        let sd = checkpoint::load(&path, &Device::Cpu)
            .unwrap_or_else(|e| panic!("stem of {n} characters: {e}"));
        let w = sd.get("w").unwrap().to_vec2::<f32>().unwrap();
        let n = n as f32;
        assert_eq!(w, [[n, 1. + n, 2. + n], [3. + n, 4. + n, 5. + n]]);
    }
}

#[test]
fn legacy_files_load_like_their_zip_twins() {
    let legacy = load_pth(fixture("legacy.pth"), &Device::Cpu).unwrap();
    let zip = load_pth(fixture("protocol4.pth"), &Device::Cpu).unwrap();
    assert_eq!(keys(&legacy), keys(&zip));
    for (key, t) in zip.iter() {
        let other = legacy.get(key).unwrap();
        assert_eq!(
            (t.dtype(), t.dims()),
            (other.dtype(), other.dims()),
            "{key}"
        );
        assert_eq!(bits(t), bits(other), "{key}");
    }
    let views = checkpoint::load(fixture("legacy_views.pth"), &Device::Cpu).unwrap();
    assert_eq!(keys(&views), ["t", "row", "col", "half", "long"]);
    let t = views.get("t").unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(t[1], [1., 5., 9.]);
    let col = views.get("col").unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(col, [2., 6., 10.]);
    assert_eq!(
        views.get("row").unwrap().to_vec1::<f32>().unwrap(),
        [4., 5., 6., 7.]
    );
    let half = views.get("half").unwrap();
    assert_eq!(half.dtype(), DType::F16);
    let long = views.get("long").unwrap().to_vec1::<i64>().unwrap();
    assert_eq!(long, [0, 1, 2]);
}

#[test]
fn every_proper_prefix_of_a_legacy_file_is_an_error() {
    let bytes = read(fixture("legacy_views.pth"));
    for len in 0..bytes.len() {
        let err = error_of(load_pth_bytes(&bytes[..len], &Device::Cpu));
        assert!(!err.is_empty());
    }
}

#[test]
fn training_checkpoints_name_their_state_dicts_and_load_by_key() {
    let cases = [
        (
            "training_full.pth",
            "model",
            "\"epoch\", \"model\", \"optimizer\", \"loss\", \"config\"",
        ),
        (
            "training_full_legacy.pth",
            "model",
            "\"epoch\", \"model\", \"optimizer\"",
        ),
        ("lightning.ckpt", "state_dict", "\"epoch\", \"global_step\""),
    ];
    let tiny = load_pth(fixture("protocol4.pth"), &Device::Cpu).unwrap();
    for (name, key, listed) in cases {
        let err = error_of(checkpoint::load(fixture(name), &Device::Cpu));
        assert!(err.contains(listed), "{name}: {err}");
        assert!(
            err.contains(&format!("the state dicts (dicts of tensors) are under \"{key}\". Pick one by key: checkpoint::load_with_key(path, \"{key}\", &device)")),
            "{name}: {err}"
        );
        let sd = checkpoint::load_with_key(fixture(name), key, &Device::Cpu).unwrap();
        assert_eq!(sd.len(), tiny.len(), "{name}");
        for ((k, t), (tk, tt)) in sd.iter().zip(tiny.iter()) {
            assert!(k.ends_with(tk), "{name}: {k}");
            assert_eq!(t.dims(), tt.dims(), "{name}: {k}");
        }
        let err = error_of(checkpoint::load_with_key(
            fixture(name),
            "weights",
            &Device::Cpu,
        ));
        assert!(
            err.contains("no key \"weights\"") && err.contains(key),
            "{err}"
        );
    }
    // Objects of any class elsewhere in the file (Lightning's hyper-parameters, an
    // argparse.Namespace) are never built, only named: the state dict still loads.
    let with_objects = Pkl::default()
        .proto(2)
        .op(b"}")
        .mark()
        .str("args")
        .global("argparse", "Namespace")
        .empty_tuple()
        .reduce()
        .op(b"}")
        .str("lr")
        .op(b"G?PbM\xd2\xf1\xa9\xfc")
        .op(b"sb")
        .str("model")
        .ordered_dict()
        .mark()
        .str("w")
        .tensor("FloatStorage", "0", 2, 0, &[2], &[1])
        .op(b"u")
        .op(b"u.")
        .0;
    let file = pth(&with_objects, &[&f32_bytes(&[1., 2.])]);
    let sd = checkpoint::load_pth_bytes_with_key(&file, "model", &Device::Cpu).unwrap();
    assert_eq!(sd.get("w").unwrap().to_vec1::<f32>().unwrap(), [1., 2.]);
    let err = error_of(checkpoint::load_pth_bytes_with_key(
        &file,
        "args",
        &Device::Cpu,
    ));
    assert!(
        err.contains("is a pickled Python object, not a state dict"),
        "{err}"
    );
    let bytes = read(fixture("training_full.pth"));
    let err = error_of(checkpoint::load_pth_bytes_with_key(
        &bytes,
        "optimizer",
        &Device::Cpu,
    ));
    assert!(
        err.contains("key \"state\" is a dict, not a tensor"),
        "{err}"
    );
}

#[test]
fn pickled_objects_other_than_state_dicts_are_refused_with_the_fix() {
    // torch.save(model): the whole module, with a class from the user's code.
    let module = Pkl::default()
        .proto(2)
        .global("__main__", "CausalAttention")
        .empty_tuple()
        .reduce()
        .op(b".")
        .0;
    let err = error_of(load_pth_bytes(&pth(&module, &[]), &Device::Cpu));
    assert!(err.contains("calls __main__.CausalAttention"), "{err}");
    assert!(
        err.contains("torch.load(path, map_location=\"cpu\", weights_only=False).state_dict()"),
        "{err}"
    );
    // os.system: never called.
    let attack = Pkl::default()
        .proto(2)
        .global("os", "system")
        .str("touch /tmp/pwned")
        .op(b"\x85R.")
        .0;
    let err = error_of(load_pth_bytes(&pth(&attack, &[]), &Device::Cpu));
    assert!(err.contains("calls os.system"), "{err}");
    // A training checkpoint: {"model": state_dict, ...}.
    let nested = Pkl::default()
        .proto(2)
        .op(b"}")
        .str("model")
        .op(b"}")
        .op(b"s.")
        .0;
    let err = error_of(load_pth_bytes(&pth(&nested, &[]), &Device::Cpu));
    assert!(
        err.contains("key \"model\" is a dict")
            && err.contains("none holds a dict of tensors")
            && err.contains("torch.save(model.state_dict(), path)"),
        "{err}"
    );
    // torch.save(tensor).
    let single = Pkl::default()
        .proto(2)
        .tensor("FloatStorage", "0", 1, 0, &[1], &[1])
        .op(b".")
        .0;
    let err = error_of(load_pth_bytes(
        &pth(&single, &[&f32_bytes(&[1.])]),
        &Device::Cpu,
    ));
    assert!(err.contains("a single tensor, not a state dict"), "{err}");
}

#[test]
fn damaged_storages_and_views_are_errors() {
    let sd = |tensor: fn(Pkl) -> Pkl| Pkl::state_dict(|p| tensor(p.str("x")));
    // The storage record is shorter than its persistent id says.
    let short = sd(|p| p.tensor("FloatStorage", "0", 4, 0, &[4], &[1]));
    let err = error_of(load_pth_bytes(
        &pth(&short, &[&f32_bytes(&[1., 2.])]),
        &Device::Cpu,
    ));
    assert!(
        err.contains("storage 0 should hold 4 elements but holds 8 bytes"),
        "{err}"
    );
    // The view reads past the end of its storage.
    let past = sd(|p| p.tensor("FloatStorage", "0", 2, 1, &[2], &[1]));
    let err = error_of(load_pth_bytes(
        &pth(&past, &[&f32_bytes(&[1., 2.])]),
        &Device::Cpu,
    ));
    assert!(err.contains("reads element 2 of a storage of 2"), "{err}");
    // A window that reads elements more than once (`as_strided` with overlapping rows).
    let window = sd(|p| p.tensor("FloatStorage", "0", 5, 0, &[3, 3], &[1, 1]));
    let err = error_of(load_pth_bytes(
        &pth(&window, &[&f32_bytes(&[1., 2., 3., 4., 5.])]),
        &Device::Cpu,
    ));
    assert!(
        err.contains("reads elements more than once") && err.contains(".contiguous()"),
        "{err}"
    );
    // The storage record is missing.
    let missing = sd(|p| p.tensor("FloatStorage", "7", 1, 0, &[1], &[1]));
    let err = error_of(load_pth_bytes(&pth(&missing, &[]), &Device::Cpu));
    assert!(
        err.contains("the record archive/data/7 is missing"),
        "{err}"
    );
    // A flipped bit in a storage fails the zip's checksum.
    let mut bytes = read(reference("seed123_with_buffer.pth"));
    let at = bytes
        .windows(4)
        .position(|w| w == [0xc9, 0x6c, 0x0b, 0xbe])
        .unwrap();
    bytes[at] ^= 1;
    let err = error_of(load_pth_bytes(&bytes, &Device::Cpu));
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn a_file_that_cannot_be_read_names_its_path() {
    let err = error_of(load_pth("/nonexistent/model.pth", &Device::Cpu));
    assert!(
        err.starts_with("/nonexistent/model.pth: cannot read"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Crafted and random input never panics
// ---------------------------------------------------------------------------------------

/// Opcodes and arguments of the kind torch.save writes, in random order.
fn opcode_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"(".to_vec()),
        Just(b"t".to_vec()),
        Just(b")".to_vec()),
        Just(b"}".to_vec()),
        Just(b"]".to_vec()),
        Just(b"u".to_vec()),
        Just(b"s".to_vec()),
        Just(b"a".to_vec()),
        Just(b"e".to_vec()),
        Just(b"R".to_vec()),
        Just(b"Q".to_vec()),
        Just(b"b".to_vec()),
        Just(b"0".to_vec()),
        Just(b"1".to_vec()),
        Just(b"N".to_vec()),
        Just(vec![0x81]),
        Just(vec![0x85]),
        Just(vec![0x86]),
        Just(vec![0x87]),
        Just(vec![0x88]),
        Just(vec![0x89]),
        Just(vec![0x93]),
        Just(vec![0x94]),
        Just(b"ccollections\nOrderedDict\n".to_vec()),
        Just(b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec()),
        Just(b"ctorch._utils\n_rebuild_parameter\n".to_vec()),
        Just(b"ctorch\nFloatStorage\n".to_vec()),
        Just(b"ctorch\nBoolStorage\n".to_vec()),
        Just(b"X\x07\x00\x00\x00storage".to_vec()),
        Just(b"X\x01\x00\x00\x000".to_vec()),
        Just(b"X\x03\x00\x00\x00cpu".to_vec()),
        any::<u8>().prop_map(|i| vec![b'K', i]),
        any::<u8>().prop_map(|i| vec![b'q', i % 8]),
        any::<u8>().prop_map(|i| vec![b'h', i % 8]),
        any::<u32>().prop_map(|i| [vec![b'J'], i.to_le_bytes().to_vec()].concat()),
        any::<[u8; 3]>().prop_map(|b| b.to_vec()),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| {
        let mut pickle = vec![0x80, 2];
        pickle.extend(pieces.concat());
        pickle.push(b'.');
        pickle
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_are_errors(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(load_pth_bytes(&bytes, &Device::Cpu).is_err());
        prop_assert!(load_safetensors_bytes(&bytes, &Device::Cpu).is_err());
        let mut zip_like = b"PK\x03\x04".to_vec();
        zip_like.extend(&bytes);
        prop_assert!(load_pth_bytes(&zip_like, &Device::Cpu).is_err());
    }

    #[test]
    fn damaged_real_files_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        for name in ["model_with_buffer_mask2.pth", "seed123_with_buffer.safetensors"] {
            let mut bytes = read(reference(name));
            for (at, value) in &flips {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            let _ = load_pth_bytes(&bytes, &Device::Cpu);
            let _ = load_safetensors_bytes(&bytes, &Device::Cpu);
            let len = cut.index(bytes.len());
            let _ = load_pth_bytes(&bytes[..len], &Device::Cpu);
            let _ = load_safetensors_bytes(&bytes[..len], &Device::Cpu);
        }
    }

    #[test]
    fn damaged_pickles_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let real = data_pkl(&read(reference("model_with_buffer_mask2.pth")));
        let mut pickle = real.clone();
        for (at, value) in &flips {
            let i = at.index(pickle.len());
            pickle[i] = *value;
        }
        let storages = [vec![0u8; 144], vec![0; 24], vec![0; 24], vec![0; 24]];
        let storages: Vec<&[u8]> = storages.iter().map(Vec::as_slice).collect();
        let _ = load_pth_bytes(&pth(&pickle, &storages), &Device::Cpu);
        // Only the last byte of the real pickle is STOP: every prefix is incomplete.
        let len = cut.index(real.len());
        prop_assert!(load_pth_bytes(&pth(&real[..len], &storages), &Device::Cpu).is_err());
    }

    #[test]
    fn opcode_soup_never_panics(pickle in opcode_soup()) {
        let storage = f32_bytes(&[1., 2., 3., 4.]);
        let _ = load_pth_bytes(&pth(&pickle, &[&storage]), &Device::Cpu);
    }
}

#[test]
fn deeply_nested_or_self_copying_pickles_are_refused_quickly() {
    // 100 000 nested 1-tuples.
    let mut deep = vec![0x80, 2, b')'];
    deep.extend(std::iter::repeat_n(0x85, 100_000));
    deep.push(b'.');
    let err = error_of(load_pth_bytes(&pth(&deep, &[]), &Device::Cpu));
    assert!(err.contains("nest deeper than 64 levels"), "{err}");
    // A list that doubles by memo copies, 60 times: 2^60 items from a few hundred bytes.
    let mut bomb = Pkl::default().proto(2).op(b"]").put(0);
    for _ in 0..60 {
        bomb = bomb.op(b"(").get(0).get(0).op(b"l").op(b"q\x00");
    }
    let err = error_of(load_pth_bytes(&pth(&bomb.op(b".").0, &[]), &Device::Cpu));
    assert!(
        err.contains("nest deeper") || err.contains("copies far more data"),
        "{err}"
    );
    // A 1 MiB string copied a thousand times.
    let mut copies = Pkl::default().proto(2).str(&"x".repeat(1 << 20)).put(0);
    for _ in 0..1_000 {
        copies = copies.get(0).op(b"0");
    }
    let result = load_pth_bytes(&pth(&copies.op(b".").0, &[]), &Device::Cpu);
    assert!(error_of(result).contains("copies far more data"));
}

// ---------------------------------------------------------------------------------------
// Atomic saves
// ---------------------------------------------------------------------------------------

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_failed_save_leaves_the_existing_file_byte_identical() {
    let dir = scratch("atomic");
    let mut sd = StateDict::new();
    sd.insert("fine", Tensor::ones(3, DType::F32, &Device::Cpu).unwrap());
    // candle's 6-bit float has no PyTorch or safetensors counterpart.
    let f6 = Tensor::from_raw_buffer(&[0u8; 4], DType::F6E2M3, &[4], &Device::Cpu).unwrap();
    sd.insert("f6", f6);
    for name in ["model.pth", "model.safetensors"] {
        let path = dir.join(name);
        std::fs::write(&path, b"the previous checkpoint").unwrap();
        let err = checkpoint::save(&sd, &path).unwrap_err().to_string();
        assert!(
            err.contains("key \"f6\" is a candle F6E2M3 tensor, which this crate cannot save"),
            "{err}"
        );
        assert_eq!(read(&path), b"the previous checkpoint");
    }
    assert_eq!(leftovers(&dir), Vec::<String>::new());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_save_that_fails_after_writing_removes_its_temporary_file() {
    let dir = scratch("atomic-late");
    // The target is a folder: everything is written, then the rename fails.
    let target = dir.join("model.pth");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), b"kept").unwrap();
    let sd = load_pth(reference("seed123_with_buffer.pth"), &Device::Cpu).unwrap();
    let err = save_pth(&sd, &target).unwrap_err().to_string();
    assert!(err.contains("cannot move it into place"), "{err}");
    assert_eq!(read(target.join("inside")), b"kept");
    assert_eq!(leftovers(&dir), Vec::<String>::new());
    // A folder that does not exist.
    let err = save_safetensors(&sd, dir.join("missing/model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot create a temporary file"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_successful_save_replaces_the_file_and_leaves_nothing_else() {
    let dir = scratch("replace");
    let sd = load_pth(reference("seed123_with_buffer.pth"), &Device::Cpu).unwrap();
    for name in ["model.pth", "model.safetensors"] {
        std::fs::write(dir.join(name), b"old").unwrap();
        checkpoint::save(&sd, dir.join(name)).unwrap();
        assert_eq!(
            keys(&checkpoint::load(dir.join(name), &Device::Cpu).unwrap()).len(),
            4
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["model.pth", "model.safetensors"]);
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Files for the Python side (tests/python/test_pth_structure.py)
// ---------------------------------------------------------------------------------------

/// Writes `target/interchange/seed123_with_buffer_from_rust.pth` (the reference weights, in
/// PyTorch's order) and `dtypes_from_rust.pth` (one tensor per supported dtype), which the
/// Python test reads the way `torch.load(weights_only=True)` does.
#[test]
fn writes_interchange_file() {
    let dir = root().join("target/interchange");
    std::fs::create_dir_all(&dir).unwrap();
    let st = load_safetensors(reference("seed123_with_buffer.safetensors"), &Device::Cpu).unwrap();
    let order = ["mask", "W_query.weight", "W_key.weight", "W_value.weight"];
    let sd: StateDict = order
        .iter()
        .map(|k| (k.to_string(), st.get(k).unwrap().clone()))
        .collect();
    let path = dir.join("seed123_with_buffer_from_rust.pth");
    save_pth(&sd, &path).unwrap();
    assert_eq!(keys(&load_pth(&path, &Device::Cpu).unwrap()), order);

    let mut dtypes = StateDict::new();
    for dtype in SUPPORTED {
        let values = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        dtypes.insert(
            format!("{dtype:?}").to_lowercase(),
            values.to_dtype(dtype).unwrap(),
        );
    }
    dtypes.insert("scalar", Tensor::new(2.5f32, &Device::Cpu).unwrap());
    dtypes.insert(
        "empty",
        Tensor::zeros((0, 4), DType::F32, &Device::Cpu).unwrap(),
    );
    let path = dir.join("dtypes_from_rust.pth");
    save_pth(&dtypes, &path).unwrap();
    assert_same_tensors(&load_pth(&path, &Device::Cpu).unwrap(), &dtypes);
}

// ---------------------------------------------------------------------------------------
// On a GPU machine (`--features cuda`)
// ---------------------------------------------------------------------------------------

/// Tensors load straight onto the GPU, whatever device the file was saved from, and GPU
/// tensors save to both formats.
#[cfg(feature = "cuda")]
#[test]
fn checkpoints_load_onto_the_gpu_and_save_from_it() {
    let gpu = Device::new_cuda(0).expect("a CUDA device: run this test on a GPU machine");
    let cpu = load_pth(reference("model_with_buffer_mask2.pth"), &Device::Cpu).unwrap();
    let loaded = [
        load_pth(reference("model_with_buffer_mask2.pth"), &gpu).unwrap(),
        load_safetensors(reference("seed123_with_buffer.safetensors"), &gpu).unwrap(),
        load_pth(fixture("dtypes.pth"), &gpu).unwrap(),
    ];
    for sd in &loaded {
        assert!(
            sd.iter().all(|(_, t)| t.device().is_cuda()),
            "{:?}",
            keys(sd)
        );
    }
    assert_eq!(keys(&loaded[0]), keys(&cpu));
    assert_same_tensors(&loaded[0], &cpu);
    let dir = scratch("gpu");
    for (i, sd) in loaded.iter().enumerate() {
        for name in [format!("{i}.pth"), format!("{i}.safetensors")] {
            checkpoint::save(sd, dir.join(&name)).unwrap();
            let back = checkpoint::load(dir.join(&name), &Device::Cpu).unwrap();
            assert_same_tensors(&back, sd);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
