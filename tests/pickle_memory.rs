//! Loading a `.pth` file holds memory in proportion to the file: a few kilobytes of crafted
//! pickle opcodes never make the loader hold more than a few megabytes, nor take long.
//!
//! Memory is measured with a counting allocator, which every test of a binary shares, so
//! this file holds one test.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use candle_core::Device;
use common::pickle::{f32_bytes, pth, Pkl};
use understanding_buffers::checkpoint::load_pth_bytes;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes held and their peak.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most memory `f` held at once beyond what was held before, in bytes.
fn peak_during(f: impl FnOnce()) -> usize {
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(before)
}

fn long_binput(pickle: Pkl, index: u32) -> Pkl {
    let mut op = vec![b'r'];
    op.extend(index.to_le_bytes());
    pickle.op(&op)
}

#[test]
fn crafted_pickles_hold_memory_in_proportion_to_the_file() {
    const LIMIT: usize = 24 << 20;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    // One 60 KB string named by 4 000 memo entries: each keeps a copy once it is popped.
    let mut names = Pkl::default().proto(2).str(&"x".repeat(60_000));
    for i in 0..4_000 {
        names = long_binput(names, i);
    }
    cases.push(("one value, many memo names", names.op(b"0N.").0));

    // A list that doubles by memo copies, 40 times.
    let mut doubling = Pkl::default().proto(2).op(b"]").put(0);
    for _ in 0..40 {
        doubling = doubling.op(b"(").get(0).get(0).op(b"l").op(b"q\x00");
    }
    cases.push(("a list doubling by memo copies", doubling.op(b".").0));

    // A 20 KB string appended 5 000 times to one list, by memo copies.
    let mut appended = Pkl::default()
        .proto(2)
        .str(&"y".repeat(20_000))
        .put(1)
        .op(b"0]");
    for _ in 0..5_000 {
        appended = appended.get(1).op(b"a");
    }
    cases.push(("a list of copies", appended.op(b".").0));

    for (what, pickle) in &cases {
        assert!(pickle.len() < 100_000, "{what}: {} bytes", pickle.len());
        let file = pth(pickle, &[]);
        let mut result = None;
        let peak = peak_during(|| result = Some(load_pth_bytes(&file, &Device::Cpu)));
        let err = result.unwrap().unwrap_err().to_string();
        assert!(
            err.contains("copies far more data than it holds") || err.contains("nest deeper"),
            "{what}: {err}"
        );
        assert!(
            peak < LIMIT,
            "{what}: a {} byte pickle made the loader hold {peak} bytes",
            pickle.len()
        );
    }

    hostile_files_hold_at_most_64_mib_and_twice_their_tensor_bytes();

    // 300 000 appends to one list (600 KB): linear time, as every check is O(1).
    let mut long = Pkl::default().proto(2).op(b"]");
    long.0
        .extend(std::iter::repeat_n(*b"Na", 300_000).flatten());
    let file = pth(&long.op(b".").0, &[]);
    let start = Instant::now();
    let err = load_pth_bytes(&file, &Device::Cpu).unwrap_err().to_string();
    assert!(
        err.contains("holds a list, not a state dict") || err.contains("builds more values"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "300 000 appends took {:?}",
        start.elapsed()
    );
}

/// A file in PyTorch's legacy format: the magic number, protocol 1001, `sys_info`, the
/// `object` pickle (persistent ids of 5 items, as `Pkl::tensor` writes), the storage keys
/// and, after each key's 8-byte count (taken from `data`'s length in f32), `data`.
fn legacy(object: &[u8], keys: &[&str], data: &[u8]) -> Vec<u8> {
    let mut file = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    file.extend(b"\x80\x02M\xe9\x03.");
    file.extend(
        Pkl::default()
            .proto(2)
            .op(b"}")
            .str("little_endian")
            .op(b"\x88s.")
            .0,
    );
    file.extend(object);
    let list = keys
        .iter()
        .fold(Pkl::default().proto(2).op(b"("), |p, k| p.str(k));
    file.extend(list.op(b"l.").0);
    for _ in keys {
        file.extend(((data.len() / 4) as u64).to_le_bytes());
        file.extend(data);
    }
    file
}

/// An archive of `data.pkl` (deflated, as zip tools other than torch write it) and the
/// stored `storages`.
fn compressed_pth(pickle: &[u8], storages: &[&[u8]]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", deflated).unwrap();
    std::io::Write::write_all(&mut zip, pickle).unwrap();
    for (i, data) in storages.iter().enumerate() {
        zip.start_file(format!("archive/data/{i}"), stored).unwrap();
        std::io::Write::write_all(&mut zip, data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Peak memory of any load, success or refusal: at most 64 MiB and twice the tensor bytes
/// the file really stores.
fn hostile_files_hold_at_most_64_mib_and_twice_their_tensor_bytes() {
    const FLOOR: usize = 64 << 20;
    let mut cases: Vec<(&str, Vec<u8>, usize, &str)> = Vec::new();

    // A compressed pickle of 16 million NONE opcodes, then of 16 million MARKs.
    for op in [b'N', b'('] {
        let mut pickle = vec![0x80, 2];
        pickle.extend(std::iter::repeat_n(op, 16_000_000));
        pickle.push(b'.');
        let file = compressed_pth(&pickle, &[]);
        assert!(file.len() < 40_000, "{} bytes", file.len());
        cases.push((
            "a compressed pickle of trivial opcodes",
            file,
            0,
            "builds more values",
        ));
    }

    // 2 000 keys, each a strided view (every other element) of one 1 MiB storage: copied
    // once per key, that is 1 GiB.
    let numel = 1u32 << 18;
    let storage: Vec<u8> = (0..numel).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let mut many = Pkl::default().proto(2).ordered_dict().op(b"(");
    for k in 0..2_000u32 {
        many = many.str(&format!("k{k}")).tensor(
            "FloatStorage",
            "0",
            numel,
            k,
            &[numel / 2 - 1_000],
            &[2],
        );
    }
    let file = pth(&many.op(b"u.").0, &[&storage]);
    cases.push((
        "many keys on one storage",
        file,
        storage.len(),
        "save each tensor with .contiguous() or .clone() first",
    ));

    // PyTorch's legacy format: an object pickle of 15 million NONEs, and a storage that
    // claims 4 GiB in a file of a few hundred bytes.
    let mut nones = vec![0x80, 2];
    nones.extend(std::iter::repeat_n(b'N', 15_000_000));
    nones.push(b'.');
    cases.push((
        "a legacy pickle of trivial opcodes",
        legacy(&nones, &[], &[]),
        0,
        "builds more values",
    ));
    let claims = Pkl::state_dict(|p| {
        p.str("w")
            .tensor("FloatStorage", "0", 1 << 30, 0, &[1 << 30], &[1])
    });
    let file = legacy(&claims, &["0"], &f32_bytes(&[1.0; 16]));
    cases.push((
        "a legacy storage that claims 4 GiB",
        file,
        64,
        "lies past the end of the file",
    ));

    for (what, file, tensor_bytes, refusal) in &cases {
        let mut result = None;
        let peak = peak_during(|| result = Some(load_pth_bytes(file, &Device::Cpu)));
        let outcome = match result.unwrap() {
            Ok(sd) => format!("loaded {} keys", sd.len()),
            Err(e) => e.to_string(),
        };
        let limit = FLOOR + 2 * tensor_bytes;
        assert!(
            peak <= limit,
            "{what}: a {} byte file made the loader hold {peak} bytes ({outcome})",
            file.len()
        );
        assert!(outcome.contains(refusal), "{what}: {outcome}");
    }
}
