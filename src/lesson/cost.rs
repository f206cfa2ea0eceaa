//! What a mask costs: time per forward pass for three ways of providing the causal mask,
//! and the memory a mask buffer takes as the context grows. Lesson 2 shows both.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::lesson::attention::{
    causal_mask, CausalAttentionWithBuffer, CausalAttentionWithoutBuffers,
};
use crate::nn::load::LoadMode;
use crate::nn::module::TorchModule;
use crate::notebook::language::Language;

/// How the forward pass gets its mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskStrategy {
    /// Registered buffer, already on the device: nothing to do per call.
    BufferOnDevice,
    /// `triu(ones(T, T), 1)` built again on the device on every call.
    RebuiltEveryCall,
    /// Kept on the CPU and copied to the device on every call.
    CopiedFromCpuEveryCall,
}

impl MaskStrategy {
    /// All three, in the order lessons show them.
    pub const ALL: [MaskStrategy; 3] = [
        MaskStrategy::BufferOnDevice,
        MaskStrategy::RebuiltEveryCall,
        MaskStrategy::CopiedFromCpuEveryCall,
    ];

    /// Its name for tables and charts, in the notebook's language.
    pub fn label(self) -> &'static str {
        self.label_in(Language::current())
    }

    /// Its name in `language`.
    pub fn label_in(self, language: Language) -> &'static str {
        match self {
            Self::BufferOnDevice => language.pick("buffer on the device", "设备上的缓冲区"),
            Self::RebuiltEveryCall => language.pick("rebuilt every call", "每次调用时重建"),
            Self::CopiedFromCpuEveryCall => {
                language.pick("copied from the CPU every call", "每次调用时从 CPU 复制")
            }
        }
    }
}

/// A forward pass of causal attention, ready to run again and again with the mask provided
/// as a [`MaskStrategy`] says. The two modules it uses hold the same weights, so every
/// strategy computes the same output.
///
/// ```
/// use candle_core::Device;
/// use understanding_buffers::lesson::cost::{MaskRun, MaskStrategy};
///
/// let mut run = MaskRun::new(1, 8, 4, &Device::Cpu)?;
/// let buffered = run.forward(MaskStrategy::BufferOnDevice)?;
/// let rebuilt = run.forward(MaskStrategy::RebuiltEveryCall)?;
/// assert_eq!(buffered.dims(), [1, 8, 4]);
/// assert_eq!(buffered.to_vec3::<f32>()?, rebuilt.to_vec3::<f32>()?);
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub struct MaskRun {
    x: Tensor,
    buffered: CausalAttentionWithBuffer,
    plain: CausalAttentionWithoutBuffers,
    cpu_mask: Tensor,
    tokens: usize,
}

impl MaskRun {
    /// Modules in evaluation mode (no dropout) of width `d` on `device`, and a random input
    /// of shape `(batch, tokens, d)`.
    pub fn new(batch: usize, tokens: usize, d: usize, device: &Device) -> Result<Self> {
        let x = Tensor::randn(0f32, 1.0, (batch, tokens, d), device)?;
        let mut buffered = CausalAttentionWithBuffer::new(d, d, tokens, 0.0, false)?;
        buffered.eval();
        buffered.to_device(device)?;
        let mut plain = CausalAttentionWithoutBuffers::new(d, d, tokens, 0.0, false)?;
        plain.eval();
        plain.to_device(device)?;
        // The same weights in both: only the mask's way differs ("mask" is not plain's).
        plain.load_state_dict(&buffered.state_dict(), LoadMode::NonStrict)?;
        Ok(Self {
            x,
            buffered,
            plain,
            cpu_mask: causal_mask(tokens)?,
            tokens,
        })
    }

    /// One forward pass, the mask provided as `strategy` says.
    pub fn forward(&mut self, strategy: MaskStrategy) -> Result<Tensor> {
        match strategy {
            MaskStrategy::BufferOnDevice => self.buffered.forward(&self.x),
            MaskStrategy::RebuiltEveryCall => {
                self.plain.mask = causal_mask_on(self.tokens, self.x.device())?;
                self.plain.forward(&self.x)
            }
            MaskStrategy::CopiedFromCpuEveryCall => {
                self.plain.mask = self.cpu_mask.to_device(self.x.device())?;
                self.plain.forward(&self.x)
            }
        }
    }
}

/// The median time of one forward pass, in milliseconds, for `strategy`, on a random
/// input of shape `(batch, tokens, d)` on `device`, over `repeats` (at least 1) timed calls
/// after two warm-up calls ([`MaskRun`]).
///
/// ```
/// use understanding_buffers::lesson::cost::{forward_time_ms, MaskStrategy};
/// let ms = forward_time_ms(MaskStrategy::BufferOnDevice, 1, 8, 4, 3, &candle_core::Device::Cpu)?;
/// assert!(ms > 0.0);
/// assert!(forward_time_ms(MaskStrategy::BufferOnDevice, 1, 8, 4, 0, &candle_core::Device::Cpu).is_err());
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn forward_time_ms(
    strategy: MaskStrategy,
    batch: usize,
    tokens: usize,
    d: usize,
    repeats: usize,
    device: &Device,
) -> Result<f64> {
    check_repeats("forward_time_ms", repeats)?;
    let mut run = MaskRun::new(batch, tokens, d, device)?;
    let mut times = Vec::with_capacity(repeats);
    for i in 0..repeats + 2 {
        let ms = time_call(&mut run, strategy)?;
        if i >= 2 {
            times.push(ms);
        }
    }
    Ok(median(times))
}

/// The median times of one forward pass, in milliseconds, for the three strategies of
/// [`MaskStrategy::ALL`], in that order, measured side by side on one [`MaskRun`]: two
/// warm-up rounds, then `repeats` (at least 1) rounds that each time every strategy once,
/// starting with a different one each round. Load from elsewhere on the machine then falls
/// on all three alike instead of on whichever strategy happened to run at that moment, so
/// the figures can be compared with each other.
///
/// ```
/// use understanding_buffers::lesson::cost::forward_times_ms;
/// let [buffer, rebuilt, copied] = forward_times_ms(1, 8, 4, 3, &candle_core::Device::Cpu)?;
/// assert!(buffer > 0.0 && rebuilt > 0.0 && copied > 0.0);
/// assert!(forward_times_ms(1, 8, 4, 0, &candle_core::Device::Cpu).is_err());
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn forward_times_ms(
    batch: usize,
    tokens: usize,
    d: usize,
    repeats: usize,
    device: &Device,
) -> Result<[f64; 3]> {
    check_repeats("forward_times_ms", repeats)?;
    let mut run = MaskRun::new(batch, tokens, d, device)?;
    let strategies = MaskStrategy::ALL;
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..repeats + 2 {
        for k in 0..strategies.len() {
            let which = (round + k) % strategies.len();
            let ms = time_call(&mut run, strategies[which])?;
            if round >= 2 {
                times[which].push(ms);
            }
        }
    }
    Ok(times.map(median))
}

fn check_repeats(function: &str, repeats: usize) -> Result<()> {
    if repeats == 0 {
        return Err(Error::Input(format!(
            "{function} needs at least one timed call (repeats >= 1)"
        )));
    }
    Ok(())
}

/// One forward pass, timed until its result is ready (GPU work is asynchronous).
fn time_call(run: &mut MaskRun, strategy: MaskStrategy) -> Result<f64> {
    let start = Instant::now();
    let out = run.forward(strategy)?;
    out.device().synchronize()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// The median of a non-empty list.
fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// `triu(ones(n, n), diagonal=1)` built directly on `device`, as PyTorch's
/// `torch.triu(torch.ones(n, n, device=device), diagonal=1)` would: the fair way to rebuild.
fn causal_mask_on(n: usize, device: &Device) -> Result<Tensor> {
    let index = Tensor::arange(0u32, n as u32, device)?;
    let above = index.unsqueeze(1)?.broadcast_lt(&index.unsqueeze(0)?)?;
    Ok(above.to_dtype(DType::F32)?)
}

/// Bytes a `(context_length × context_length)` mask buffer of `dtype` takes; `None` for a
/// mask that is never stored (computed inside a fused kernel).
///
/// ```
/// use candle_core::DType;
/// use understanding_buffers::lesson::cost::mask_bytes;
/// assert_eq!(mask_bytes(1024, Some(DType::F32)), 4 * 1024 * 1024);
/// assert_eq!(mask_bytes(1024, Some(DType::U8)), 1024 * 1024);
/// assert_eq!(mask_bytes(1024, None), 0);
/// ```
pub fn mask_bytes(context_length: usize, dtype: Option<DType>) -> usize {
    dtype.map_or(0, |dt| context_length * context_length * dt.size_in_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rebuilt_mask_is_the_causal_mask() {
        let rebuilt = causal_mask_on(5, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(rebuilt, causal_mask(5).unwrap().to_vec2::<f32>().unwrap());
    }
}
