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

/// A scratch directory for the lessons' own checkpoints (`<temp>/understanding-buffers`),
/// created if needed.
pub fn scratch_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join("understanding-buffers");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
