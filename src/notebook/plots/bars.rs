//! [`bar_chart`] and [`grouped_bar_chart`]: values as bars, printed above them.

use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;

/// A bar chart: one bar per `(label, value)`, each in its own colour, the value printed
/// above the bar (below it if negative) with three significant digits, the label under the
/// bar (wrapped if it is too long). Errors: no bars, NaN or infinite values.
///
/// ```
/// use understanding_buffers::notebook::plots::bar_chart;
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let times = [("设备上的缓冲区".to_string(), 0.021), ("每次从 CPU 复制".to_string(), 0.412)];
/// assert!(bar_chart(&times, "一次前向传播的耗时", "毫秒")?.svg().contains("0.412"));
/// assert!(bar_chart(&[], "Mask cost", "ms").is_err());
/// # Ok(())
/// # }
/// ```
pub fn bar_chart(bars: &[(String, f64)], title: &str, value_label: &str) -> Result<Figure> {
    if bars.is_empty() {
        let what = "no bars were given; pass at least one (label, value) pair";
        return Err(invalid("bar chart", title, what));
    }
    if let Some((label, v)) = bars.iter().find(|(_, v)| !v.is_finite()) {
        let what = format!("bar {label:?} has the value {v}; every value must be a finite number");
        return Err(invalid("bar chart", title, what));
    }
    let groups: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let values = [(String::new(), bars.iter().map(|(_, v)| *v).collect())];
    draw(&groups, &values, title, ("", value_label))
}

/// A grouped bar chart: for each group (an x position such as a context length), one bar
/// per series, side by side, with a legend; values are printed above the bars when they fit.
/// Each series is `(name, values)`, one value per group in the order of `groups`.
///
/// Errors: no groups, no series, a series whose length differs from the number of groups,
/// NaN or infinite values.
///
/// ```
/// use understanding_buffers::notebook::plots::grouped_bar_chart;
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let contexts = ["1024", "4096"].map(String::from);
/// let series = [("f32 mask".to_string(), vec![4.0, 64.0]), ("u8 mask".to_string(), vec![1.0, 16.0])];
/// let fig = grouped_bar_chart(&contexts, &series, "Mask memory", "context length", "MiB")?;
/// assert!(fig.svg().contains("u8 mask"));
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
        return Err(invalid("bar chart", title, "no groups were given"));
    }
    check(("bar chart", title), series, groups.len(), "group")?;
    draw(groups, series, title, (x_label, y_label))
}

/// Draws `series[s].1[g]` as bar `s` of group `g`. One series: a bar per group in its own
/// colour and no legend; several: a colour per series and a legend.
fn draw(groups: &[String], series: &Series, title: &str, labels: (&str, &str)) -> Result<Figure> {
    let (n, k) = (groups.len(), series.len());
    let size = (if k == 1 { 560 } else { 640 }, 400);
    let all = series.iter().flat_map(|(_, vs)| vs);
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    // Room above the bars (and below negative ones) for the printed values.
    let pad = if lo == hi { 1.0 } else { (hi - lo) * 0.12 };
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    // The group labels, wrapped to their slot, take as many lines as the longest needs.
    let ticks_w = tick_width(lo..hi, 6);
    let slot = f64::from(frame(size, title, labels, ticks_w, 0).w) / n as f64;
    let wrapped = |g: &String| wrap(g, slot - 8.0, TICK_PX);
    let group_lines: Vec<_> = groups.iter().map(wrapped).collect();
    let depth = group_lines.iter().map(Vec::len).max().unwrap_or(1) - 1;
    let f = frame(size, title, labels, ticks_w, 16 * depth as u32);
    let (group_w, value_px) = if k == 1 { (0.6, TICK_PX) } else { (0.8, 11.0) };
    let bar = group_w / k as f64;
    let room = if k == 1 { slot } else { slot * bar + 6.0 };

    render(f.size, title, |area| {
        let mut chart = chart(area, &f, -0.5..n as f64 - 0.5, lo..hi)?;
        let value_tick = |v: &f64| tick(*v, hi - lo);
        let mut mesh = chart.configure_mesh();
        let mesh = axes(&mut mesh, labels, f.label_px).disable_x_mesh();
        mesh.disable_x_axis().y_labels(6);
        mesh.y_label_formatter(&value_tick).draw()?;
        // The group labels under the plot, and the zero line as the x axis.
        let style = font(TICK_PX, MUTED).pos(Pos::new(HPos::Center, VPos::Top));
        let lines = group_lines.iter().enumerate();
        let lines = lines.flat_map(|(g, ls)| ls.iter().enumerate().map(move |(i, l)| (g, i, l)));
        chart.draw_series(lines.map(|(g, i, line)| {
            let text = Text::new(line.clone(), (0, 8 + 16 * i as i32), style.clone());
            EmptyElement::at((g as f64, lo)) + text
        }))?;
        let zero = PathElement::new([(-0.5, 0.0), (n as f64 - 0.5, 0.0)], MUTED);
        chart.draw_series([zero])?;
        let mut occupied = Vec::new();
        for (s, (name, values)) in series.iter().enumerate() {
            let x0 = |g: usize| g as f64 - group_w / 2.0 + s as f64 * bar;
            let colour = |g: usize| palette(if k == 1 { g } else { s });
            let rect = |(g, &v): (usize, &f64)| {
                let mut rect = Rectangle::new([(x0(g), 0.0), (x0(g) + bar, v)], colour(g).filled());
                rect.set_margin(0, 0, 0, u32::from(k > 1));
                rect
            };
            let drawn = chart.draw_series(values.iter().enumerate().map(rect))?;
            if k > 1 {
                let corners = |(x, y)| [(x + 4, y - 6), (x + 18, y + 6)];
                let swatch = move |p| Rectangle::new(corners(p), palette(s).filled());
                drawn.label(name).legend(swatch);
            }
            // The values above the bars (below negative ones), where they fit.
            let fits = |(_, v): &(usize, &f64)| text_width(&number(**v, 3), value_px) <= room;
            chart.draw_series(values.iter().enumerate().filter(fits).map(|(g, &v)| {
                let below = v < 0.0;
                let v_pos = if below { VPos::Top } else { VPos::Bottom };
                let style = font(value_px, TEXT).pos(Pos::new(HPos::Center, v_pos));
                let text = Text::new(number(v, 3), (0, if below { 3 } else { -3 }), style);
                EmptyElement::at((x0(g) + bar / 2.0, v)) + text
            }))?;
            let (x1, top) = (|g| x0(g) + bar, |v: f64| v.max(0.0) + pad);
            let bounds = |(g, &v): (usize, &f64)| (x0(g), v.min(0.0) - pad, x1(g), top(v));
            occupied.extend(values.iter().enumerate().map(bounds));
        }
        if k > 1 {
            legend(&mut chart, series, &occupied)?;
        }
        Ok(())
    })
}
