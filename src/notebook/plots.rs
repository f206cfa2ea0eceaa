//! Pictures for the lessons: heat maps, line charts and bar charts, drawn as SVG.
//!
//! Every function returns a [`Figure`]: an SVG document plus its title. In a notebook,
//! [`Show::show`] (or making the figure the cell's value) puts the SVG inline in a
//! `text/html` output, which JupyterLab and `nbconvert --to html` both display;
//! [`Figure::save_svg`] writes it to a file.
//!
//! The pictures are drawn with [plotters](https://docs.rs/plotters)' SVG backend and no
//! font library: text stays text in the SVG (UTF-8, so Chinese labels such as
//! `"Causal mask / 因果掩码"` survive intact) and the browser renders it with its own fonts.
//! Because nothing here can measure a font, the layout estimates text widths (CJK characters
//! one em wide, Latin ones a little over half an em), splits bilingual labels written as
//! `"English / 中文"` into two lines when one line would not fit, and leaves generous margins.
//!
//! | function | shows |
//! |---|---|
//! | [`heatmap`] | a matrix, row 0 at the top, with a colour bar and (up to 16 × 16) each cell's value |
//! | [`line_chart`] | several series against a shared x axis, with a legend |
//! | [`bar_chart`] | one value per labelled bar, the value printed above the bar |
//! | [`grouped_bar_chart`] | several series side by side for each group, with a legend |
//!
//! Bad input (a tensor that is not 2-D, no data, series of different lengths, NaN) is an
//! [`Error::Plot`] whose message says what is wrong; nothing here panics on user input.

use std::fmt;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::display::{html_escape, Show};
use crate::error::{Error, Result};

/// A finished picture: an SVG document and the title it was drawn with.
///
/// ```
/// use understanding_buffers::display::Show;
/// use understanding_buffers::plots::bar_chart;
///
/// # fn main() -> understanding_buffers::Result<()> {
/// let fig = bar_chart(&[("f32".to_string(), 4.0), ("u8".to_string(), 1.0)],
///                     "Bytes per mask entry / 每个掩码元素的字节数", "bytes / 字节")?;
/// assert!(fig.svg().starts_with("<svg"));
/// assert_eq!(fig.title(), "Bytes per mask entry / 每个掩码元素的字节数");
/// let (mime, html) = fig.rich();
/// assert_eq!(mime, "text/html");
/// assert!(html.starts_with("<div class=\"ub-figure\">"));
/// assert!(fig.plain().starts_with("[figure: Bytes per mask entry / 每个掩码元素的字节数, SVG "));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Figure {
    svg: String,
    title: String,
}

impl Figure {
    /// The SVG document (`<svg …>…</svg>`), ready to inline in HTML or to write to a file.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// The title the figure was drawn with.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Writes the SVG document to `path` (UTF-8), replacing any file there.
    ///
    /// ```no_run
    /// # use understanding_buffers::plots::bar_chart;
    /// # fn main() -> understanding_buffers::Result<()> {
    /// let fig = bar_chart(&[("a".to_string(), 1.0)], "One bar", "value")?;
    /// fig.save_svg("one_bar.svg")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, &self.svg).map_err(|err| {
            Error::Plot(format!(
                "cannot write the figure {:?} to {}: {err}; check that the folder exists and is writable",
                self.title,
                path.display()
            ))
        })
    }

    /// Shows the figure as a rich `text/html` output when evcxr asks for it, i.e. when a
    /// figure is the value of a notebook cell.
    pub fn evcxr_display(&self) {
        let (mime, content) = self.rich();
        println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
    }
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Figure")
            .field("title", &self.title)
            .field("svg_bytes", &self.svg.len())
            .finish()
    }
}

impl Show for Figure {
    /// `text/html`: the SVG inline, wrapped in `<div class="ub-figure">`.
    fn rich(&self) -> (&'static str, String) {
        (
            "text/html",
            format!("<div class=\"ub-figure\">\n{}</div>", self.svg),
        )
    }

    /// One line, e.g. `[figure: Causal mask / 因果掩码, SVG 12345 bytes]`.
    fn plain(&self) -> String {
        let title = self.title.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("[figure: {title}, SVG {} bytes]", self.svg.len())
    }
}

// ---------------------------------------------------------------------------------------
// Public drawing functions
// ---------------------------------------------------------------------------------------

/// Size of a heat map, in pixels.
const HEATMAP_SIZE: (u32, u32) = (560, 420);
/// Size of a line chart or grouped bar chart (room for a legend on the right).
const WIDE_SIZE: (u32, u32) = (640, 420);
/// Size of a bar chart.
const BAR_SIZE: (u32, u32) = (560, 420);
/// Matrices with more rows or columns than this are shown block-averaged.
const MAX_HEATMAP_CELLS: usize = 128;
/// Matrices with more rows or columns than this get no per-cell annotations.
const MAX_ANNOTATED: usize = 16;

/// A heat map of a 2-D tensor, like matplotlib's `imshow`: row 0 at the top, column 0 on
/// the left, row and column indices as tick labels, and a colour bar.
///
/// - Any dtype (floats, `u8`, `u32`, `i64`) on any device: the values are copied to the CPU
///   as `f64`.
/// - Colours: a sequential scale (viridis) from the smallest to the largest value, or, when
///   the matrix holds both negative and positive values, a diverging blue–white–red scale
///   centred on 0 (e.g. a positional-encoding table in -1..1).
/// - Up to 16 × 16, every cell is annotated with its value, compactly (`0`, `1`, `2`,
///   `0.35`); larger matrices get no annotations. Matrices wider or taller than 128 cells
///   are shown block-averaged (each drawn cell is the mean of the cells it covers).
/// - `-inf`/`inf` (e.g. masked attention scores) are drawn as grey cells marked `-inf`/`inf`;
///   NaN is an error.
///
/// Errors: a tensor that is not 2-D, an empty one, or one holding NaN.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use understanding_buffers::plots::heatmap;
///
/// # fn main() -> understanding_buffers::Result<()> {
/// // The causal mask of a 6-token context: 1 above the diagonal.
/// let mask = Tensor::tril2(6, DType::F32, &Device::Cpu)?.affine(-1.0, 1.0)?;
/// let fig = heatmap(&mask, "Causal mask / 因果掩码", "key position / 键位置",
///                   "query position / 查询位置")?;
/// assert!(fig.svg().contains("因果掩码"));
///
/// // Not a matrix: an error that says so.
/// let batch = Tensor::zeros((2, 6, 6), DType::F32, &Device::Cpu)?;
/// let err = heatmap(&batch, "t", "x", "y").unwrap_err();
/// assert!(err.to_string().contains("2-D"));
/// # Ok(())
/// # }
/// ```
pub fn heatmap(values: &Tensor, title: &str, x_label: &str, y_label: &str) -> Result<Figure> {
    let dims = values.dims();
    if dims.len() != 2 {
        return Err(Error::Plot(format!(
            "a heat map needs a 2-D tensor (rows × columns), got a {}-D tensor of shape {dims:?}; \
             pick one matrix first, e.g. `t.get(0)?` for the first of a batch, or `t.squeeze(0)?`",
            dims.len()
        )));
    }
    let (rows, cols) = (dims[0], dims[1]);
    if rows == 0 || cols == 0 {
        return Err(Error::Plot(format!(
            "a heat map needs at least one row and one column, got an empty tensor of shape [{rows}, {cols}]"
        )));
    }
    let data: Vec<Vec<f64>> = values
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .to_vec2()?;
    for (r, row) in data.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if v.is_nan() {
                return Err(Error::Plot(format!(
                    "cannot draw the heat map {title:?}: the value at row {r}, column {c} is NaN; \
                     find where it comes from (e.g. a softmax over a row that is masked entirely)"
                )));
            }
        }
    }
    draw_heatmap(&data, title, x_label, y_label)
}

/// A line chart of several series against shared x values, with a legend on the right.
///
/// Each series is `(name, y values)` and must have exactly as many values as `x`. Names
/// written as `"English / 中文"` are split over two legend lines when they are long.
///
/// Errors: no x values, no series, a series whose length differs from `x`, NaN or infinite
/// values.
///
/// ```
/// use understanding_buffers::plots::line_chart;
///
/// # fn main() -> understanding_buffers::Result<()> {
/// let x: Vec<f32> = (0..50).map(|p| p as f32).collect();
/// let sin0: Vec<f32> = x.iter().map(|p| p.sin()).collect();
/// let cos1: Vec<f32> = x.iter().map(|p| (p / 10f32.powf(0.5)).cos()).collect();
/// let fig = line_chart(
///     &x,
///     &[("dim 0 (sin)".to_string(), sin0), ("dim 1 (cos)".to_string(), cos1)],
///     "Positional encoding / 位置编码",
///     "position / 位置",
///     "value / 值",
/// )?;
/// assert!(fig.svg().contains("dim 1 (cos)"));
///
/// // A series of the wrong length is an error naming it.
/// let err = line_chart(&x, &[("short".to_string(), vec![0.0; 3])], "t", "x", "y").unwrap_err();
/// assert!(err.to_string().contains("short"));
/// # Ok(())
/// # }
/// ```
pub fn line_chart(
    x: &[f32],
    series: &[(String, Vec<f32>)],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    if x.is_empty() {
        return Err(Error::Plot(format!(
            "cannot draw the line chart {title:?}: no x values were given"
        )));
    }
    if series.is_empty() {
        return Err(Error::Plot(format!(
            "cannot draw the line chart {title:?}: no series were given; pass at least one (name, values) pair"
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::Plot(format!(
            "cannot draw the line chart {title:?}: x value {i} is {}; every x value must be a finite number",
            x[i]
        )));
    }
    for (name, ys) in series {
        if ys.len() != x.len() {
            return Err(Error::Plot(format!(
                "cannot draw the line chart {title:?}: series {name:?} has {} values but there are {} x values; \
                 every series needs one value per x value",
                ys.len(),
                x.len()
            )));
        }
        if let Some(i) = ys.iter().position(|v| !v.is_finite()) {
            return Err(Error::Plot(format!(
                "cannot draw the line chart {title:?}: value {i} of series {name:?} is {}; \
                 every value must be a finite number",
                ys[i]
            )));
        }
    }
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let series: Vec<(String, Vec<f64>)> = series
        .iter()
        .map(|(n, ys)| (n.clone(), ys.iter().map(|&v| f64::from(v)).collect()))
        .collect();
    draw_line_chart(&x, &series, title, x_label, y_label)
}

/// A bar chart: one bar per `(label, value)`, the value printed above the bar (below it for
/// negative values), the label under it.
///
/// Labels written as `"English / 中文"` are split over two lines when they are long. Values
/// are printed with three significant digits (`0.0123`, `1.63`, `78.7`, `1234`).
///
/// Errors: no bars, NaN or infinite values.
///
/// ```
/// use understanding_buffers::plots::bar_chart;
///
/// # fn main() -> understanding_buffers::Result<()> {
/// let fig = bar_chart(
///     &[
///         ("buffer on device / 设备上的缓冲区".to_string(), 0.021),
///         ("rebuilt every call / 每次调用重建".to_string(), 0.087),
///         ("copied from CPU / 从 CPU 复制".to_string(), 0.412),
///     ],
///     "Mask cost per forward pass / 每次前向传播的掩码开销",
///     "ms per call / 每次调用毫秒数",
/// )?;
/// assert!(fig.svg().contains("0.412"));
/// assert!(bar_chart(&[], "t", "y").is_err());
/// # Ok(())
/// # }
/// ```
pub fn bar_chart(bars: &[(String, f64)], title: &str, y_label: &str) -> Result<Figure> {
    if bars.is_empty() {
        return Err(Error::Plot(format!(
            "cannot draw the bar chart {title:?}: no bars were given; pass at least one (label, value) pair"
        )));
    }
    for (label, v) in bars {
        if !v.is_finite() {
            return Err(Error::Plot(format!(
                "cannot draw the bar chart {title:?}: bar {label:?} has the value {v}; \
                 every value must be a finite number"
            )));
        }
    }
    let groups: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let values: Vec<Vec<f64>> = bars.iter().map(|(_, v)| vec![*v]).collect();
    draw_bars(&groups, &[], &values, title, "", y_label, BAR_SIZE)
}

/// A grouped bar chart: for each group (an x position such as a context length), one bar
/// per series, side by side, with a legend on the right; values are printed above the bars
/// when they fit.
///
/// Each series is `(name, values)` with one value per group, in the order of `groups`.
///
/// Errors: no groups, no series, a series whose length differs from the number of groups,
/// NaN or infinite values.
///
/// ```
/// use understanding_buffers::plots::grouped_bar_chart;
///
/// # fn main() -> understanding_buffers::Result<()> {
/// let contexts = ["256", "1024", "4096"].map(String::from);
/// let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
/// let n: [f64; 3] = [256.0, 1024.0, 4096.0];
/// let fig = grouped_bar_chart(
///     &contexts,
///     &[
///         ("f32 mask / f32 掩码".to_string(), n.iter().map(|t| mib(t * t * 4.0)).collect()),
///         ("u8 mask / u8 掩码".to_string(), n.iter().map(|t| mib(t * t)).collect()),
///         ("no mask / 无掩码".to_string(), vec![0.0; 3]),
///     ],
///     "Mask memory / 掩码内存",
///     "context length / 上下文长度",
///     "MiB",
/// )?;
/// assert!(fig.svg().contains("u8 掩码"));
/// # Ok(())
/// # }
/// ```
pub fn grouped_bar_chart(
    groups: &[String],
    series: &[(String, Vec<f64>)],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    if groups.is_empty() {
        return Err(Error::Plot(format!(
            "cannot draw the bar chart {title:?}: no groups were given"
        )));
    }
    if series.is_empty() {
        return Err(Error::Plot(format!(
            "cannot draw the bar chart {title:?}: no series were given; pass at least one (name, values) pair"
        )));
    }
    for (name, vs) in series {
        if vs.len() != groups.len() {
            return Err(Error::Plot(format!(
                "cannot draw the bar chart {title:?}: series {name:?} has {} values but there are {} groups; \
                 every series needs one value per group",
                vs.len(),
                groups.len()
            )));
        }
        if let Some(i) = vs.iter().position(|v| !v.is_finite()) {
            return Err(Error::Plot(format!(
                "cannot draw the bar chart {title:?}: value {i} ({:?}) of series {name:?} is {}; \
                 every value must be a finite number",
                groups[i], vs[i]
            )));
        }
    }
    let names: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
    let values: Vec<Vec<f64>> = (0..groups.len())
        .map(|g| series.iter().map(|(_, vs)| vs[g]).collect())
        .collect();
    draw_bars(groups, &names, &values, title, x_label, y_label, WIDE_SIZE)
}

// ---------------------------------------------------------------------------------------
// Drawing machinery
// ---------------------------------------------------------------------------------------

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x44, 0x44, 0x44);
const AXIS: RGBColor = RGBColor(0x55, 0x55, 0x55);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
const FRAME: RGBColor = RGBColor(0x99, 0x99, 0x99);
const NOT_FINITE: RGBColor = RGBColor(0xD0, 0xD0, 0xD0);

const TITLE_PX: f64 = 16.0;
const LABEL_PX: f64 = 13.0;
const TICK_PX: f64 = 11.0;
const LEGEND_PX: f64 = 12.0;
const PAD: f64 = 12.0;

/// matplotlib's "tab10" palette: series and bar colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1F, 0x77, 0xB4),
    RGBColor(0xFF, 0x7F, 0x0E),
    RGBColor(0x2C, 0xA0, 0x2C),
    RGBColor(0xD6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xBD),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0xE3, 0x77, 0xC2),
    RGBColor(0x7F, 0x7F, 0x7F),
    RGBColor(0xBC, 0xBD, 0x22),
    RGBColor(0x17, 0xBE, 0xCF),
];

/// viridis, sampled at nine evenly spaced points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (0x44, 0x01, 0x54),
    (0x47, 0x2D, 0x7B),
    (0x3B, 0x52, 0x8B),
    (0x2C, 0x72, 0x8E),
    (0x21, 0x91, 0x8C),
    (0x28, 0xAE, 0x80),
    (0x5E, 0xC9, 0x62),
    (0xAD, 0xDC, 0x30),
    (0xFD, 0xE7, 0x25),
];

/// ColorBrewer's RdBu reversed: blue for negative, white at 0, red for positive.
const BLUE_WHITE_RED: [(u8, u8, u8); 11] = [
    (0x05, 0x30, 0x61),
    (0x21, 0x66, 0xAC),
    (0x43, 0x93, 0xC3),
    (0x92, 0xC5, 0xDE),
    (0xD1, 0xE5, 0xF0),
    (0xF7, 0xF7, 0xF7),
    (0xFD, 0xDB, 0xC7),
    (0xF4, 0xA5, 0x82),
    (0xD6, 0x60, 0x4D),
    (0xB2, 0x18, 0x2B),
    (0x67, 0x00, 0x1F),
];

/// Draws on a fresh white SVG canvas and wraps the result as a [`Figure`] whose SVG also
/// carries the full title in a `<title>` element (tooltips, screen readers, search).
fn render(
    size: (u32, u32),
    title: &str,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<Figure> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
            .map_err(|err| Error::Plot(format!("could not draw the figure {title:?}: {err}")))?;
    }
    let mut svg = tidy_font_sizes(&svg);
    if let Some(end) = svg.find(">\n") {
        svg.insert_str(end + 2, &format!("<title>{}</title>\n", html_escape(title)));
    }
    Ok(Figure {
        svg,
        title: title.to_string(),
    })
}

/// Whether a character is drawn about one em wide (CJK ideographs, kana, hangul,
/// full-width forms).
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD)
}

/// An estimate, on the wide side, of the width of `text` set at `px` pixels in a common
/// sans-serif font.
fn text_width(text: &str, px: f64) -> f64 {
    text.chars()
        .map(|c| {
            if is_wide(c) {
                1.0
            } else if c.is_ascii_digit() {
                0.64
            } else if c.is_ascii_uppercase() || matches!(c, 'm' | 'w' | 'M' | 'W' | '%' | '@') {
                0.72
            } else if matches!(
                c,
                ' ' | '.'
                    | ','
                    | ':'
                    | ';'
                    | '!'
                    | '|'
                    | '\''
                    | 'i'
                    | 'l'
                    | 'j'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '/'
                    | '-'
                    | 't'
                    | 'f'
                    | 'r'
            ) {
                0.38
            } else {
                0.6
            }
        })
        .sum::<f64>()
        * px
}

/// Fits `text` into `max_width`: one line if it fits; otherwise the parts of a bilingual
/// `"English / 中文"` label on separate lines; then, if still too wide, a smaller font (not
/// below `min_px`). Returns the lines and the font size.
fn fit_lines(text: &str, max_width: f64, px: f64, min_px: f64) -> (Vec<String>, f64) {
    fit_lines_weighted(text, max_width, px, min_px, 1.0)
}

/// [`fit_lines`] for text `widen` times wider than regular text (bold: 1.1).
fn fit_lines_weighted(
    text: &str,
    max_width: f64,
    px: f64,
    min_px: f64,
    widen: f64,
) -> (Vec<String>, f64) {
    let text_width = |t: &str, px: f64| text_width(t, px) * widen;
    if text.is_empty() {
        return (Vec::new(), px);
    }
    if text_width(text, px) <= max_width {
        return (vec![text.to_string()], px);
    }
    let lines: Vec<String> = if text.contains(" / ") {
        text.split(" / ").map(|s| s.trim().to_string()).collect()
    } else {
        vec![text.to_string()]
    };
    let widest = lines.iter().map(|l| text_width(l, px)).fold(0.0, f64::max);
    if widest <= max_width {
        return (lines, px);
    }
    let scaled = ((px * max_width / widest) * 2.0).floor() / 2.0;
    (lines, scaled.max(min_px))
}

/// Line height for text at `px`.
fn line_height(px: f64) -> f64 {
    (px * 1.3).round()
}

/// Height of a block of `lines` lines at `px`.
fn block_height(lines: usize, px: f64) -> f64 {
    lines as f64 * line_height(px)
}

/// plotters writes `font-size="<size / 1.24>"`: hand it `px * 1.24` (see
/// [`tidy_font_sizes`] for the rounding noise).
fn plotters_size(px: f64) -> f64 {
    px * 1.24
}

/// Rewrites `font-size="13.000000000000002"` (plotters' `px * 1.24 / 1.24`) as
/// `font-size="13"`.
fn tidy_font_sizes(svg: &str) -> String {
    const ATTR: &str = "font-size=\"";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(at) = rest.find(ATTR) {
        let value_start = at + ATTR.len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let value_end = rest.find('"').unwrap_or(rest.len());
        let value = &rest[..value_end];
        match value.parse::<f64>() {
            Ok(size) => out.push_str(&trim_zeros(format!("{size:.2}"))),
            Err(_) => out.push_str(value),
        }
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

#[derive(Clone, Copy)]
struct TextSpec {
    px: f64,
    color: RGBColor,
    h: HPos,
    v: VPos,
    bold: bool,
    vertical: bool,
}

impl TextSpec {
    fn new(px: f64, h: HPos, v: VPos) -> Self {
        Self {
            px,
            color: TEXT,
            h,
            v,
            bold: false,
            vertical: false,
        }
    }
    fn color(mut self, color: RGBColor) -> Self {
        self.color = color;
        self
    }
    fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
}

fn px_coord(x: f64, y: f64) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

fn draw_text(area: &Area<'_>, text: &str, (x, y): (f64, f64), spec: TextSpec) -> DrawResult {
    let weight = if spec.bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    let font = FontDesc::new(FontFamily::SansSerif, plotters_size(spec.px), weight);
    let mut style = TextStyle::from(font)
        .color(&spec.color)
        .pos(Pos::new(spec.h, spec.v));
    if spec.vertical {
        style = style.transform(FontTransform::Rotate270);
    }
    area.draw_text(text, &style, px_coord(x, y))
}

/// Draws lines of text stacked downwards from `top`, each centred on `x`.
fn draw_lines_centered(
    area: &Area<'_>,
    lines: &[String],
    x: f64,
    top: f64,
    spec: TextSpec,
) -> DrawResult {
    let lh = line_height(spec.px);
    for (i, line) in lines.iter().enumerate() {
        draw_text(
            area,
            line,
            (x, top + i as f64 * lh + lh / 2.0),
            TextSpec {
                h: HPos::Center,
                v: VPos::Center,
                ..spec
            },
        )?;
    }
    Ok(())
}

/// Draws lines of vertical (bottom-to-top) text side by side from `left`, each centred on `y`.
fn draw_lines_vertical(
    area: &Area<'_>,
    lines: &[String],
    left: f64,
    y: f64,
    spec: TextSpec,
) -> DrawResult {
    let lh = line_height(spec.px);
    for (i, line) in lines.iter().enumerate() {
        draw_text(
            area,
            line,
            (left + i as f64 * lh + lh / 2.0, y),
            TextSpec {
                h: HPos::Center,
                v: VPos::Center,
                vertical: true,
                ..spec
            },
        )?;
    }
    Ok(())
}

fn fill_rect(area: &Area<'_>, x0: i32, y0: i32, x1: i32, y1: i32, color: RGBColor) -> DrawResult {
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))
}

fn stroke_rect(area: &Area<'_>, x0: i32, y0: i32, x1: i32, y1: i32, color: RGBColor) -> DrawResult {
    area.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        ShapeStyle::from(&color).stroke_width(1),
    ))
}

fn line(
    area: &Area<'_>,
    from: (f64, f64),
    to: (f64, f64),
    color: RGBColor,
    width: u32,
) -> DrawResult {
    area.draw(&PathElement::new(
        vec![px_coord(from.0, from.1), px_coord(to.0, to.1)],
        ShapeStyle::from(&color).stroke_width(width),
    ))
}

/// The title block: returns the y coordinate below it.
fn draw_title(
    area: &Area<'_>,
    title: &str,
    width: f64,
) -> std::result::Result<f64, DrawingAreaErrorKind<std::io::Error>> {
    let (lines, px) = fit_title(title, width);
    let spec = TextSpec::new(px, HPos::Center, VPos::Center).bold();
    draw_lines_centered(area, &lines, width / 2.0, PAD, spec)?;
    Ok(PAD + block_height(lines.len(), px) + 8.0)
}

/// The title's lines and font size: bold text is about 15 % wider than regular text.
fn fit_title(title: &str, width: f64) -> (Vec<String>, f64) {
    fit_lines_weighted(title, width - 2.0 * PAD, TITLE_PX, 11.0, 1.15)
}

fn title_height(title: &str, width: f64) -> f64 {
    let (lines, px) = fit_title(title, width);
    PAD + block_height(lines.len(), px) + 8.0
}

/// "Nice" tick values covering `lo..=hi` (steps 1, 2, 2.5 or 5 times a power of ten), at most
/// `max_ticks` of them, and the step.
fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return (vec![lo], 1.0);
    }
    let intervals = max_ticks.max(2) - 1;
    let raw = span / intervals as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| span / step <= intervals as f64 + 1e-9)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    let ticks = (first as i64..=last as i64)
        .map(|k| k as f64 * step)
        .collect();
    (ticks, step)
}

/// Formats an axis tick: as many decimals as the step needs.
fn format_tick(v: f64, step: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-4) {
        return format!("{v:.1e}");
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil().clamp(0.0, 6.0) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') && !s.contains('e') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".to_string()
        } else {
            t.to_string()
        }
    } else {
        s
    }
}

/// Formats a heat-map cell compactly: `0`, `1`, `2`, `0.35`, `-0.7`, `12.5`, `-inf`.
fn format_cell(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == v.round() && v.abs() < 1e6 {
        return format!("{}", v as i64);
    }
    let a = v.abs();
    let s = if a >= 1e6 {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.005 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.3}")
    } else {
        format!("{v:.0e}")
    };
    trim_zeros(s)
}

/// Formats a bar's value with three significant digits: `0.0123`, `1.63`, `78.7`, `1234`.
fn format_value(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if !(1e-4..1e9).contains(&a) {
        return format!("{v:.2e}");
    }
    if v == v.round() {
        return format!("{}", v as i64);
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    trim_zeros(format!("{v:.decimals$}"))
}

fn interpolate(stops: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (stops.len() - 1) as f64;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (stops[i], stops[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Relative luminance (0 dark … 1 light), to pick a readable annotation colour.
fn luminance(c: RGBColor) -> f64 {
    let lin = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

/// The colour scale of a heat map.
struct ColorScale {
    vmin: f64,
    vmax: f64,
    diverging: bool,
}

impl ColorScale {
    fn for_values(values: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi {
            // No finite value at all.
            return Self {
                vmin: 0.0,
                vmax: 1.0,
                diverging: false,
            };
        }
        if lo < 0.0 && hi > 0.0 {
            let m = lo.abs().max(hi);
            return Self {
                vmin: -m,
                vmax: m,
                diverging: true,
            };
        }
        let (vmin, vmax) = if lo < hi {
            (lo, hi)
        } else if lo > 0.0 {
            (0.0, lo)
        } else if lo < 0.0 {
            (lo, 0.0)
        } else {
            (0.0, 1.0)
        };
        Self {
            vmin,
            vmax,
            diverging: false,
        }
    }

    fn color(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return NOT_FINITE;
        }
        let t = (v - self.vmin) / (self.vmax - self.vmin);
        if self.diverging {
            interpolate(&BLUE_WHITE_RED, t)
        } else {
            interpolate(&VIRIDIS, t)
        }
    }
}

/// Index tick positions for an axis of `n` cells, `cell` pixels each: every index up to 16
/// cells, then a 1-2-5 stride that keeps at most ten labels and room between them.
fn index_ticks(n: usize, cell: f64, horizontal: bool) -> Vec<usize> {
    let label_room = |step: usize| {
        let widest = text_width(&(n - 1).to_string(), TICK_PX);
        let need = if horizontal {
            widest + 4.0
        } else {
            TICK_PX + 2.0
        };
        cell * step as f64 >= need
    };
    let mut step = 1;
    if n > MAX_ANNOTATED || !label_room(1) {
        let mut candidates = Vec::new();
        let mut mag = 1;
        while mag <= n.max(1) * 10 {
            candidates.extend([mag, 2 * mag, 5 * mag]);
            mag *= 10;
        }
        step = candidates
            .into_iter()
            .filter(|&s| s > 1 || n <= MAX_ANNOTATED)
            .find(|&s| n.div_ceil(s) <= 10 && label_room(s))
            .unwrap_or(n.max(1));
    }
    (0..n).step_by(step).collect()
}

/// Block-averages a matrix so that it has at most `MAX_HEATMAP_CELLS` rows and columns.
/// Returns the displayed matrix and the (row, column) block sizes.
fn downsample(data: &[Vec<f64>]) -> (Vec<Vec<f64>>, usize, usize) {
    let rows = data.len();
    let cols = data[0].len();
    let fr = rows.div_ceil(MAX_HEATMAP_CELLS);
    let fc = cols.div_ceil(MAX_HEATMAP_CELLS);
    if fr == 1 && fc == 1 {
        return (data.to_vec(), 1, 1);
    }
    let out = (0..rows.div_ceil(fr))
        .map(|br| {
            (0..cols.div_ceil(fc))
                .map(|bc| {
                    let mut sum = 0.0;
                    let mut count = 0usize;
                    let mut inf = 0.0;
                    for row in data.iter().skip(br * fr).take(fr) {
                        for &v in row.iter().skip(bc * fc).take(fc) {
                            if v.is_finite() {
                                sum += v;
                                count += 1;
                            } else {
                                inf = v;
                            }
                        }
                    }
                    if count > 0 {
                        sum / count as f64
                    } else {
                        inf
                    }
                })
                .collect()
        })
        .collect();
    (out, fr, fc)
}

fn draw_heatmap(data: &[Vec<f64>], title: &str, x_label: &str, y_label: &str) -> Result<Figure> {
    let (w, h) = (f64::from(HEATMAP_SIZE.0), f64::from(HEATMAP_SIZE.1));
    let rows = data.len();
    let cols = data[0].len();
    let (shown, fr, fc) = downsample(data);
    let (srows, scols) = (shown.len(), shown[0].len());
    let scale = ColorScale::for_values(data.iter().flatten().copied());

    // Vertical layout.
    let top = title_height(title, w);
    let (x_lines, x_px) = fit_lines(x_label, w - 140.0, LABEL_PX, 10.0);
    let x_label_h = block_height(x_lines.len(), x_px);
    let bottom = 4.0 + 4.0 + line_height(TICK_PX) + 6.0 + x_label_h + PAD;
    let avail_h = h - top - bottom;

    // Horizontal layout: y label, row ticks, matrix, colour bar with its ticks.
    let (y_lines, y_px) = fit_lines(y_label, avail_h, LABEL_PX, 10.0);
    let y_label_w = block_height(y_lines.len(), y_px);
    let row_tick_w = text_width(&(rows - 1).to_string(), TICK_PX);
    let cbar_labels_for = |max_ticks: usize| {
        // At least two labelled ticks, so that the scale can be read.
        let (mut ticks, mut step) = nice_ticks(scale.vmin, scale.vmax, max_ticks);
        for more in max_ticks + 1..=max_ticks + 4 {
            if ticks.len() >= 2 {
                break;
            }
            (ticks, step) = nice_ticks(scale.vmin, scale.vmax, more);
        }
        let labels: Vec<String> = ticks.iter().map(|&v| format_tick(v, step)).collect();
        (ticks, labels)
    };
    let cbar_label_w = cbar_labels_for(7)
        .1
        .iter()
        .map(|l| text_width(l, TICK_PX))
        .fold(0.0, f64::max);
    let left_w = y_label_w + 8.0 + row_tick_w + 4.0 + 4.0;
    let (cbar_gap, cbar_w) = (16.0, 14.0);
    let right_w = cbar_gap + cbar_w + 4.0 + 3.0 + cbar_label_w;
    let avail_w = w - 2.0 * PAD - left_w - right_w;

    // Cells: square (like imshow) while the matrix is roughly square or its square cells
    // are big enough to read one by one; otherwise stretched to fill the space (a 50 × 16
    // table would be a thin strip).
    let (long, short) = (rows.max(cols) as f64, rows.min(cols) as f64);
    let square = (avail_w / cols as f64).min(avail_h / rows as f64);
    let (cw, ch) = if long / short <= 2.0 || square >= 16.0 {
        (square, square)
    } else {
        (avail_w / cols as f64, avail_h / rows as f64)
    };
    let (bw, bh) = (cw * cols as f64, ch * rows as f64);
    let group_w = left_w + bw + right_w;
    let x0 = ((w - group_w) / 2.0 + left_w).round();
    // A flat matrix gets a shorter picture rather than empty bands above and below it (but
    // one tall enough for the y label).
    let y_label_len = y_lines
        .iter()
        .map(|l| text_width(l, y_px))
        .fold(0.0, f64::max);
    let content_h = bh.max(y_label_len).min(avail_h);
    let y0 = (top + (content_h - bh) / 2.0).round();
    let (x1, y1) = ((x0 + bw).round(), (y0 + bh).round());
    let size = (
        HEATMAP_SIZE.0,
        ((top + content_h + bottom).ceil() as u32).min(HEATMAP_SIZE.1),
    );
    // About one colour-bar label per 30 px.
    let (cbar_ticks, cbar_labels) = cbar_labels_for(((bh / 30.0) as usize).clamp(2, 7));

    // Annotations, when the matrix is small and the text fits its cells.
    let annotations = if rows <= MAX_ANNOTATED && cols <= MAX_ANNOTATED {
        let labels: Vec<Vec<String>> = data
            .iter()
            .map(|row| row.iter().map(|&v| format_cell(v)).collect())
            .collect();
        let mut px = (ch * 0.42).min(cw * 0.42).min(14.0);
        let widest = labels
            .iter()
            .flatten()
            .map(|l| text_width(l, px))
            .fold(0.0, f64::max);
        if widest > cw - 4.0 {
            px *= (cw - 4.0) / widest;
        }
        if px >= 8.0 {
            Some((labels, (px * 2.0).floor() / 2.0))
        } else {
            None
        }
    } else {
        None
    };

    render(size, title, |area| {
        draw_title(area, title, w)?;

        // Cells: edges rounded to whole pixels so that neighbours tile without gaps.
        let scw = bw / scols as f64;
        let sch = bh / srows as f64;
        let xs: Vec<i32> = (0..=scols)
            .map(|i| (x0 + i as f64 * scw).round() as i32)
            .collect();
        let ys: Vec<i32> = (0..=srows)
            .map(|i| (y0 + i as f64 * sch).round() as i32)
            .collect();
        // Runs of same-coloured cells in a row are one rectangle: a mask is a few per row.
        for (r, row) in shown.iter().enumerate() {
            let mut c = 0;
            while c < row.len() {
                let color = scale.color(row[c]);
                let mut end = c + 1;
                while end < row.len() && scale.color(row[end]) == color {
                    end += 1;
                }
                fill_rect(area, xs[c], ys[r], xs[end], ys[r + 1], color)?;
                c = end;
            }
        }
        // White lines between cells when the cells are large enough to read one by one.
        if fr == 1 && fc == 1 && cw.min(ch) >= 12.0 {
            for &x in &xs[1..scols] {
                line(area, (f64::from(x), y0), (f64::from(x), y1), WHITE, 1)?;
            }
            for &y in &ys[1..srows] {
                line(area, (x0, f64::from(y)), (x1, f64::from(y)), WHITE, 1)?;
            }
        }
        stroke_rect(area, x0 as i32, y0 as i32, x1 as i32, y1 as i32, FRAME)?;

        if let Some((labels, px)) = &annotations {
            for (r, row) in labels.iter().enumerate() {
                for (c, label) in row.iter().enumerate() {
                    let fill = scale.color(data[r][c]);
                    let color = if luminance(fill) > 0.4 { TEXT } else { WHITE };
                    let cx = (f64::from(xs[c]) + f64::from(xs[c + 1])) / 2.0;
                    let cy = (f64::from(ys[r]) + f64::from(ys[r + 1])) / 2.0;
                    let spec = TextSpec::new(*px, HPos::Center, VPos::Center).color(color);
                    draw_text(area, label, (cx, cy), spec)?;
                }
            }
        }

        // Column ticks below, row ticks on the left, at cell centres (in original indices).
        let tick_spec = TextSpec::new(TICK_PX, HPos::Center, VPos::Top).color(MUTED);
        for c in index_ticks(cols, cw, true) {
            let cx = x0 + (c as f64 + 0.5) * cw;
            line(area, (cx, y1), (cx, y1 + 4.0), AXIS, 1)?;
            draw_text(area, &c.to_string(), (cx, y1 + 7.0), tick_spec)?;
        }
        let row_spec = TextSpec::new(TICK_PX, HPos::Right, VPos::Center).color(MUTED);
        for r in index_ticks(rows, ch, false) {
            let cy = y0 + (r as f64 + 0.5) * ch;
            line(area, (x0 - 4.0, cy), (x0, cy), AXIS, 1)?;
            draw_text(area, &r.to_string(), (x0 - 7.0, cy), row_spec)?;
        }

        // Axis labels.
        let label_spec = TextSpec::new(x_px, HPos::Center, VPos::Center);
        let x_top = y1 + 4.0 + 4.0 + line_height(TICK_PX) + 6.0;
        draw_lines_centered(area, &x_lines, (x0 + x1) / 2.0, x_top, label_spec)?;
        let y_left = x0 - left_w;
        draw_lines_vertical(
            area,
            &y_lines,
            y_left,
            (y0 + y1) / 2.0,
            TextSpec::new(y_px, HPos::Center, VPos::Center),
        )?;

        // Colour bar: thin strips from vmax (top) to vmin (bottom), framed, with ticks.
        let bx0 = x1 + cbar_gap;
        let bx1 = bx0 + cbar_w;
        let strips = ((y1 - y0) / 2.0).ceil().max(1.0) as usize;
        for i in 0..strips {
            let t0 = y0 + (y1 - y0) * i as f64 / strips as f64;
            let t1 = y0 + (y1 - y0) * (i + 1) as f64 / strips as f64;
            let frac = 1.0 - (i as f64 + 0.5) / strips as f64;
            let v = scale.vmin + frac * (scale.vmax - scale.vmin);
            fill_rect(
                area,
                bx0 as i32,
                t0.round() as i32,
                bx1 as i32,
                t1.round() as i32,
                scale.color(v),
            )?;
        }
        stroke_rect(area, bx0 as i32, y0 as i32, bx1 as i32, y1 as i32, FRAME)?;
        let cbar_spec = TextSpec::new(TICK_PX, HPos::Left, VPos::Center).color(MUTED);
        for (v, label) in cbar_ticks.iter().zip(&cbar_labels) {
            let frac = (v - scale.vmin) / (scale.vmax - scale.vmin);
            let ty = y1 - frac * (y1 - y0);
            line(area, (bx1, ty), (bx1 + 4.0, ty), AXIS, 1)?;
            draw_text(area, label, (bx1 + 7.0, ty), cbar_spec)?;
        }
        Ok(())
    })
}

/// Legend entries fitted into `max_width`: (lines, font size) per name.
fn legend_entries(names: &[String], max_width: f64) -> Vec<(Vec<String>, f64)> {
    names
        .iter()
        .map(|n| fit_lines(n, max_width, LEGEND_PX, 9.0))
        .collect()
}

fn legend_width(entries: &[(Vec<String>, f64)]) -> f64 {
    let text = entries
        .iter()
        .flat_map(|(lines, px)| lines.iter().map(move |l| text_width(l, *px)))
        .fold(0.0, f64::max);
    8.0 + 22.0 + 6.0 + text + 8.0
}

#[derive(Clone, Copy)]
enum Swatch {
    Line,
    Box,
}

/// Draws a framed legend with its top-left corner at (`x`, `y`).
fn draw_legend(
    area: &Area<'_>,
    entries: &[(Vec<String>, f64)],
    (x, y): (f64, f64),
    swatch: Swatch,
) -> DrawResult {
    let width = legend_width(entries);
    let height: f64 = 6.0
        + entries
            .iter()
            .map(|(lines, px)| block_height(lines.len().max(1), *px) + 6.0)
            .sum::<f64>();
    area.draw(&Rectangle::new(
        [px_coord(x, y), px_coord(x + width, y + height)],
        WHITE.filled(),
    ))?;
    stroke_rect(
        area,
        x as i32,
        y as i32,
        (x + width) as i32,
        (y + height) as i32,
        RGBColor(0xCC, 0xCC, 0xCC),
    )?;
    let mut top = y + 6.0;
    for (i, (lines, px)) in entries.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let lh = line_height(*px);
        let mid = top + lh / 2.0;
        match swatch {
            Swatch::Line => line(area, (x + 8.0, mid), (x + 30.0, mid), color, 2)?,
            Swatch::Box => fill_rect(
                area,
                (x + 12.0) as i32,
                (mid - 6.0) as i32,
                (x + 24.0) as i32,
                (mid + 6.0) as i32,
                color,
            )?,
        }
        for (k, l) in lines.iter().enumerate() {
            draw_text(
                area,
                l,
                (x + 36.0, top + k as f64 * lh + lh / 2.0),
                TextSpec::new(*px, HPos::Left, VPos::Center),
            )?;
        }
        top += block_height(lines.len().max(1), *px) + 6.0;
    }
    Ok(())
}

/// Maps data values to pixels along one axis.
#[derive(Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    p0: f64,
    p1: f64,
}

impl Axis {
    fn map(&self, v: f64) -> f64 {
        self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)
    }
}

fn padded_range(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if lo < hi {
        let pad = (hi - lo) * frac;
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

fn draw_line_chart(
    x: &[f64],
    series: &[(String, Vec<f64>)],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    let (w, h) = (f64::from(WIDE_SIZE.0), f64::from(WIDE_SIZE.1));
    let (xmin, xmax) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (xlo, xhi) = if xmin < xmax {
        (xmin, xmax)
    } else {
        padded_range(xmin, xmax, 0.0)
    };
    let (ymin, ymax) = series
        .iter()
        .flat_map(|(_, ys)| ys.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (ylo, yhi) = padded_range(ymin, ymax, 0.05);
    let (x_ticks, x_step) = nice_ticks(xlo, xhi, 9);
    let (y_ticks, y_step) = nice_ticks(ylo, yhi, 7);
    let y_tick_labels: Vec<String> = y_ticks.iter().map(|&v| format_tick(v, y_step)).collect();
    let y_tick_w = y_tick_labels
        .iter()
        .map(|l| text_width(l, TICK_PX))
        .fold(0.0, f64::max);

    let names: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
    let entries = legend_entries(&names, 190.0);
    let legend_w = legend_width(&entries);

    let top = title_height(title, w);
    let (x_lines, x_px) = fit_lines(x_label, w - 200.0, LABEL_PX, 10.0);
    let bottom = 4.0 + 4.0 + line_height(TICK_PX) + 6.0 + block_height(x_lines.len(), x_px) + PAD;
    let plot_h = h - top - bottom;
    let (y_lines, y_px) = fit_lines(y_label, plot_h, LABEL_PX, 10.0);
    let left = PAD + block_height(y_lines.len(), y_px) + 8.0 + y_tick_w + 8.0;
    let right = w - PAD - legend_w - 14.0;
    let xa = Axis {
        lo: xlo,
        hi: xhi,
        p0: left.round(),
        p1: right.round(),
    };
    let ya = Axis {
        lo: ylo,
        hi: yhi,
        p0: (h - bottom).round(),
        p1: top.round(),
    };

    render(WIDE_SIZE, title, |area| {
        draw_title(area, title, w)?;
        // Grid and ticks.
        let tick_spec = TextSpec::new(TICK_PX, HPos::Center, VPos::Top).color(MUTED);
        for &v in &x_ticks {
            let px = xa.map(v);
            line(area, (px, ya.p1), (px, ya.p0), GRID, 1)?;
            line(area, (px, ya.p0), (px, ya.p0 + 4.0), AXIS, 1)?;
            draw_text(area, &format_tick(v, x_step), (px, ya.p0 + 7.0), tick_spec)?;
        }
        let ytick_spec = TextSpec::new(TICK_PX, HPos::Right, VPos::Center).color(MUTED);
        for (&v, label) in y_ticks.iter().zip(&y_tick_labels) {
            let py = ya.map(v);
            line(area, (xa.p0, py), (xa.p1, py), GRID, 1)?;
            line(area, (xa.p0 - 4.0, py), (xa.p0, py), AXIS, 1)?;
            draw_text(area, label, (xa.p0 - 7.0, py), ytick_spec)?;
        }
        // A zero line when 0 lies inside the y range.
        if ylo < 0.0 && yhi > 0.0 {
            let py = ya.map(0.0);
            line(
                area,
                (xa.p0, py),
                (xa.p1, py),
                RGBColor(0xB0, 0xB0, 0xB0),
                1,
            )?;
        }
        // Series.
        for (i, (_, ys)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(i32, i32)> = x
                .iter()
                .zip(ys)
                .map(|(&xv, &yv)| px_coord(xa.map(xv), ya.map(yv)))
                .collect();
            if points.len() == 1 {
                area.draw(&Circle::new(points[0], 3, color.filled()))?;
            } else {
                area.draw(&PathElement::new(
                    points,
                    ShapeStyle::from(&color).stroke_width(2),
                ))?;
            }
        }
        stroke_rect(
            area,
            xa.p0 as i32,
            ya.p1 as i32,
            xa.p1 as i32,
            ya.p0 as i32,
            AXIS,
        )?;
        // Axis labels.
        let x_top = ya.p0 + 4.0 + 4.0 + line_height(TICK_PX) + 6.0;
        draw_lines_centered(
            area,
            &x_lines,
            (xa.p0 + xa.p1) / 2.0,
            x_top,
            TextSpec::new(x_px, HPos::Center, VPos::Center),
        )?;
        draw_lines_vertical(
            area,
            &y_lines,
            PAD,
            (ya.p0 + ya.p1) / 2.0,
            TextSpec::new(y_px, HPos::Center, VPos::Center),
        )?;
        draw_legend(area, &entries, (xa.p1 + 14.0, ya.p1), Swatch::Line)
    })
}

/// Draws bars: `values[group][series]`. With no series names, each group is one bar in its
/// own colour and no legend is drawn.
fn draw_bars(
    groups: &[String],
    names: &[String],
    values: &[Vec<f64>],
    title: &str,
    x_label: &str,
    y_label: &str,
    size: (u32, u32),
) -> Result<Figure> {
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let per_group = values[0].len();
    let all = values.iter().flatten().copied();
    let (vmin, vmax) = all.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (vmin, vmax) = if vmin == vmax {
        (0.0, 1.0)
    } else {
        (vmin, vmax)
    };
    let (ticks, step) = nice_ticks(vmin, vmax, 6);
    // Extend the axis to whole ticks around the data.
    let lo = if vmin < 0.0 {
        (vmin / step).floor() * step
    } else {
        0.0
    };
    let hi = if vmax > 0.0 {
        (vmax / step - 1e-9).ceil() * step
    } else {
        0.0
    };
    let ticks: Vec<f64> = ticks
        .into_iter()
        .chain([lo, hi])
        .filter(|t| *t >= lo - step * 1e-6 && *t <= hi + step * 1e-6)
        .fold(Vec::new(), |mut acc, t| {
            if !acc.iter().any(|a: &f64| (a - t).abs() < step * 1e-6) {
                acc.push(t);
            }
            acc
        });
    let tick_labels: Vec<String> = ticks.iter().map(|&v| format_tick(v, step)).collect();
    let tick_w = tick_labels
        .iter()
        .map(|l| text_width(l, TICK_PX))
        .fold(0.0, f64::max);

    let entries = legend_entries(names, 170.0);
    let legend_w = if names.is_empty() {
        0.0
    } else {
        legend_width(&entries) + 14.0
    };

    let top = title_height(title, w);
    // Provisional plot width to fit the group labels.
    let (y_lines_guess, y_px_guess) = fit_lines(y_label, 250.0, LABEL_PX, 10.0);
    let left = PAD + block_height(y_lines_guess.len(), y_px_guess) + 8.0 + tick_w + 8.0;
    let right = w - PAD - legend_w;
    let slot = (right - left) / groups.len() as f64;
    let group_lines: Vec<(Vec<String>, f64)> = groups
        .iter()
        .map(|g| fit_lines(g, slot - 8.0, 12.0, 8.0))
        .collect();
    let group_px = group_lines.iter().map(|(_, px)| *px).fold(12.0, f64::min);
    let group_line_count = group_lines.iter().map(|(l, _)| l.len()).max().unwrap_or(1);
    let (x_lines, x_px) = fit_lines(x_label, right - left, LABEL_PX, 10.0);
    let x_label_h = if x_lines.is_empty() {
        0.0
    } else {
        block_height(x_lines.len(), x_px) + 4.0
    };
    let bottom = 6.0 + block_height(group_line_count, group_px) + 4.0 + x_label_h + PAD;
    // Headroom above the plot for the value printed over the tallest bar.
    let value_px = if per_group == 1 { 12.0 } else { 10.0 };
    let headroom = if hi > 0.0 {
        line_height(value_px) + 4.0
    } else {
        0.0
    };
    let footroom = if lo < 0.0 {
        line_height(value_px) + 4.0
    } else {
        0.0
    };
    let plot_top = top + headroom;
    let plot_bottom = h - bottom - footroom;
    let (y_lines, y_px) = fit_lines(y_label, plot_bottom - plot_top, LABEL_PX, 10.0);
    let ya = Axis {
        lo,
        hi,
        p0: plot_bottom.round(),
        p1: plot_top.round(),
    };

    // Bars inside a slot: a single bar takes 60 % of it (at most 110 px), a group 80 %.
    let group_w = if per_group == 1 {
        (slot * 0.6).min(110.0)
    } else {
        slot * 0.8
    };
    let bar_w = group_w / per_group as f64;
    let value_labels: Vec<Vec<String>> = values
        .iter()
        .map(|vs| vs.iter().map(|&v| format_value(v)).collect())
        .collect();
    let widest_value = value_labels
        .iter()
        .flatten()
        .map(|l| text_width(l, value_px))
        .fold(0.0, f64::max);
    let room = if per_group == 1 {
        slot - 4.0
    } else {
        bar_w + 4.0
    };
    let value_px = if widest_value <= room {
        Some(value_px)
    } else if per_group == 1 {
        Some((value_px * room / widest_value).max(8.0))
    } else {
        None
    };

    render(size, title, |area| {
        draw_title(area, title, w)?;
        let ytick_spec = TextSpec::new(TICK_PX, HPos::Right, VPos::Center).color(MUTED);
        for (&v, label) in ticks.iter().zip(&tick_labels) {
            let py = ya.map(v);
            line(area, (left, py), (right, py), GRID, 1)?;
            line(area, (left - 4.0, py), (left, py), AXIS, 1)?;
            draw_text(area, label, (left - 7.0, py), ytick_spec)?;
        }
        let zero = ya.map(0.0).round();
        for (g, vs) in values.iter().enumerate() {
            let centre = left + (g as f64 + 0.5) * slot;
            let start = centre - group_w / 2.0;
            for (s, &v) in vs.iter().enumerate() {
                let color = if per_group == 1 {
                    PALETTE[g % PALETTE.len()]
                } else {
                    PALETTE[s % PALETTE.len()]
                };
                let bx0 = (start + s as f64 * bar_w).round();
                let bx1 = (start + (s + 1) as f64 * bar_w).round()
                    - if per_group > 1 { 1.0 } else { 0.0 };
                let py = ya.map(v).round();
                let (t, b) = if py < zero { (py, zero) } else { (zero, py) };
                if b > t {
                    fill_rect(area, bx0 as i32, t as i32, bx1 as i32, b as i32, color)?;
                }
                if let Some(px) = value_px {
                    let label = &value_labels[g][s];
                    let cx = (bx0 + bx1) / 2.0;
                    if v < 0.0 {
                        let spec = TextSpec::new(px, HPos::Center, VPos::Top);
                        draw_text(area, label, (cx, b + 3.0), spec)?;
                    } else {
                        let spec = TextSpec::new(px, HPos::Center, VPos::Bottom);
                        draw_text(area, label, (cx, t - 3.0), spec)?;
                    }
                }
            }
            let (lines, _) = &group_lines[g];
            draw_lines_centered(
                area,
                lines,
                centre,
                ya.p0 + footroom + 6.0,
                TextSpec::new(group_px, HPos::Center, VPos::Center),
            )?;
        }
        // Axes: the value axis on the left and the zero line.
        line(area, (left, ya.p1), (left, ya.p0), AXIS, 1)?;
        line(area, (left, zero), (right, zero), AXIS, 1)?;
        if !x_lines.is_empty() {
            let x_top = ya.p0 + footroom + 6.0 + block_height(group_line_count, group_px) + 4.0;
            draw_lines_centered(
                area,
                &x_lines,
                (left + right) / 2.0,
                x_top,
                TextSpec::new(x_px, HPos::Center, VPos::Center),
            )?;
        }
        draw_lines_vertical(
            area,
            &y_lines,
            PAD,
            (ya.p0 + ya.p1) / 2.0,
            TextSpec::new(y_px, HPos::Center, VPos::Center),
        )?;
        if !names.is_empty() {
            draw_legend(area, &entries, (right + 14.0, top), Swatch::Box)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_compact() {
        assert_eq!(format_cell(0.0), "0");
        assert_eq!(format_cell(-0.0), "0");
        assert_eq!(format_cell(2.0), "2");
        assert_eq!(format_cell(0.349), "0.35");
        assert_eq!(format_cell(0.5), "0.5");
        assert_eq!(format_cell(-0.704), "-0.7");
        assert_eq!(format_cell(12.34), "12.3");
        assert_eq!(format_cell(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_cell(0.004), "0.004");
        assert_eq!(format_cell(0.0001), "1e-4");
    }

    #[test]
    fn values_have_three_significant_digits() {
        assert_eq!(format_value(0.012345), "0.0123");
        assert_eq!(format_value(1.634), "1.63");
        assert_eq!(format_value(78.71), "78.7");
        assert_eq!(format_value(1234.4), "1234");
        assert_eq!(format_value(64.0), "64");
        assert_eq!(format_value(1.5), "1.5");
    }

    #[test]
    fn ticks_are_nice() {
        let (t, s) = nice_ticks(0.0, 1.0, 6);
        assert_eq!(s, 0.2);
        assert_eq!(t.len(), 6);
        assert_eq!(format_tick(t[1], s), "0.2");
        let (t, s) = nice_ticks(-1.0, 1.0, 6);
        assert_eq!(s, 0.5);
        assert_eq!(t.len(), 5);
        assert_eq!(format_tick(t[2], s), "0.0");
        assert_eq!(index_ticks(6, 50.0, true), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(
            index_ticks(50, 7.0, false),
            (0..50).step_by(5).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bilingual_labels_split_when_too_wide() {
        let (lines, px) = fit_lines("Causal mask / 因果掩码", 1000.0, 16.0, 10.0);
        assert_eq!((lines.len(), px), (1, 16.0));
        let (lines, _) = fit_lines("Causal mask / 因果掩码", 110.0, 16.0, 10.0);
        assert_eq!(
            lines,
            vec!["Causal mask".to_string(), "因果掩码".to_string()]
        );
        assert!(text_width("因果", 10.0) > text_width("ab", 10.0));
    }

    #[test]
    fn font_sizes_are_written_tidily() {
        let svg =
            "<text font-size=\"13.000000000000002\" x=\"1\">a</text><text font-size=\"10.5\">";
        assert_eq!(
            tidy_font_sizes(svg),
            "<text font-size=\"13\" x=\"1\">a</text><text font-size=\"10.5\">"
        );
    }
}
