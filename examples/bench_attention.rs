//! Benchmarks of the lesson's causal-attention modules (issue 6, items 1 and 2).
//!
//! Prints, for the lesson's two modules and three input sizes, the median time of one forward
//! pass; with `--torch FILE` (written by `bench/attention_torch.py --json`) it adds the
//! candle/PyTorch ratio of each figure. Usually run through `scripts/bench-attention.sh`,
//! which runs the PyTorch side with the same thread count first.
//!
//! ```text
//! cargo run --release --example bench_attention -- [OPTIONS]
//!   --device cpu|cuda   where to run (cuda needs `--features cuda`)       [cpu]
//!   --runs N            timed calls per case (a quarter at 1024 tokens) [20]
//!   --warmup N          untimed calls first                                [3]
//!   --sizes LIST        comma list of indexes into SIZES, or `all`         [all]
//!   --sections LIST     forward,variants,breakdown,strategies,memory       [all]
//!   --torch FILE        PyTorch's figures, to print candle/PyTorch ratios
//!   --json FILE         write candle's figures as JSON
//! ```
//!
//! Sections:
//! - `forward`: `CausalAttentionWithoutBuffers` and `CausalAttentionWithBuffer` of the crate,
//!   in evaluation mode, exactly as the lessons run them.
//! - `variants`: prototypes of faster forward passes with the same weights, each checked
//!   against the crate's output (max |difference| printed), so that a change to
//!   `src/lesson/attention.rs` can be judged by its numbers before it is made.
//! - `breakdown`: each step of the crate's forward pass timed alone (projections, scores,
//!   mask, scale, softmax, weights @ values), with the alternatives the prototypes use.
//! - `strategies`: lesson 2's comparison through `understanding_buffers::lesson::cost` (mask as a
//!   buffer on the device, rebuilt every call, copied from the CPU every call).
//! - `memory`: bytes a mask buffer takes as the context grows (f32, u8, none).
//!
//! Threads: candle's CPU kernels use `RAYON_NUM_THREADS` threads (default: every core);
//! set it to the PyTorch side's `torch.set_num_threads` value to compare like with like.
//! Method: `--warmup` untimed calls, then `--runs` calls each timed alone with
//! `std::time::Instant` (on CUDA after `Device::synchronize`); the median is reported.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor, D};
use understanding_buffers::lesson::attention::{
    CausalAttentionWithBuffer, CausalAttentionWithoutBuffers,
};
use understanding_buffers::lesson::cost::{forward_time_ms, mask_bytes, MaskStrategy};
use understanding_buffers::nn::TorchModule;

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;
/// One timed case: a closure returning the forward pass's output.
type Case<'a> = Box<dyn Fn() -> candle_core::Result<Tensor> + 'a>;
/// One section of the benchmark: appends its JSON rows to the vector.
type Section = fn(&Options, &mut Vec<serde_json::Value>) -> BoxResult<()>;

/// (batch, tokens, d_in, d_out): the lesson's example, then two GPT-2-small-sized inputs.
const SIZES: [(usize, usize, usize, usize); 3] =
    [(2, 6, 3, 2), (8, 256, 768, 768), (8, 1024, 768, 768)];

struct Options {
    device: Device,
    device_name: String,
    runs: usize,
    warmup: usize,
    sizes: Vec<usize>,
    sections: Vec<String>,
    torch: Option<serde_json::Value>,
    json: Option<String>,
}

fn parse_args() -> BoxResult<Options> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        device: Device::Cpu,
        device_name: "cpu".into(),
        runs: 20,
        warmup: 3,
        sizes: vec![0, 1, 2],
        sections: ["forward", "variants", "breakdown", "strategies", "memory"]
            .map(String::from)
            .to_vec(),
        torch: None,
        json: None,
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--device" => {
                let d = value()?;
                o.device = match d.as_str() {
                    "cpu" => Device::Cpu,
                    "cuda" => Device::new_cuda(0).map_err(|e| {
                        format!("--device cuda: {e} (build with `--features cuda` on a machine with an NVIDIA GPU)")
                    })?,
                    other => return Err(format!("--device must be cpu or cuda, got {other}").into()),
                };
                o.device_name = d;
            }
            "--runs" => o.runs = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--sizes" => {
                let v = value()?;
                if v != "all" {
                    o.sizes = v
                        .split(',')
                        .map(|s| s.trim().parse())
                        .collect::<Result<_, _>>()?;
                    if let Some(bad) = o.sizes.iter().find(|&&i| i >= SIZES.len()) {
                        return Err(format!(
                            "--sizes: index {bad} out of range 0..{}",
                            SIZES.len()
                        )
                        .into());
                    }
                }
            }
            "--sections" => {
                o.sections = value()?.split(',').map(|s| s.trim().to_string()).collect()
            }
            "--torch" => {
                let path = value()?;
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("--torch {path}: {e}"))?;
                o.torch =
                    Some(serde_json::from_str(&text).map_err(|e| format!("--torch {path}: {e}"))?);
            }
            "--json" => o.json = Some(value()?),
            "-h" | "--help" => {
                println!("see the doc comment at the top of examples/bench_attention.rs");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other} (try --help)").into()),
        }
    }
    Ok(o)
}

#[derive(Clone, Copy)]
struct Stats {
    median_ms: f64,
    min_ms: f64,
    runs: usize,
}

fn time_calls<F: FnMut() -> candle_core::Result<Tensor>>(
    device: &Device,
    warmup: usize,
    runs: usize,
    mut f: F,
) -> candle_core::Result<Stats> {
    for _ in 0..warmup {
        f()?;
    }
    device.synchronize()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let y = f()?;
        device.synchronize()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(y);
    }
    times.sort_by(f64::total_cmp);
    Ok(Stats {
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        runs,
    })
}

fn runs_for(tokens: usize, runs: usize) -> usize {
    if tokens >= 1024 {
        (runs / 4).max(5)
    } else {
        runs
    }
}

/// PyTorch's median for a matching case in the `--torch` file, if any.
fn torch_median(
    torch: &Option<serde_json::Value>,
    section: &str,
    key: &str,
    name: &str,
    size: (usize, usize, usize),
) -> Option<f64> {
    let rows = torch.as_ref()?.get(section)?.as_array()?;
    rows.iter()
        .find(|r| {
            r.get(key).and_then(|v| v.as_str()) == Some(name)
                && r.get("batch").and_then(|v| v.as_u64()) == Some(size.0 as u64)
                && r.get("tokens").and_then(|v| v.as_u64()) == Some(size.1 as u64)
                && r.get("d_in").and_then(|v| v.as_u64()) == Some(size.2 as u64)
        })
        .and_then(|r| r.get("median_ms")?.as_f64())
}

fn ratio_text(candle: f64, torch: Option<f64>) -> String {
    match torch {
        Some(t) if t > 0.0 => format!("torch {t:10.4} ms  candle/torch {:6.3}", candle / t),
        _ => String::new(),
    }
}

// ------------------------------------------------------------------ forward-pass prototypes

/// The weights and masks every prototype reads, taken from the crate's buffered module.
struct Weights {
    w_query: Tensor,
    w_key: Tensor,
    w_value: Tensor,
    /// `[W_query; W_key; W_value]ᵀ`, `(d_in, 3·d_out)`, for one fused projection matmul.
    w_qkv_t: Tensor,
    mask_f32: Tensor,
    mask_u8: Tensor,
    /// 0 where visible, −∞ where hidden: added to the scores instead of `where_cond`.
    mask_additive: Tensor,
}

impl Weights {
    fn from_module(m: &CausalAttentionWithBuffer) -> BoxResult<Self> {
        let sd = m.state_dict();
        let get = |k: &str| {
            sd.get(k)
                .cloned()
                .ok_or_else(|| format!("state dict has no {k}"))
        };
        let (w_query, w_key, w_value, mask_f32) = (
            get("W_query.weight")?,
            get("W_key.weight")?,
            get("W_value.weight")?,
            get("mask")?,
        );
        let w_qkv_t = Tensor::cat(&[&w_query, &w_key, &w_value], 0)?
            .t()?
            .contiguous()?;
        let mask_u8 = mask_f32.ne(0f32)?;
        let t = mask_f32.dim(0)?;
        let minus_inf = Tensor::new(f32::NEG_INFINITY, mask_f32.device())?.broadcast_as((t, t))?;
        let mask_additive = mask_u8.where_cond(&minus_inf, &mask_f32.zeros_like()?)?;
        Ok(Self {
            w_query,
            w_key,
            w_value,
            w_qkv_t,
            mask_f32,
            mask_u8,
            mask_additive,
        })
    }
}

/// `x @ wᵀ` as candle-nn's `Linear` does it: one 2-D matmul over the flattened batch
/// (a broadcast batched matmul of the weight is slower on both CPU and CUDA).
fn linear_2d(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b * t, d))?.matmul(&w.t()?)?.reshape((b, t, ()))
}

fn square(m: &Tensor, t: usize) -> candle_core::Result<Tensor> {
    m.narrow(0, 0, t)?.narrow(1, 0, t)
}

/// A: projections as one 2-D matmul each; otherwise as the crate (f32 mask → `ne` → `where_cond`).
fn v_linear_2d(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    let (_, t, dk) = k.dims3()?;
    let scores = q.matmul(&k.t()?)?;
    let hidden = square(&w.mask_f32, t)?
        .ne(0f32)?
        .broadcast_as(scores.shape())?;
    let minus_inf = Tensor::new(f32::NEG_INFINITY, x.device())?.broadcast_as(scores.shape())?;
    let scores = hidden.where_cond(&minus_inf, &scores)?;
    candle_nn::ops::softmax_last_dim(&(scores / (dk as f64).sqrt())?)?.matmul(&v)
}

/// B: A + the mask kept as u8 (no `ne` per call).
fn v_u8_mask(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    let (_, t, dk) = k.dims3()?;
    let scores = q.matmul(&k.t()?)?;
    let hidden = square(&w.mask_u8, t)?.broadcast_as(scores.shape())?;
    let minus_inf = Tensor::new(f32::NEG_INFINITY, x.device())?.broadcast_as(scores.shape())?;
    let scores = hidden.where_cond(&minus_inf, &scores)?;
    candle_nn::ops::softmax_last_dim(&(scores / (dk as f64).sqrt())?)?.matmul(&v)
}

/// C: A + an additive 0/−∞ mask (`broadcast_add`) and the 1/√d_k scale folded into the queries.
fn v_additive(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    let (_, t, dk) = k.dims3()?;
    let scores = (q * (1.0 / (dk as f64).sqrt()))?.matmul(&k.t()?)?;
    let scores = scores.broadcast_add(&square(&w.mask_additive, t)?)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)
}

/// D: A + one fused masked softmax (scale, mask, softmax in one pass over the scores), reading
/// the crate's f32 mask buffer as it is (no `ne`, no copy).
fn v_fused_softmax(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    let (_, t, dk) = k.dims3()?;
    let scores = q.matmul(&k.t()?)?;
    let weights = scores.apply_op2_no_bwd(
        &square(&w.mask_f32, t)?,
        &MaskedSoftmax {
            scale: 1.0 / (dk as f32).sqrt(),
        },
    )?;
    weights.matmul(&v)
}

/// E: D + the three projections as one matmul with `[W_q; W_k; W_v]ᵀ`.
fn v_fused_qkv(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let d_out = w.w_query.dim(0)?;
    let qkv = x
        .reshape((b * t, d))?
        .matmul(&w.w_qkv_t)?
        .reshape((b, t, 3 * d_out))?;
    // The CPU matmul takes the strided views as they are; cuBLAS needs plain row strides.
    let view = |i: usize| -> candle_core::Result<Tensor> {
        let part = qkv.narrow(2, i * d_out, d_out)?;
        if part.device().is_cpu() {
            Ok(part)
        } else {
            part.contiguous()
        }
    };
    let (q, k, v) = (view(0)?, view(1)?, view(2)?);
    let scores = q.matmul(&k.t()?)?;
    let weights = scores.apply_op2_no_bwd(
        &square(&w.mask_u8, t)?,
        &MaskedSoftmax {
            scale: 1.0 / (d_out as f32).sqrt(),
        },
    )?;
    weights.matmul(&v)
}

/// F: one fused QKV matmul, the u8 mask through `where_cond`, candle's `softmax_last_dim`
/// (runs on every device).
fn v_qkv_u8(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let d_out = w.w_query.dim(0)?;
    let qkv = x
        .reshape((b * t, d))?
        .matmul(&w.w_qkv_t)?
        .reshape((b, t, 3 * d_out))?;
    let (q, k, v) = (
        qkv.narrow(2, 0, d_out)?,
        qkv.narrow(2, d_out, d_out)?,
        qkv.narrow(2, 2 * d_out, d_out)?,
    );
    // cuBLAS needs unit stride in the last dimension and candle a plain row stride: copy k, v.
    let scores = (q * (1.0 / (d_out as f64).sqrt()))?.matmul(&k.contiguous()?.t()?)?;
    let hidden = square(&w.mask_u8, t)?.broadcast_as(scores.shape())?;
    let minus_inf = Tensor::new(f32::NEG_INFINITY, x.device())?.broadcast_as(scores.shape())?;
    candle_nn::ops::softmax_last_dim(&hidden.where_cond(&minus_inf, &scores)?)?
        .matmul(&v.contiguous()?)
}

/// G: B with the 1/√d_k scale folded into the queries: one pass over `b·t·d` elements instead
/// of `b·t·t` (runs on every device).
fn v_u8_fold_scale(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    let (_, t, dk) = k.dims3()?;
    let scores = (q * (1.0 / (dk as f64).sqrt()))?.matmul(&k.t()?)?;
    let hidden = square(&w.mask_u8, t)?.broadcast_as(scores.shape())?;
    let minus_inf = Tensor::new(f32::NEG_INFINITY, x.device())?.broadcast_as(scores.shape())?;
    candle_nn::ops::softmax_last_dim(&hidden.where_cond(&minus_inf, &scores)?)?.matmul(&v)
}

/// Scores `(b, t, t)` plus the additive mask `(t, t)`, added as `(b, t·t) + (1, t·t)`: a
/// two-dimension broadcast (candle's strided kernels do a division per dimension and element).
fn add_mask_flat(scores: &Tensor, mask_additive: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t, _) = scores.dims3()?;
    let mask = square(mask_additive, t)?
        .contiguous()?
        .reshape((1, t * t))?;
    scores
        .reshape((b, t * t))?
        .broadcast_add(&mask)?
        .reshape((b, t, t))
}

/// H: one fused QKV matmul, scale folded into q, additive mask as a 2-D broadcast,
/// `softmax_last_dim` (runs on every device).
fn v_qkv_flat_additive(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let d_out = w.w_query.dim(0)?;
    let qkv = x
        .reshape((b * t, d))?
        .matmul(&w.w_qkv_t)?
        .reshape((b, t, 3 * d_out))?;
    let q = (qkv.narrow(2, 0, d_out)? * (1.0 / (d_out as f64).sqrt()))?;
    let k = qkv.narrow(2, d_out, d_out)?.contiguous()?;
    let v = qkv.narrow(2, 2 * d_out, d_out)?.contiguous()?;
    let scores = add_mask_flat(&q.matmul(&k.t()?)?, &w.mask_additive)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)
}

/// I: H with three 2-D projection matmuls instead of the fused one (runs on every device).
fn v_flat_additive(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    let dk = k.dim(D::Minus1)? as f64;
    let scores = add_mask_flat(&(q * (1.0 / dk.sqrt()))?.matmul(&k.t()?)?, &w.mask_additive)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)
}

/// The floor: the five matmuls alone, no mask, no softmax (not a correct attention).
fn v_matmuls_only(w: &Weights, x: &Tensor) -> candle_core::Result<Tensor> {
    let (q, k, v) = (
        linear_2d(x, &w.w_query)?,
        linear_2d(x, &w.w_key)?,
        linear_2d(x, &w.w_value)?,
    );
    q.matmul(&k.t()?)?.matmul(&v)
}

/// `softmax(scores · scale)` over the last dimension with every position where `mask != 0`
/// hidden (weight 0), in one pass: PyTorch's `masked_fill_(-inf)`, `/ √d_k` and `softmax`
/// fused. Rows split over `candle_core::utils::get_num_threads()` scoped threads.
struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let scores = match (s1, l1.contiguous_offsets()) {
            (CpuStorage::F32(s), Some((a, b))) => &s[a..b],
            _ => candle_core::bail!("masked-softmax: scores must be contiguous f32"),
        };
        let dims = l1.dims();
        let (rows, t) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        if l2.dims() != [rows, t] {
            candle_core::bail!(
                "masked-softmax: mask {:?} does not match scores {:?}",
                l2.dims(),
                dims
            );
        }
        let (rs, cs, off) = (l2.stride()[0], l2.stride()[1], l2.start_offset());
        let hidden: Vec<bool> = match s2 {
            CpuStorage::U8(m) => (0..rows * t)
                .map(|i| m[off + (i / t) * rs + (i % t) * cs] != 0)
                .collect(),
            CpuStorage::F32(m) => (0..rows * t)
                .map(|i| m[off + (i / t) * rs + (i % t) * cs] != 0.0)
                .collect(),
            _ => candle_core::bail!("masked-softmax: mask must be u8 or f32"),
        };
        let mut out = vec![0f32; scores.len()];
        let scale = self.scale;
        let row = |r: usize, src: &[f32], dst: &mut [f32]| {
            let h = &hidden[(r % rows) * t..(r % rows + 1) * t];
            let mut max = f32::NEG_INFINITY;
            for j in 0..t {
                if !h[j] {
                    max = max.max(src[j] * scale);
                }
            }
            let mut sum = 0f32;
            for j in 0..t {
                let e = if h[j] {
                    0.0
                } else {
                    (src[j] * scale - max).exp()
                };
                dst[j] = e;
                sum += e;
            }
            let inv = 1.0 / sum; // all hidden: 0/0 = NaN, as PyTorch's softmax of all −∞
            dst.iter_mut().for_each(|e| *e *= inv);
        };
        let n_rows = scores.len() / t.max(1);
        let threads = candle_core::utils::get_num_threads().clamp(1, n_rows.max(1));
        if threads == 1 || scores.len() < 32 * 1024 {
            for (r, (src, dst)) in scores.chunks(t).zip(out.chunks_mut(t)).enumerate() {
                row(r, src, dst);
            }
        } else {
            let per = n_rows.div_ceil(threads);
            std::thread::scope(|s| {
                for (c, (src, dst)) in scores
                    .chunks(per * t)
                    .zip(out.chunks_mut(per * t))
                    .enumerate()
                {
                    let row = &row;
                    s.spawn(move || {
                        for (i, (src, dst)) in src.chunks(t).zip(dst.chunks_mut(t)).enumerate() {
                            row(c * per + i, src, dst);
                        }
                    });
                }
            });
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// One thread block per row of scores: max and sum by block reductions, one pass to write.
    /// The kernel is compiled at run time with NVRTC (cudarc, which candle re-exports).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;
        let dev = s1.device().clone();
        let (o1, o2) = l1.contiguous_offsets().ok_or_else(|| {
            candle_core::Error::Msg("masked-softmax: scores must be contiguous".into())
        })?;
        let dims = l1.dims();
        let (rows, t) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        if l2.dims() != [rows, t] || l2.stride()[1] != 1 {
            candle_core::bail!(
                "masked-softmax: mask {:?} (strides {:?}) does not fit scores {:?}",
                l2.dims(),
                l2.stride(),
                dims
            );
        }
        let scores = s1.as_cuda_slice::<f32>()?.slice(o1..o2);
        let n = o2 - o1;
        let all_rows = n / t;
        let ptx = cuda_ptx()?;
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<f32>(n)? };
        let cfg = LaunchConfig {
            grid_dim: (all_rows as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let (rows_i, t_i, mask_rs, scale) =
            (rows as i32, t as i32, l2.stride()[0] as i32, self.scale);
        let start = l2.start_offset();
        let (name, mask_u8, mask_f32) = match s2.dtype() {
            DType::U8 => (
                "ub_masked_softmax_u8",
                Some(s2.as_cuda_slice::<u8>()?.slice(start..)),
                None,
            ),
            DType::F32 => (
                "ub_masked_softmax_f32",
                None,
                Some(s2.as_cuda_slice::<f32>()?.slice(start..)),
            ),
            other => candle_core::bail!("masked-softmax: mask must be u8 or f32, got {other:?}"),
        };
        let func = dev.get_or_load_custom_func(name, "ub_masked_softmax", &ptx)?;
        let mut b = func.builder();
        b.arg(&scores);
        if let Some(m) = &mask_u8 {
            b.arg(m);
        }
        if let Some(m) = &mask_f32 {
            b.arg(m);
        }
        b.arg(&out);
        b.arg(&rows_i);
        b.arg(&t_i);
        b.arg(&mask_rs);
        b.arg(&scale);
        // SAFETY: the arguments match the kernel's signature; sizes were checked above.
        unsafe { b.launch(cfg) }.w()?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            l1.shape().clone(),
        ))
    }
}

#[cfg(feature = "cuda")]
const MASKED_SOFTMAX_CU: &str = r#"
// MASK_T: the mask's dtype (the buffer is f32 like PyTorch's; a u8 copy works too).
#define MASKED_SOFTMAX(NAME, MASK_T)                                                             \
extern "C" __global__ void NAME(const float* scores, const MASK_T* mask, float* out,             \
                                int rows, int cols, int mask_rs, float scale) {                  \
    __shared__ float red[32];                                                                    \
    const float NEG_INF = __int_as_float(0xff800000);                                            \
    const int row = blockIdx.x;                                                                  \
    const float* s = scores + (size_t)row * cols;                                                \
    const MASK_T* m = mask + (size_t)(row % rows) * mask_rs;                                     \
    float* o = out + (size_t)row * cols;                                                         \
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;        \
    float mx = NEG_INF;                                                                          \
    for (int j = threadIdx.x; j < cols; j += blockDim.x)                                         \
        if (m[j] == (MASK_T)0) mx = fmaxf(mx, s[j] * scale);                                     \
    for (int k = 16; k > 0; k /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, k));          \
    if (lane == 0) red[warp] = mx;                                                               \
    __syncthreads();                                                                             \
    mx = lane < nwarps ? red[lane] : NEG_INF;                                                    \
    for (int k = 16; k > 0; k /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, k));          \
    __syncthreads();                                                                             \
    float sum = 0.f;                                                                             \
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {                                       \
        float e = m[j] == (MASK_T)0 ? expf(s[j] * scale - mx) : 0.f;                             \
        o[j] = e;                                                                                \
        sum += e;                                                                                \
    }                                                                                            \
    for (int k = 16; k > 0; k /= 2) sum += __shfl_xor_sync(0xffffffff, sum, k);                  \
    if (lane == 0) red[warp] = sum;                                                              \
    __syncthreads();                                                                             \
    sum = lane < nwarps ? red[lane] : 0.f;                                                       \
    for (int k = 16; k > 0; k /= 2) sum += __shfl_xor_sync(0xffffffff, sum, k);                  \
    const float inv = 1.f / sum; /* every key hidden: 0 * inf = NaN, as PyTorch */               \
    for (int j = threadIdx.x; j < cols; j += blockDim.x) o[j] *= inv;                            \
}
MASKED_SOFTMAX(ub_masked_softmax_u8, unsigned char)
MASKED_SOFTMAX(ub_masked_softmax_f32, float)
"#;

/// The masked-softmax kernel as PTX, compiled once per process with NVRTC.
#[cfg(feature = "cuda")]
fn cuda_ptx() -> candle_core::Result<String> {
    static PTX: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(MASKED_SOFTMAX_CU)
            .map(|p| p.to_src())
            .map_err(|e| format!("NVRTC could not compile the masked-softmax kernel: {e:?}"))
    })
    .clone()
    .map_err(candle_core::Error::Msg)
}

// ------------------------------------------------------------------ sections

fn section_forward(o: &Options, out: &mut Vec<serde_json::Value>) -> BoxResult<()> {
    println!(
        "\n## forward pass of the crate's modules (evaluation mode), f32, {}",
        o.device_name
    );
    for &i in &o.sizes {
        let (b, t, d_in, d_out) = SIZES[i];
        let x = Tensor::rand(0f32, 1f32, (b, t, d_in), &o.device)?;
        let runs = runs_for(t, o.runs);
        let mut without = CausalAttentionWithoutBuffers::new(d_in, d_out, t, 0.0, false)?;
        without.eval();
        without.to_device(&o.device)?;
        without.mask = without.mask.to_device(&o.device)?; // lesson 1's fix by hand
        let mut with = CausalAttentionWithBuffer::new(d_in, d_out, t, 0.0, false)?;
        with.eval();
        with.to_device(&o.device)?;
        let cases: [(&str, Case); 2] = [
            (
                "without_buffer",
                Box::new(|| without.forward(&x).map_err(candle_core::Error::wrap)),
            ),
            (
                "with_buffer",
                Box::new(|| with.forward(&x).map_err(candle_core::Error::wrap)),
            ),
        ];
        for (name, f) in cases {
            let s = time_calls(&o.device, o.warmup, runs, f)?;
            let torch = torch_median(&o.torch, "forward", "module", name, (b, t, d_in));
            println!(
                "candle {:4} {name:15} ({b},{t},{d_in})->{d_out:<4} median {:10.4} ms  min {:10.4} ms  {}",
                o.device_name, s.median_ms, s.min_ms, ratio_text(s.median_ms, torch)
            );
            out.push(serde_json::json!({"section": "forward", "module": name, "batch": b, "tokens": t, "d_in": d_in, "d_out": d_out,
                "median_ms": s.median_ms, "min_ms": s.min_ms, "runs": s.runs, "torch_median_ms": torch}));
        }
    }
    Ok(())
}

fn section_variants(o: &Options, out: &mut Vec<serde_json::Value>) -> BoxResult<()> {
    println!(
        "\n## forward-pass prototypes with the same weights, f32, {}",
        o.device_name
    );
    type Variant = fn(&Weights, &Tensor) -> candle_core::Result<Tensor>;
    // The fused op has CPU and CUDA kernels (no Metal one).
    let cpu_only: [&str; 0] = [];
    let variants: [(&str, Variant); 10] = [
        ("A_linear_2d", v_linear_2d),
        ("B_A_plus_u8_mask", v_u8_mask),
        ("C_A_plus_additive_mask", v_additive),
        ("D_fused_masked_softmax", v_fused_softmax),
        ("E_D_plus_fused_qkv", v_fused_qkv),
        ("F_qkv_u8_fold_scale", v_qkv_u8),
        ("G_B_plus_fold_scale", v_u8_fold_scale),
        ("H_qkv_scale_flat_additive", v_qkv_flat_additive),
        ("I_H_without_fused_qkv", v_flat_additive),
        ("matmuls_only_floor", v_matmuls_only),
    ];
    for &i in &o.sizes {
        let (b, t, d_in, d_out) = SIZES[i];
        let x = Tensor::rand(0f32, 1f32, (b, t, d_in), &o.device)?;
        let runs = runs_for(t, o.runs);
        let mut module = CausalAttentionWithBuffer::new(d_in, d_out, t, 0.0, false)?;
        module.eval();
        module.to_device(&o.device)?;
        let w = Weights::from_module(&module)?;
        let reference = module.forward(&x)?;
        let s = time_calls(&o.device, o.warmup, runs, || {
            module.forward(&x).map_err(candle_core::Error::wrap)
        })?;
        let base = s.median_ms;
        println!(
            "candle {:4} {:24} ({b},{t},{d_in}) median {:10.4} ms  min {:10.4} ms",
            o.device_name, "crate_with_buffer", s.median_ms, s.min_ms
        );
        for (name, f) in variants {
            if !o.device.is_cpu() && cpu_only.contains(&name) {
                println!(
                    "candle {:4} {name:24} ({b},{t},{d_in}) skipped on this device",
                    o.device_name
                );
                continue;
            }
            let y = f(&w, &x)?;
            let diff = if name.starts_with("matmuls_only") {
                f32::NAN
            } else {
                (y - &reference)?
                    .abs()?
                    .flatten_all()?
                    .max(0)?
                    .to_scalar::<f32>()?
            };
            let s = time_calls(&o.device, o.warmup, runs, || f(&w, &x))?;
            println!(
                "candle {:4} {name:24} ({b},{t},{d_in}) median {:10.4} ms  min {:10.4} ms  vs crate {:6.3}  max|diff| {diff:.1e}",
                o.device_name, s.median_ms, s.min_ms, s.median_ms / base
            );
            out.push(serde_json::json!({"section": "variants", "variant": name, "batch": b, "tokens": t, "d_in": d_in, "d_out": d_out,
                "median_ms": s.median_ms, "min_ms": s.min_ms, "runs": s.runs, "crate_median_ms": base,
                "max_abs_diff": if diff.is_nan() { None } else { Some(diff) }}));
        }
    }
    Ok(())
}

/// Each step of the crate's forward pass (with a buffer) timed alone, to see where time goes.
fn section_breakdown(o: &Options, out: &mut Vec<serde_json::Value>) -> BoxResult<()> {
    println!(
        "\n## where the time goes: each step of the crate's forward pass alone, f32, {}",
        o.device_name
    );
    for &i in &o.sizes {
        let (b, t, d_in, d_out) = SIZES[i];
        let dev = &o.device;
        let x = Tensor::rand(0f32, 1f32, (b, t, d_in), dev)?;
        let runs = runs_for(t, o.runs);
        let mut module = CausalAttentionWithBuffer::new(d_in, d_out, t, 0.0, false)?;
        module.to_device(dev)?;
        let w = Weights::from_module(&module)?;
        let bcast =
            |w: &Tensor| -> candle_core::Result<Tensor> { x.matmul(&w.broadcast_left(b)?.t()?) };
        let q = bcast(&w.w_query)?;
        let k = bcast(&w.w_key)?;
        let v = bcast(&w.w_value)?;
        let scores = q.matmul(&k.t()?)?;
        let hidden = square(&w.mask_f32, t)?.ne(0f32)?;
        let minus_inf = Tensor::new(f32::NEG_INFINITY, dev)?.broadcast_as(scores.shape())?;
        let masked = hidden
            .broadcast_as(scores.shape())?
            .where_cond(&minus_inf, &scores)?;
        let scaled = (&masked / (d_out as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&scaled)?;
        let steps: Vec<(&str, Case)> = vec![
            (
                "3 projections (broadcast matmul, as the crate)",
                Box::new(|| {
                    bcast(&w.w_query)?;
                    bcast(&w.w_key)?;
                    bcast(&w.w_value)
                }),
            ),
            (
                "3 projections (2-D matmul)",
                Box::new(|| {
                    linear_2d(&x, &w.w_query)?;
                    linear_2d(&x, &w.w_key)?;
                    linear_2d(&x, &w.w_value)
                }),
            ),
            (
                "1 fused QKV projection",
                Box::new(|| x.reshape((b * t, d_in))?.matmul(&w.w_qkv_t)),
            ),
            ("scores = q @ k^T", Box::new(|| q.matmul(&k.t()?))),
            (
                "mask[:t,:t].ne(0) (f32 -> u8)",
                Box::new(|| square(&w.mask_f32, t)?.ne(0f32)),
            ),
            (
                "where_cond(-inf) on broadcast mask",
                Box::new(|| {
                    hidden
                        .broadcast_as(scores.shape())?
                        .where_cond(&minus_inf, &scores)
                }),
            ),
            (
                "broadcast_add of additive mask",
                Box::new(|| scores.broadcast_add(&square(&w.mask_additive, t)?)),
            ),
            (
                "same, as (b, t*t) + (1, t*t)",
                Box::new(|| add_mask_flat(&scores, &w.mask_additive)),
            ),
            ("/ sqrt(d_k)", Box::new(|| &masked / (d_out as f64).sqrt())),
            (
                "softmax_last_dim",
                Box::new(|| candle_nn::ops::softmax_last_dim(&scaled)),
            ),
            (
                "softmax (generic, 4 ops)",
                Box::new(|| candle_nn::ops::softmax(&scaled, D::Minus1)),
            ),
            ("weights @ v", Box::new(|| weights.matmul(&v))),
        ];
        for (name, f) in steps {
            let s = time_calls(dev, o.warmup, runs, f)?;
            println!(
                "candle {:4} ({b},{t},{d_in}) {name:48} median {:10.4} ms",
                o.device_name, s.median_ms
            );
            out.push(serde_json::json!({"section": "breakdown", "step": name, "batch": b, "tokens": t, "d_in": d_in, "d_out": d_out,
                "median_ms": s.median_ms, "min_ms": s.min_ms, "runs": s.runs}));
        }
    }
    Ok(())
}

fn strategy_name(s: MaskStrategy) -> &'static str {
    match s {
        MaskStrategy::BufferOnDevice => "buffer",
        MaskStrategy::RebuiltEveryCall => "rebuilt",
        MaskStrategy::CopiedFromCpuEveryCall => "copied",
    }
}

fn section_strategies(o: &Options, out: &mut Vec<serde_json::Value>) -> BoxResult<()> {
    println!("\n## why a buffer: how the forward pass gets its mask (understanding_buffers::lesson::cost), f32, {}", o.device_name);
    for &i in &o.sizes {
        let (b, t, d, _) = SIZES[i];
        for s in MaskStrategy::ALL {
            let name = strategy_name(s);
            let ms = forward_time_ms(s, b, t, d, runs_for(t, o.runs), &o.device)?;
            let torch = torch_median(&o.torch, "mask_strategies", "strategy", name, (b, t, d));
            println!(
                "candle {:4} mask {name:8} ({b},{t},{d})->{d:<4} median {ms:10.4} ms  {}",
                o.device_name,
                ratio_text(ms, torch)
            );
            out.push(serde_json::json!({"section": "strategies", "strategy": name, "batch": b, "tokens": t, "d_in": d, "d_out": d,
                "median_ms": ms, "torch_median_ms": torch}));
        }
    }
    Ok(())
}

fn section_memory(o: &Options, out: &mut Vec<serde_json::Value>) -> BoxResult<()> {
    println!("\n## memory of one mask buffer (context_length × context_length)");
    println!(
        "{:>8} {:>14} {:>14} {:>6}",
        "context", "f32 bytes", "u8 bytes", "none"
    );
    for ctx in [256usize, 1024, 4096, 16384] {
        // Measure the real tensors for the smaller sizes; the formula is what cost::mask_bytes states.
        let f32_bytes = mask_bytes(ctx, Some(DType::F32));
        let u8_bytes = mask_bytes(ctx, Some(DType::U8));
        if ctx <= 4096 {
            let m =
                understanding_buffers::lesson::attention::causal_mask(ctx)?.to_device(&o.device)?;
            let measured = m.elem_count() * m.dtype().size_in_bytes();
            let measured_u8 = m.ne(0f32)?.elem_count() * DType::U8.size_in_bytes();
            if measured != f32_bytes || measured_u8 != u8_bytes {
                return Err(format!("mask_bytes disagrees with a real mask at {ctx}").into());
            }
        }
        println!(
            "{ctx:>8} {f32_bytes:>14} {u8_bytes:>14} {:>6}",
            mask_bytes(ctx, None)
        );
        out.push(serde_json::json!({"section": "memory", "context_length": ctx, "f32_bytes": f32_bytes, "u8_bytes": u8_bytes, "none_bytes": 0}));
    }
    Ok(())
}

fn main() -> BoxResult<()> {
    let o = parse_args()?;
    println!(
        "bench_attention: device {}, candle threads {}, runs {} (a quarter at 1024 tokens), warm-up {}",
        o.device_name,
        candle_core::utils::get_num_threads(),
        o.runs,
        o.warmup
    );
    if let Some(t) = &o.torch {
        println!(
            "PyTorch figures: torch {} on {} with {} threads",
            t.get("torch").and_then(|v| v.as_str()).unwrap_or("?"),
            t.get("device").and_then(|v| v.as_str()).unwrap_or("?"),
            t.get("threads").and_then(|v| v.as_u64()).unwrap_or(0)
        );
    }
    let mut out = Vec::new();
    let sections: HashMap<&str, Section> = HashMap::from([
        ("forward", section_forward as Section),
        ("variants", section_variants),
        ("breakdown", section_breakdown),
        ("strategies", section_strategies),
        ("memory", section_memory),
    ]);
    for name in &o.sections {
        let f = sections.get(name.as_str()).ok_or_else(|| {
            format!("unknown section {name} (forward, variants, breakdown, strategies, memory)")
        })?;
        f(&o, &mut out)?;
    }
    if let Some(path) = &o.json {
        let doc = serde_json::json!({"device": o.device_name, "threads": candle_core::utils::get_num_threads(), "results": out});
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
    }
    Ok(())
}
