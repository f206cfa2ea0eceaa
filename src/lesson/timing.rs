//! Lesson 2's timing step: is keeping the causal mask as a buffer on the device faster than
//! building it again in every forward pass, or keeping it on the CPU and copying it over on
//! every call? [`compare_mask_strategies`] measures the three ways of
//! [`MaskStrategy::ALL`] side by side and returns a [`MaskTimings`], whose table and
//! conclusion say only what the figures support.
//!
//! **The rule.** A timing varies from call to call, more so on a busy machine. So every way
//! is timed once per round, over several rounds (the order rotating each round, so that a
//! busy moment falls on all three alike), and a way is called slower (or faster) than the
//! buffer only when the ranges of their rounds do not overlap: every round of the one was
//! slower than every round of the other. Any difference smaller than that is "no measurable
//! difference". Noise cannot produce such a separation except by a fluke: if the three ways
//! really cost the same, every ordering of their 2 × 11 rounds is equally likely, and a
//! complete separation in either direction has a chance of 2 in C(22, 11) ≈ 1 in 350,000.
//! Noise can only hide a small real difference, never invent one.

use std::fmt;
use std::time::Instant;

use candle_core::Device;

use crate::error::{Error, Result};
use crate::lesson::cost::{MaskRun, MaskStrategy};
use crate::nn::device::device_name;
use crate::notebook::display::{html_escape, Show};
use crate::notebook::language::Language;
use crate::notebook::table::{Column, Table};

/// The fewest rounds [`compare_mask_strategies`] accepts: with fewer, two ranges that do
/// not overlap by chance become too likely (with 7 rounds, about 1 in 1,700).
pub const MIN_ROUNDS: usize = 7;

/// How a way of providing the mask compares with the buffer on the device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    /// Their ranges of rounds overlap: no measurable difference.
    NoMeasurableDifference,
    /// Every round was slower than every round of the buffer; the ratio of the medians.
    Slower(f64),
    /// Every round was faster than every round of the buffer; the ratio of the medians.
    Faster(f64),
}

/// The times of one forward pass of causal attention for each way of providing the mask,
/// one per round, and what they show. Made by [`compare_mask_strategies`], or from given
/// times by [`MaskTimings::from_rounds`].
///
/// ```
/// use understanding_buffers::lesson::cost::MaskStrategy;
/// use understanding_buffers::lesson::timing::{Comparison, MaskTimings};
///
/// let rounds = [
///     vec![1.0, 1.2, 1.1, 1.3, 1.0, 1.1, 1.2], // buffer on the device
///     vec![1.1, 1.0, 1.4, 1.2, 1.1, 1.0, 1.3], // rebuilt: overlaps the buffer
///     vec![2.0, 2.2, 2.1, 2.6, 2.0, 2.1, 2.3], // copied: every round slower
/// ];
/// let timings = MaskTimings::from_rounds("cuda:0", (2, 64, 32), rounds)?;
/// use MaskStrategy::*;
/// assert_eq!(timings.against_buffer(RebuiltEveryCall), Comparison::NoMeasurableDifference);
/// assert_eq!(timings.against_buffer(CopiedFromCpuEveryCall), Comparison::Slower(2.1 / 1.1));
/// assert_eq!(timings.range(BufferOnDevice), (1.0, 1.3));
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MaskTimings {
    device: String,
    shape: (usize, usize, usize),
    rounds: [Vec<f64>; 3],
}

/// Times one forward pass of causal attention on an input of shape `(batch, tokens, d)` on
/// `device`, the mask provided in each of the three ways of [`MaskStrategy::ALL`]: two
/// warm-up rounds, then `rounds` (at least [`MIN_ROUNDS`]) rounds that each time every way
/// once, starting with a different one each round. See the [module docs](self) for the rule
/// the conclusion follows.
///
/// ```
/// use understanding_buffers::lesson::timing::compare_mask_strategies;
/// let timings = compare_mask_strategies(1, 8, 4, 7, &candle_core::Device::Cpu)?;
/// assert_eq!(timings.rounds().len(), 3);
/// assert!(compare_mask_strategies(1, 8, 4, 3, &candle_core::Device::Cpu).is_err());
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn compare_mask_strategies(
    batch: usize,
    tokens: usize,
    d: usize,
    rounds: usize,
    device: &Device,
) -> Result<MaskTimings> {
    check_rounds(rounds)?;
    let mut run = MaskRun::new(batch, tokens, d, device)?;
    let strategies = MaskStrategy::ALL;
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds + 2 {
        for k in 0..strategies.len() {
            let which = (round + k) % strategies.len();
            let start = Instant::now();
            let out = run.forward(strategies[which])?;
            out.device().synchronize()?; // GPU work is asynchronous: wait for the result
            let ms = start.elapsed().as_secs_f64() * 1e3;
            if round >= 2 {
                times[which].push(ms);
            }
        }
    }
    MaskTimings::from_rounds(&device_name(device), (batch, tokens, d), times)
}

fn check_rounds(rounds: usize) -> Result<()> {
    if rounds < MIN_ROUNDS {
        return Err(Error::Input(format!(
            "compare_mask_strategies needs at least {MIN_ROUNDS} rounds, got {rounds}"
        )));
    }
    Ok(())
}

fn index(strategy: MaskStrategy) -> usize {
    MaskStrategy::ALL
        .iter()
        .position(|s| *s == strategy)
        .unwrap_or(0)
}

impl MaskTimings {
    /// Timings from given milliseconds, one list per way in [`MaskStrategy::ALL`]'s order,
    /// each holding one time per round (all lists as long, at least [`MIN_ROUNDS`]).
    pub fn from_rounds(
        device: &str,
        shape: (usize, usize, usize),
        rounds: [Vec<f64>; 3],
    ) -> Result<Self> {
        let n = rounds[0].len();
        if rounds.iter().any(|r| r.len() != n) {
            return Err(Error::Input(
                "every way needs the same number of rounds".to_string(),
            ));
        }
        check_rounds(n)?;
        Ok(Self {
            device: device.to_string(),
            shape,
            rounds,
        })
    }

    /// The device the times were measured on (`cpu`, `cuda:0`).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The milliseconds of each round, in [`MaskStrategy::ALL`]'s order.
    pub fn rounds(&self) -> &[Vec<f64>; 3] {
        &self.rounds
    }

    /// The median of a way's rounds, in milliseconds.
    pub fn median(&self, strategy: MaskStrategy) -> f64 {
        let mut times = self.rounds[index(strategy)].clone();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }

    /// A way's fastest and slowest round, in milliseconds.
    pub fn range(&self, strategy: MaskStrategy) -> (f64, f64) {
        let times = &self.rounds[index(strategy)];
        let low = times.iter().copied().fold(f64::INFINITY, f64::min);
        let high = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (low, high)
    }

    /// How `strategy` compares with the buffer on the device, by the rule of the
    /// [module docs](self).
    pub fn against_buffer(&self, strategy: MaskStrategy) -> Comparison {
        let (low, high) = self.range(strategy);
        let (buffer_low, buffer_high) = self.range(MaskStrategy::BufferOnDevice);
        let ratio = self.median(strategy) / self.median(MaskStrategy::BufferOnDevice);
        if low > buffer_high {
            Comparison::Slower(ratio)
        } else if high < buffer_low {
            Comparison::Faster(ratio)
        } else {
            Comparison::NoMeasurableDifference
        }
    }

    fn comparison_text(&self, strategy: MaskStrategy, language: Language) -> String {
        if strategy == MaskStrategy::BufferOnDevice {
            return String::new();
        }
        match (self.against_buffer(strategy), language) {
            (Comparison::NoMeasurableDifference, _) => language
                .pick("no measurable difference", "测不出差别")
                .to_string(),
            (Comparison::Slower(r), Language::English) => format!("slower: {r:.2} ×"),
            (Comparison::Slower(r), Language::Chinese) => format!("更慢：{r:.2} 倍"),
            (Comparison::Faster(r), Language::English) => format!("faster: {r:.2} ×"),
            (Comparison::Faster(r), Language::Chinese) => format!("更快：{r:.2} 倍"),
        }
    }

    /// The figures as a table: each way's median, its range over the rounds, and how it
    /// compares with the buffer.
    pub fn table(&self) -> Table {
        self.table_in(Language::current())
    }

    /// [`MaskTimings::table`] in `language`.
    pub fn table_in(&self, language: Language) -> Table {
        let (batch, tokens, d) = self.shape;
        let n = self.rounds[0].len();
        let tr = |english, chinese| language.pick(english, chinese);
        let caption = match language {
            Language::English => format!(
                "One forward pass of causal attention on {}, input ({batch}, {tokens}, {d}), {n} rounds",
                self.device
            ),
            Language::Chinese => format!(
                "因果注意力一次前向传播的耗时：{}，输入形状 ({batch}, {tokens}, {d})，共 {n} 轮",
                self.device
            ),
        };
        let mut table = Table::new(
            &caption,
            &[
                (tr("mask", "掩码"), Column::Text),
                (tr("median (ms)", "中位数（毫秒）"), Column::Number),
                (
                    tr("fastest – slowest round (ms)", "最快–最慢的一轮（毫秒）"),
                    Column::Number,
                ),
                (tr("compared with the buffer", "与缓冲区相比"), Column::Text),
            ],
        );
        for strategy in MaskStrategy::ALL {
            let (low, high) = self.range(strategy);
            table.row([
                strategy.label_in(language).to_string(),
                format!("{:.3}", self.median(strategy)),
                format!("{low:.3} – {high:.3}"),
                self.comparison_text(strategy, language),
            ]);
        }
        table
    }

    /// What the figures show, in the notebook's language: for each way, slower, faster or
    /// no measurable difference compared with the buffer, by the rule of the
    /// [module docs](self); on a CPU also that the "copy" goes nowhere.
    pub fn conclusion(&self) -> String {
        self.conclusion_in(Language::current())
    }

    /// [`MaskTimings::conclusion`] in `language`.
    pub fn conclusion_in(&self, language: Language) -> String {
        let english = language == Language::English;
        let others = [
            MaskStrategy::RebuiltEveryCall,
            MaskStrategy::CopiedFromCpuEveryCall,
        ];
        let mut lines = Vec::new();
        for strategy in others {
            let label = strategy.label_in(language);
            lines.push(match (self.against_buffer(strategy), english) {
                (Comparison::NoMeasurableDifference, true) => format!(
                    "“{label}” and the buffer: no measurable difference (their ranges over the rounds overlap)."
                ),
                (Comparison::NoMeasurableDifference, false) => {
                    format!("“{label}”与缓冲区：测不出差别（两者各轮耗时的范围有重叠）。")
                }
                (Comparison::Slower(r), true) => format!(
                    "“{label}” is slower than the buffer: every round of it took longer than every round of the buffer; its median is {r:.2} times the buffer's."
                ),
                (Comparison::Slower(r), false) => format!(
                    "“{label}”比缓冲区慢：它的每一轮都比缓冲区最慢的一轮还慢，中位数是缓冲区的 {r:.2} 倍。"
                ),
                (Comparison::Faster(r), true) => format!(
                    "“{label}” is faster than the buffer: every round of it took less time than every round of the buffer; its median is {r:.2} times the buffer's."
                ),
                (Comparison::Faster(r), false) => format!(
                    "“{label}”比缓冲区快：它的每一轮都比缓冲区最快的一轮还快，中位数是缓冲区的 {r:.2} 倍。"
                ),
            });
        }
        if self.device == "cpu" {
            lines.push(
                language
                    .pick(
                    "On a CPU “copied from the CPU every call” copies nothing: the mask is already on the device.",
                    "在 CPU 上，“每次调用时从 CPU 复制”其实什么也没复制：掩码本来就在这个设备上。",
                )
                .to_string(),
            );
        }
        lines.join("\n")
    }
}

impl fmt::Display for MaskTimings {
    /// The table, then the conclusion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.table(), self.conclusion())
    }
}

impl Show for MaskTimings {
    fn rich(&self) -> (&'static str, String) {
        let (_, table) = self.table().rich();
        let conclusion: Vec<String> = self
            .conclusion()
            .lines()
            .map(|line| format!("<p>{}</p>", html_escape(line)))
            .collect();
        ("text/html", format!("{table}{}", conclusion.join("")))
    }

    fn plain(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(buffer: f64, rebuilt: f64, copied: f64, jitter: f64) -> MaskTimings {
        let round = |base: f64| (0..11).map(|i| base + jitter * (i % 4) as f64).collect();
        MaskTimings::from_rounds(
            "cpu",
            (2, 64, 32),
            [round(buffer), round(rebuilt), round(copied)],
        )
        .unwrap()
    }

    #[test]
    fn a_difference_within_the_spread_is_no_difference() {
        // 20 % apart in the medians, but the rounds spread over 45 %.
        let t = timings(1.0, 1.2, 1.0, 0.15);
        assert_eq!(
            t.against_buffer(MaskStrategy::RebuiltEveryCall),
            Comparison::NoMeasurableDifference
        );
    }

    #[test]
    fn a_separation_is_reported_with_the_ratio_of_medians() {
        let t = timings(1.0, 1.0, 2.0, 0.1);
        assert_eq!(
            t.against_buffer(MaskStrategy::CopiedFromCpuEveryCall),
            Comparison::Slower(2.1 / 1.1)
        );
        assert_eq!(
            timings(2.0, 1.0, 2.0, 0.1).against_buffer(MaskStrategy::RebuiltEveryCall),
            Comparison::Faster(1.1 / 2.1)
        );
    }

    #[test]
    fn the_conclusion_follows_the_rule_in_both_languages() {
        let t = timings(1.0, 1.0, 2.0, 0.1);
        let english = t.conclusion_in(Language::English);
        assert!(english.contains("no measurable difference"));
        assert!(english.contains("slower than the buffer"));
        assert!(english.contains("copies nothing"));
        let chinese = t.conclusion_in(Language::Chinese);
        assert!(chinese.contains("测不出差别") && chinese.contains("比缓冲区慢"));
        assert!(t
            .table_in(Language::Chinese)
            .to_string()
            .contains("与缓冲区相比"));
    }

    #[test]
    fn too_few_rounds_are_refused() {
        let short = [vec![1.0; 3], vec![1.0; 3], vec![1.0; 3]];
        assert!(MaskTimings::from_rounds("cpu", (1, 1, 1), short).is_err());
    }
}
