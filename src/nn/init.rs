//! Reproducible random tensors. Candle cannot seed its CPU generator, so lessons that need
//! "random" values draw them here, from a seed, identically on every machine.

use candle_core::{Device, Shape, Tensor};

use crate::error::Result;

/// SplitMix64: a tiny, well-known generator with a fixed output for each seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An f32 tensor of standard-normal values drawn from `seed` (Box–Muller over SplitMix64).
///
/// ```
/// use candle_core::Device;
/// let a = understanding_buffers::nn::init::seeded_normal((2, 3), 123, &Device::Cpu)?;
/// let b = understanding_buffers::nn::init::seeded_normal((2, 3), 123, &Device::Cpu)?;
/// assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn seeded_normal<S: Into<Shape>>(shape: S, seed: u64, device: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let mut rng = SplitMix64(seed);
    let n = shape.elem_count();
    let mut values = Vec::with_capacity(n);
    while values.len() < n {
        let u1 = 1.0 - rng.next_f64(); // in (0, 1]: ln is finite
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        values.push((r * theta.cos()) as f32);
        if values.len() < n {
            values.push((r * theta.sin()) as f32);
        }
    }
    Ok(Tensor::from_vec(values, shape, device)?)
}
