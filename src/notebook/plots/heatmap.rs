//! [`heatmap`]: a matrix as coloured cells, with a colour bar.

use candle_core::{DType, Device, Tensor};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;

/// Matrices with more rows or columns than this are shown block-averaged.
const MAX_CELLS: usize = 64;
/// The colour of `-inf` and `inf` cells (e.g. masked attention scores).
const NOT_FINITE: RGBColor = RGBColor(0xC8, 0xC8, 0xC8);
const WIDTH: u32 = 600;
const MAX_HEIGHT: u32 = 440;

/// A heat map of a 2-D tensor, like matplotlib's `imshow`: row 0 at the top, row and column
/// indices as tick labels, and a viridis colour bar from the smallest finite value to the
/// largest. The tensor may have any dtype and live on any device.
///
/// Up to 16 × 16, each cell shows its value (`0`, `2`, `0.35`) when the text fits the cell.
/// Matrices with more than 64 rows or columns are drawn block-averaged. `-inf` and `inf`
/// (e.g. masked attention scores) are grey cells; NaN, a tensor that is not 2-D and an empty
/// one are errors.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let mask = Tensor::tril2(6, DType::F32, &Device::Cpu)?.affine(-1.0, 1.0)?;
/// let fig = understanding_buffers::notebook::plots::heatmap(&mask, "因果掩码", "键的位置", "查询的位置")?;
/// assert!(fig.svg().contains("因果掩码"));
/// let batch = Tensor::zeros((2, 6, 6), DType::F32, &Device::Cpu)?;
/// let err = understanding_buffers::notebook::plots::heatmap(&batch, "Causal mask", "key", "query");
/// assert!(err.unwrap_err().to_string().contains("2-D"));
/// # Ok(())
/// # }
/// ```
pub fn heatmap(values: &Tensor, title: &str, x_label: &str, y_label: &str) -> Result<Figure> {
    heatmap_on_scale(values, None, "", title, x_label, y_label)
}

/// [`heatmap`] with the colour bar spanning at least `scale` (`lo..hi`) and labelled
/// `bar_label` (none when empty): heat maps meant to be compared side by side share one
/// scale, so one colour means one value in all of them.
pub(super) fn heatmap_on_scale(
    values: &Tensor,
    scale: Option<(f64, f64)>,
    bar_label: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    let dims = values.dims();
    if dims.len() != 2 {
        let what = format!(
            "a heat map needs a 2-D tensor (rows × columns), got a {}-D tensor of shape {dims:?}; \
             pick one matrix first, e.g. `t.get(0)?` for the first of a batch, or `t.squeeze(0)?`",
            dims.len()
        );
        return Err(invalid("heat map", title, what));
    }
    if dims[0] == 0 || dims[1] == 0 {
        let what =
            format!("the tensor is empty, of shape {dims:?}; a heat map needs a row and a column");
        return Err(invalid("heat map", title, what));
    }
    let cpu = values.to_device(&Device::Cpu)?;
    let data: Vec<Vec<f64>> = cpu.to_dtype(DType::F64)?.to_vec2()?;
    for (r, row) in data.iter().enumerate() {
        if let Some(c) = row.iter().position(|v| v.is_nan()) {
            let what = format!(
                "the value at row {r}, column {c} is NaN; find where it comes from \
                 (e.g. a softmax over a row that is masked entirely)"
            );
            return Err(invalid("heat map", title, what));
        }
    }
    draw(&data, (scale, bar_label), title, x_label, y_label)
}

/// How many index ticks to ask plotters for on an axis of `n` cells, `cell` pixels each: as
/// many as the finest 1-2-5 stride gives that leaves room between labels and keeps at most
/// 16 (plotters then picks that stride).
fn index_ticks(n: usize, cell: f64, horizontal: bool) -> usize {
    let digits = text_width(&(n - 1).to_string(), TICK_PX) + 6.0;
    let room = if horizontal { digits } else { TICK_PX * 1.4 };
    let strides = (0..21u32).map(|k| [1, 2, 5][k as usize % 3] * 10usize.pow(k / 3));
    let mut fits = strides.filter(|&s| n.div_ceil(s) <= 16 && cell * s as f64 >= room);
    n.div_ceil(fits.next().unwrap_or(n))
}

/// The cells to draw: rows r0..r1, columns c0..c1, value; block means (of the finite
/// values, if any) when the matrix is larger than `MAX_CELLS`.
fn cells(data: &[Vec<f64>]) -> Vec<(usize, usize, usize, usize, f64)> {
    let (rows, cols) = (data.len(), data[0].len());
    let (fr, fc) = (rows.div_ceil(MAX_CELLS), cols.div_ceil(MAX_CELLS));
    let row_starts = (0..rows).step_by(fr);
    let corners = row_starts.flat_map(|r| (0..cols).step_by(fc).map(move |c| (r, c)));
    let cell = |(r0, c0): (usize, usize)| {
        let (r1, c1) = ((r0 + fr).min(rows), (c0 + fc).min(cols));
        let block: Vec<f64> = data[r0..r1]
            .iter()
            .flat_map(|row| &row[c0..c1])
            .copied()
            .collect();
        let finite: Vec<f64> = block.iter().copied().filter(|v| v.is_finite()).collect();
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let value = if finite.is_empty() { block[0] } else { mean };
        (r0, r1, c0, c1, value)
    };
    corners.map(cell).collect()
}

fn draw(
    data: &[Vec<f64>],
    (scale, bar_label): (Option<(f64, f64)>, &str),
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    let (rows, cols) = (data.len(), data[0].len());
    let finite = data.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = scale.map_or((lo, hi), |(a, b)| (lo.min(a), hi.max(b)));
    let (lo, hi) = match (lo.min(0.0), hi.max(0.0)) {
        _ if lo < hi => (lo, hi),
        (a, b) if a < b => (a, b),
        _ => (0.0, 1.0),
    };
    let viridis = |v: f64| ViridisRGB.get_color_normalized(v, lo, hi);
    let colour = |v: f64| {
        if v.is_finite() {
            viridis(v)
        } else {
            NOT_FINITE
        }
    };
    let cells = cells(data);

    // Layout: the title; the y label, row ticks, cells and colour bar; column ticks, x label.
    let bar_ticks = (12.0 + tick_width(lo..hi, 6)) as u32;
    // The colour bar's label, if any, runs upwards right of its ticks.
    let bar_label_w = if bar_label.is_empty() {
        0
    } else {
        (TICK_PX * 1.6) as u32
    };
    let right = 16 + 14 + bar_ticks + bar_label_w;
    let labels = (x_label, y_label);
    let row_ticks = text_width(&(rows - 1).to_string(), TICK_PX);
    let f = frame(
        (WIDTH.saturating_sub(right), MAX_HEIGHT),
        title,
        labels,
        row_ticks,
        0,
    );
    let (avail_w, avail_h) = (f64::from(f.w) / cols as f64, f64::from(f.h) / rows as f64);
    // Square cells (like imshow) while the matrix is roughly square or its cells are big
    // enough to read one by one; otherwise stretched (a 50 × 16 table would be a thin strip).
    let square = avail_w.min(avail_h);
    let stretch = rows.max(cols) > 2 * rows.min(cols) && square < 16.0;
    let (cw, ch) = if stretch {
        (avail_w, avail_h)
    } else {
        (square, square)
    };
    let (pw, ph) = ((cw * cols as f64) as u32, (ch * rows as f64) as u32);
    let label_px = fit_px(f.label_px, f64::from(ph), y_label);
    let label_px = fit_px(label_px, f64::from(pw), x_label);
    let indent = (f.w - pw) / 2;
    // Annotations, when the matrix is small and every value fits its cell.
    let texts: Vec<String> = cells.iter().map(|c| number(c.4, 2)).collect();
    let base = (cw.min(ch) * 0.4).min(14.0);
    let fit = |t: &String| fit_px(base, cw - 4.0, t);
    let px = texts.iter().map(fit).fold(base, f64::min).max(9.0);
    let fits = |t: &String| text_width(t, px) <= cw - 4.0;
    let annotate = rows.max(cols) <= 16 && texts.iter().all(fits);

    let size = (f.size.0 + right, f.top + 2 * M + ph + f.bottom);
    render(size, title, |area| {
        let area = area.margin(0, 0, indent, indent);
        let (main, side) = area.split_horizontally(2 * M + f.left + pw);
        let (x, y) = (-0.5..cols as f64 - 0.5, rows as f64 - 0.5..-0.5);
        let mut chart = chart(&main, &f, x, y)?;
        let index = |v: &f64| format!("{}", v.round() as i64);
        let (nx, ny) = (index_ticks(cols, cw, true), index_ticks(rows, ch, false));
        let mut mesh = chart.configure_mesh();
        let mesh = axes(&mut mesh, labels, label_px).disable_mesh();
        mesh.x_labels(nx).y_labels(ny).x_label_formatter(&index);
        mesh.y_label_formatter(&index).draw()?;
        // A white line between cells big enough to read one by one.
        let gap = u32::from(rows.max(cols) <= MAX_CELLS && cw.min(ch) >= 12.0);
        let rect = |&(r0, r1, c0, c1, v): &(usize, usize, usize, usize, f64)| {
            let corner = |r: usize, c: usize| (c as f64 - 0.5, r as f64 - 0.5);
            let mut rect = Rectangle::new([corner(r0, c0), corner(r1, c1)], colour(v).filled());
            rect.set_margin(0, gap, 0, gap);
            rect
        };
        chart.draw_series(cells.iter().map(rect))?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        let text = |(&(r, _, c, _, v), label): (&(_, _, _, _, f64), &String)| {
            let RGBColor(red, green, blue) = colour(v);
            let light = 2126 * u32::from(red) + 7152 * u32::from(green) + 722 * u32::from(blue);
            let style = font(px, if light > 1_280_000 { TEXT } else { WHITE }).pos(centre);
            Text::new(label.clone(), (c as f64, r as f64), style)
        };
        if annotate {
            chart.draw_series(cells.iter().zip(&texts).map(text))?;
        }

        // The colour bar: a chart of its own beside the cells, its ticks on the right.
        let mut bar = ChartBuilder::on(&side);
        bar.margin(M).margin_left(16 - M);
        bar.x_label_area_size(f.bottom)
            .right_y_label_area_size(bar_ticks + bar_label_w);
        let mut bar = bar.build_cartesian_2d(0.0..1.0, lo..hi)?;
        let bar_tick = |v: &f64| tick(*v, hi - lo);
        let mut mesh = bar.configure_mesh();
        let mesh = axes(&mut mesh, ("", ""), LABEL_PX).disable_mesh();
        mesh.disable_x_axis()
            .y_labels(6)
            .y_label_formatter(&bar_tick);
        mesh.draw()?;
        let at = |i: usize| lo + (hi - lo) * i as f64 / 48.0;
        let fill = |i: usize| viridis(at(i) / 2.0 + at(i + 1) / 2.0).filled();
        let strip = |i| Rectangle::new([(0.0, at(i)), (1.0, at(i + 1))], fill(i));
        bar.draw_series((0..48).map(strip))?;
        if !bar_label.is_empty() {
            let (w, _) = side.dim_in_pixel();
            let px = fit_px(TICK_PX, f64::from(ph), bar_label);
            let style = font(px, TEXT)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let at = (w as i32 - (TICK_PX * 0.8) as i32, M as i32 + ph as i32 / 2);
            side.draw(&Text::new(bar_label.to_string(), at, style))?;
        }
        Ok(())
    })
}
