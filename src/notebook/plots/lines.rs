//! [`line_chart`]: several series against a shared x axis.

use super::*;

/// A line chart of several series against shared x values, with a legend in the corner of
/// the plot that hides the fewest points. Each series is `(name, y values)`, one value per x
/// value; a single x value is drawn as dots.
///
/// Errors: no x values, no series, a series whose length differs from `x`, NaN or infinite
/// values.
///
/// ```
/// use understanding_buffers::notebook::plots::line_chart;
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let x: Vec<f32> = (0..50).map(|p| p as f32).collect();
/// let series = [("维度 0".to_string(), x.iter().map(|p| p.sin()).collect())];
/// assert!(line_chart(&x, &series, "位置编码", "位置", "取值")?.svg().contains("维度 0"));
/// let short = [("short".to_string(), vec![0.0; 3])];
/// assert!(line_chart(&x, &short, "t", "x", "y").unwrap_err().to_string().contains("short"));
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
    let x: Vec<f64> = x.iter().map(|&v| v.into()).collect();
    let widen =
        |(name, ys): &(String, Vec<f32>)| (name.clone(), ys.iter().map(|&v| v.into()).collect());
    let series: Vec<(String, Vec<f64>)> = series.iter().map(widen).collect();
    if x.is_empty() {
        return Err(invalid("line chart", title, "no x values were given"));
    }
    check(("line chart", title), &series, x.len(), "x value")?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        let v = x[i];
        let what = format!("x value {i} is {v}; every x value must be a finite number");
        return Err(invalid("line chart", title, what));
    }
    let xs = span(x.iter(), 0.0);
    let ys = span(series.iter().flat_map(|(_, ys)| ys), 0.05);
    let labels = (x_label, y_label);
    let f = frame((640, 400), title, labels, tick_width(ys.clone(), 8), 0);
    render(f.size, title, |area| {
        let (x_span, y_span) = (xs.end - xs.start, ys.end - ys.start);
        let mut chart = chart(area, &f, xs, ys)?;
        let (x_tick, y_tick) = (|v: &f64| tick(*v, x_span), |v: &f64| tick(*v, y_span));
        let mut mesh = chart.configure_mesh();
        let mesh = axes(&mut mesh, labels, f.label_px).x_labels(10).y_labels(8);
        mesh.x_label_formatter(&x_tick).y_label_formatter(&y_tick);
        mesh.draw()?;
        let mut occupied = Vec::new();
        for (i, (name, ys)) in series.iter().enumerate() {
            let style = palette(i).filled().stroke_width(2);
            let points: Vec<(f64, f64)> = x.iter().copied().zip(ys.iter().copied()).collect();
            occupied.extend(points.iter().map(|&(a, b)| (a, b, a, b)));
            let dots = if points.len() == 1 { 4 } else { 0 };
            let drawn = chart.draw_series(LineSeries::new(points, style).point_size(dots))?;
            let swatch = move |(x, y)| PathElement::new([(x, y), (x + 22, y)], style);
            drawn.label(name).legend(swatch);
        }
        legend(&mut chart, &series, &occupied)
    })
}

/// `lo..hi` of `values`, widened by `pad` of the span (by 0.5 when all are equal).
fn span<'v>(values: impl Iterator<Item = &'v f64>, pad: f64) -> Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = if lo < hi { (hi - lo) * pad } else { 0.5 };
    lo - pad..hi + pad
}
