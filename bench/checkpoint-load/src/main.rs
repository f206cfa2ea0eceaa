//! `checkpoint-load-bench <ours|candle> <file>`: loads `file` once and prints one line,
//! `<seconds> <peak bytes above the baseline> <tensors>`, the peak read from the kernel
//! (`VmHWM` against `VmRSS` before the load), so that every allocation counts.

use std::time::Instant;

use candle_core::Device;

/// A line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, loader, path] = args.as_slice() else {
        eprintln!("usage: checkpoint-load-bench <ours|candle> <file>");
        std::process::exit(2);
    };
    // Resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline = status_bytes("VmRSS:");
    let start = Instant::now();
    let tensors = match loader.as_str() {
        "ours" => understanding_buffers::checkpoint::load(path, &Device::Cpu)
            .map(|sd| sd.len())
            .map_err(|e| e.to_string()),
        "candle" => candle_core::pickle::read_all(path)
            .map(|all| all.len())
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown loader {other}")),
    };
    let seconds = start.elapsed().as_secs_f64();
    let peak = status_bytes("VmHWM:").saturating_sub(baseline);
    match tensors {
        Ok(n) => println!("{seconds:.4} {peak} {n}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
