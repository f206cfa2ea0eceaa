//! The lesson's data: its example sentence, and where the checkpoints PyTorch wrote are
//! (`data/reference/`).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::Result;

/// The six-token example of the lesson, "Your journey starts with one step", as 3-d
/// embeddings, stacked twice into a batch of shape `(2, 6, 3)` on `device`.
///
/// ```
/// let batch = understanding_buffers::lesson::data::example_batch(&candle_core::Device::Cpu)?;
/// assert_eq!(batch.dims(), &[2, 6, 3]);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn example_batch(device: &Device) -> Result<Tensor> {
    let inputs = Tensor::new(
        &[
            [0.43f32, 0.15, 0.89], // Your     (x^1)
            [0.55, 0.87, 0.66],    // journey  (x^2)
            [0.57, 0.85, 0.64],    // starts   (x^3)
            [0.22, 0.58, 0.33],    // with     (x^4)
            [0.77, 0.25, 0.10],    // one      (x^5)
            [0.05, 0.80, 0.55],    // step     (x^6)
        ],
        device,
    )?;
    Ok(Tensor::stack(&[&inputs, &inputs], 0)?)
}

fn candidates(name: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // At run time first: a program carried to another machine (e.g. a GPU box) runs with
    // CARGO_MANIFEST_DIR pointing at the copied checkout.
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    dirs.into_iter()
        .map(|d| d.join("data").join("reference").join(name))
        .collect()
}

/// The path of a reference checkpoint, e.g. `reference_file("seed123_with_buffer.pth")`.
///
/// Looks in `$CARGO_MANIFEST_DIR/data/reference`, then in this crate's source directory,
/// then in `data/reference` of the current directory and its parents. A name found nowhere
/// gives the path in the crate's directory, so that loading it reports a clear
/// "file not found" error naming the path.
///
/// ```
/// let path = understanding_buffers::lesson::data::reference_file("seed123_with_buffer.safetensors");
/// assert!(path.exists());
/// ```
pub fn reference_file(name: &str) -> PathBuf {
    let all = candidates(name);
    all.iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("data/reference")
                .join(name)
        })
}

/// The environment variable that remembers this process's scratch directory: every
/// notebook cell is a separate library with statics of its own, but they share the
/// process's environment.
const SCRATCH_VARIABLE: &str = "UB_SCRATCH_DIR";
/// What scratch directories are named: `<prefix><process id>-<nonce>`.
const SCRATCH_PREFIX: &str = "understanding-buffers-";

/// A scratch directory for the lessons' own checkpoints, private to this process: each
/// kernel (and so each user) gets its own, so that two never read each other's files or
/// trip over each other's permissions. It is created on first use, readable by its owner
/// only, under the system's temporary folder (`<temp>/understanding-buffers-<pid>-<n>`);
/// later calls in the same process return the same folder. Folders left by processes that
/// have ended are removed when a new one is made (on Linux, where that can be checked).
///
/// ```
/// let a = understanding_buffers::lesson::data::scratch_dir()?;
/// assert_eq!(a, understanding_buffers::lesson::data::scratch_dir()?);
/// assert!(a.is_dir());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn scratch_dir() -> std::io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(SCRATCH_VARIABLE).map(PathBuf::from) {
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    let temp = std::env::temp_dir();
    remove_abandoned_scratch_dirs(&temp);
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last_error = None;
    for attempt in 0..100u32 {
        let dir = temp.join(format!(
            "{SCRATCH_PREFIX}{pid}-{}",
            nanos.wrapping_add(attempt)
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => {
                // Set before any other thread of ours reads the environment.
                std::env::set_var(SCRATCH_VARIABLE, &dir);
                return Ok(dir);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(err),
            Err(err) => {
                return Err(std::io::Error::new(
                    err.kind(),
                    format!(
                        "cannot create a scratch folder in {}: {err}; set TMPDIR to a folder you can write to",
                        temp.display()
                    ),
                ))
            }
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free scratch folder name")))
}

/// Removes the scratch folders of processes that no longer run (Linux: `/proc/<pid>` is
/// gone). Folders of other users cannot be removed and are left alone, as are any that
/// cannot be told apart from a running process's.
fn remove_abandoned_scratch_dirs(temp: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
