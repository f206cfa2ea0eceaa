//! Pictures for the lessons, drawn as SVG with [plotters](https://docs.rs/plotters)' chart API:
//! [`heatmap`], [`line_chart`], [`bar_chart`], [`grouped_bar_chart`], [`side_by_side`] and
//! [`mask_round_trip`] each return a
//! [`Figure`], which a notebook shows inline ([`Show::show`], or as a cell's value) and
//! [`Figure::save_svg`] writes to a file.
//!
//! Every text on a figure comes from the caller (title, axis labels, series names), so a
//! figure speaks the notebook's language; only numbers are made here. Text stays text in the
//! SVG, in the `sans-serif` family, which browsers complete with a CJK font. With no font
//! library, widths are estimated by [`text`], which knows that a Chinese character is one em
//! wide; a title too wide for its figure wraps. Bad input (no data, series of different
//! lengths, NaN, a tensor that is not 2-D) is an [`Error::Plot`] that says what is wrong.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use plotters::chart::MeshStyle;
use plotters::coord::{types::RangedCoordf64, Shift};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::notebook::display::{html_escape, Show};
use crate::notebook::language::Language;
use text::{text_width, wrap};

mod bars;
mod compose;
mod heatmap;
mod lines;
mod text;

pub use bars::{bar_chart, grouped_bar_chart};
pub use compose::{mask_round_trip, side_by_side};
pub use heatmap::heatmap;
pub use lines::line_chart;

/// A finished picture: an SVG document and the title it was drawn with.
///
/// ```
/// use understanding_buffers::notebook::{display::Show, plots::bar_chart};
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let fig = bar_chart(&[("f32".into(), 4.0), ("u8".into(), 1.0)], "每个元素的字节数", "字节")?;
/// assert!(fig.svg().starts_with("<svg") && fig.title() == "每个元素的字节数");
/// assert!(fig.rich().1.starts_with("<div class=\"ub-figure\">\n<svg"));
/// assert!(fig.plain().starts_with("[figure: 每个元素的字节数, SVG "));
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
    /// # fn main() -> understanding_buffers::error::Result<()> {
    /// let fig = understanding_buffers::notebook::plots::bar_chart(&[("a".into(), 1.0)], "One bar", "")?;
    /// fig.save_svg("one_bar.svg")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, &self.svg).map_err(|err| {
            let (title, path) = (&self.title, path.display());
            Error::Plot(format!(
                "cannot write the figure {title:?} to {path}: {err}; check that the folder exists and is writable"
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
        let (title, bytes) = (&self.title, self.svg.len());
        write!(f, "Figure {{ title: {title:?}, svg_bytes: {bytes} }}")
    }
}

impl Show for Figure {
    /// `text/html`: the SVG inline, wrapped in `<div class="ub-figure">`.
    fn rich(&self) -> (&'static str, String) {
        let html = format!("<div class=\"ub-figure\">\n{}</div>", self.svg);
        ("text/html", html)
    }

    /// One line in the notebook's language, e.g. `[figure: Causal mask, SVG 12345 bytes]`,
    /// `[图：因果掩码，SVG，12345 字节]`.
    fn plain(&self) -> String {
        let title = self.title.split_whitespace().collect::<Vec<_>>().join(" ");
        let bytes = self.svg.len();
        match Language::current() {
            Language::English => format!("[figure: {title}, SVG {bytes} bytes]"),
            Language::Chinese => format!("[图：{title}，SVG，{bytes} 字节]"),
        }
    }
}

// What the figure kinds share.

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Mesh<'m, 'a, 'b> = &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, SVGBackend<'a>>;
type Drawn<T = ()> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;
type Series = [(String, Vec<f64>)];

const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x44, 0x44, 0x44);
const TITLE_PX: f64 = 16.0;
const LABEL_PX: f64 = 14.0;
const TICK_PX: f64 = 12.0;
/// The margin around a chart, in pixels.
const M: u32 = 10;

/// matplotlib's "tab10" palette, for series and bars.
fn palette(i: usize) -> RGBColor {
    let tab10: [u32; 10] = [
        0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD, 0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22,
        0x17BECF,
    ];
    let c = tab10[i % tab10.len()];
    RGBColor((c >> 16) as u8, (c >> 8) as u8, c as u8)
}

/// A sans-serif font of `px` pixels (plotters' SVG backend writes the size it is given / 1.24).
fn font(px: f64, color: RGBColor) -> TextStyle<'static> {
    FontDesc::new(FontFamily::SansSerif, px * 1.24, FontStyle::Normal).color(&color)
}

/// The size at which `text` fits `room` pixels: at most `px`, but not below 9.
fn fit_px(px: f64, room: f64, text: &str) -> f64 {
    let shrunk = ((px * room / text_width(text, px).max(1.0)) * 2.0).floor() / 2.0;
    shrunk.min(px).max(9.0)
}

/// `v` with `digits` significant digits, trailing zeros dropped: `0.0213`, `0.35`, `4096`.
fn number(v: f64, digits: i32) -> String {
    if !v.is_finite() || v == 0.0 {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let exponent = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&exponent) {
        let mantissa = number(v / 10f64.powi(exponent), digits);
        return format!("{mantissa}e{exponent}");
    }
    let decimals = (digits - 1 - exponent).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let trimmed = s.trim_end_matches('0').trim_end_matches('.');
    let s = if s.contains('.') { trimmed } else { &s };
    if s == "-0" { "0" } else { s }.to_string()
}

/// A tick on an axis spanning `span`, rounding noise around 0 (`5.5e-17`) dropped.
fn tick(v: f64, span: f64) -> String {
    number(if v.abs() < span * 1e-9 { 0.0 } else { v }, 3)
}

/// The width of the widest tick plotters puts on an axis over `range`, at most `n` ticks.
fn tick_width(range: Range<f64>, n: usize) -> f64 {
    let span = range.end - range.start;
    let ticks = RangedCoordf64::from(range).key_points(n);
    let width = |v: &f64| text_width(&tick(*v, span), TICK_PX);
    ticks.iter().map(width).fold(0.0, f64::max)
}

/// The title's lines on a figure `width` pixels wide (bold is about 10 % wider).
fn title_lines(title: &str, width: u32) -> Vec<String> {
    wrap(title, f64::from(width) - 24.0, TITLE_PX * 1.1)
}

/// The layout of a chart of about `size` pixels: the canvas size (taller when the title
/// needs it), the height of the title, the room below the plot (ticks, `extra` pixels, the x
/// label) and left of it (ticks `tick_w` wide, the y label), the plot's width and height, and
/// the axis labels' size (as large as fits along both axes).
fn frame(size: (u32, u32), title: &str, labels: (&str, &str), tick_w: f64, extra: u32) -> Frame {
    // plotters' `titled` puts 5 px above and below each line of the title.
    let top = title_lines(title, size.0).len() as u32 * (TITLE_PX as u32 + 10);
    let (x, y) = (!labels.0.is_empty(), !labels.1.is_empty());
    let label = 8.0 + LABEL_PX * 1.3;
    let bottom = (8.0 + TICK_PX * 1.3 + if x { label } else { 0.0 }) as u32 + 1 + extra;
    let left = (8.0 + tick_w + if y { label } else { 0.0 }) as u32 + 1;
    let w = size.0.saturating_sub(left + 2 * M).max(60);
    let h = size.1.saturating_sub(top + bottom + 2 * M).max(60);
    let size = (left + 2 * M + w, top + bottom + 2 * M + h);
    let fits = |room: u32, label: &str| fit_px(LABEL_PX, f64::from(room), label);
    let label_px = fits(w, labels.0).min(fits(h, labels.1));
    Frame {
        size,
        top,
        bottom,
        left,
        w,
        h,
        label_px,
    }
}

/// See [`frame`].
struct Frame {
    size: (u32, u32),
    top: u32,
    bottom: u32,
    left: u32,
    w: u32,
    h: u32,
    label_px: f64,
}

/// A chart on `area`, laid out by `f`, over `x` × `y`.
fn chart<'a>(area: &Area<'a>, f: &Frame, x: Range<f64>, y: Range<f64>) -> Drawn<Chart<'a>> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(M).x_label_area_size(f.bottom);
    builder.y_label_area_size(f.left).build_cartesian_2d(x, y)
}

/// The axes' look: grey axes with 4-px ticks, light grid lines, the axis labels (x, y) when
/// given, at `px`.
fn axes<'m, 'a, 'b>(mesh: Mesh<'m, 'a, 'b>, labels: (&str, &str), px: f64) -> Mesh<'m, 'a, 'b> {
    let grid = RGBColor(0xE4, 0xE4, 0xE4);
    mesh.set_all_tick_mark_size(4)
        .axis_style(RGBColor(0x66, 0x66, 0x66));
    mesh.light_line_style(TRANSPARENT).bold_line_style(grid);
    mesh.label_style(font(TICK_PX, MUTED))
        .axis_desc_style(font(px, TEXT));
    if !labels.0.is_empty() {
        mesh.x_desc(labels.0);
    }
    if !labels.1.is_empty() {
        mesh.y_desc(labels.1);
    }
    mesh
}

/// Draws on a white canvas of `size` pixels under the title, and wraps the result as a
/// [`Figure`] whose SVG also carries the whole title in a `<title>` element.
fn render(size: (u32, u32), title: &str, draw: impl FnOnce(&Area) -> Drawn) -> Result<Figure> {
    let mut svg = String::new();
    let bold = FontDesc::new(FontFamily::SansSerif, TITLE_PX * 1.24, FontStyle::Bold);
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let mut area = root.clone();
        let drawn = root.fill(&WHITE).and_then(|()| {
            for line in title_lines(title, size.0) {
                area = area.titled(&line, bold.color(&TEXT))?;
            }
            draw(&area)
        });
        let failed = |err| Error::Plot(format!("could not draw the figure {title:?}: {err}"));
        drawn.and_then(|()| root.present()).map_err(failed)?;
    }
    let at = svg.find(">\n").map_or(0, |end| end + 2);
    svg.insert_str(at, &format!("<title>{}</title>\n", html_escape(title)));
    let title = title.to_string();
    Ok(Figure { svg, title })
}

/// Draws the legend of `series`, with plotters' series labels, in the corner of the plot
/// that covers the fewest `occupied` boxes (x0, y0, x1, y1) of the data, on a white box as
/// wide as the names (measured knowing CJK: plotters would count bytes).
fn legend(chart: &mut Chart<'_>, series: &Series, occupied: &[(f64, f64, f64, f64)]) -> Drawn {
    let widest = series.iter().map(|(name, _)| text_width(name, TICK_PX));
    let w = (44.0 + widest.fold(0.0, f64::max)) as i32;
    // plotters spaces the lines by 1.25 × the size it is given (px × 1.24).
    let h = ((series.len() as f64 - 1.0) * TICK_PX * 1.55 + TICK_PX + 14.0) as i32;
    let area = chart.plotting_area().strip_coord_spec();
    let ((pw, ph), (bx, by)) = (area.dim_in_pixel(), area.get_base_pixel());
    let pixel = |x: f64, y: f64| chart.backend_coord(&(x, y));
    let covered = |&(x, y): &(i32, i32)| {
        let (x0, y0, x1, y1) = (bx + x, by + y, bx + x + w, by + y + h);
        let hit = |b: &&(f64, f64, f64, f64)| {
            let ((left, top), (right, bottom)) = (pixel(b.0, b.3), pixel(b.2, b.1));
            left <= x1 && x0 <= right && top <= y1 && y0 <= bottom
        };
        occupied.iter().filter(hit).count()
    };
    let (right, low) = (pw as i32 - w - 8, ph as i32 - h - 8);
    let corners = [(right, 8), (8, 8), (right, low), (8, low)];
    let (x, y) = corners.into_iter().min_by_key(covered).unwrap_or((8, 8));
    let corners = [(x, y), (x + w, y + h)];
    area.draw(&Rectangle::new(corners, WHITE.mix(0.85).filled()))?;
    area.draw(&Rectangle::new(corners, RGBColor(0xBB, 0xBB, 0xBB)))?;
    let mut labels = chart.configure_series_labels();
    labels.position(SeriesLabelPosition::Coordinate(x, y));
    labels.margin(7).legend_area_size(30);
    labels
        .label_font(font(TICK_PX, TEXT))
        .border_style(TRANSPARENT);
    labels.background_style(TRANSPARENT).draw()
}

/// An [`Error::Plot`] for the figure `title` of this `kind`.
fn invalid(kind: &str, title: &str, what: impl fmt::Display) -> Error {
    Error::Plot(format!("cannot draw the {kind} {title:?}: {what}"))
}

/// Checks that there are `series`, each with a finite value for each of `n` `per`s.
fn check(fig: (&str, &str), series: &Series, n: usize, per: &str) -> Result<()> {
    let fail = |what: String| Err(invalid(fig.0, fig.1, what));
    if series.is_empty() {
        return fail("no series were given; pass at least one (name, values) pair".into());
    }
    for (name, values) in series {
        let count = values.len();
        if count != n {
            return fail(format!(
                "series {name:?} has {count} values but there are {n} {per}s; \
                 every series needs one value per {per}"
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let v = values[i];
            return fail(format!(
                "value {i} of series {name:?} is {v}; every value must be a finite number"
            ));
        }
    }
    Ok(())
}
