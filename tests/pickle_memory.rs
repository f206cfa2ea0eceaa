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
use common::pickle::{pth, Pkl};
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

    // 300 000 appends to one list (600 KB): linear time, as every check is O(1).
    let mut long = Pkl::default().proto(2).op(b"]");
    long.0
        .extend(std::iter::repeat_n(*b"Na", 300_000).flatten());
    let file = pth(&long.op(b".").0, &[]);
    let start = Instant::now();
    let err = load_pth_bytes(&file, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("holds a list, not a state dict"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "300 000 appends took {:?}",
        start.elapsed()
    );
}
