//! Figures side by side: [`side_by_side`], and the lesson's [`mask_round_trip`].

use candle_core::Tensor;

use super::*;
use crate::notebook::language::tr;

/// The space between two figures, and the height of the shared title, in pixels.
const GAP: u32 = 16;
const TITLE_H: u32 = 34;

/// The `width` and `height` of an SVG document's root element.
fn svg_size(svg: &str) -> Option<(u32, u32)> {
    let open = &svg[..svg.find('>')?];
    let attribute = |name: &str| -> Option<u32> {
        let start = open.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + open[start..].find('"')?;
        open[start..end].parse().ok()
    };
    Some((attribute("width")?, attribute("height")?))
}

/// Several figures in one, left to right under a shared title, so that a cell can show them
/// together (evcxr keeps one rich output per cell). Each keeps its own title and labels.
///
/// ```
/// use understanding_buffers::notebook::plots::{bar_chart, side_by_side};
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let a = bar_chart(&[("a".into(), 1.0)], "Left", "")?;
/// let b = bar_chart(&[("b".into(), 2.0)], "Right", "")?;
/// let both = side_by_side(&[a, b], "Two charts")?;
/// assert_eq!(both.svg().matches("<svg").count(), 3); // the frame and the two figures
/// assert!(both.svg().contains("Left") && both.svg().contains("Right"));
/// assert!(side_by_side(&[], "Nothing").is_err());
/// # Ok(())
/// # }
/// ```
pub fn side_by_side(figures: &[Figure], title: &str) -> Result<Figure> {
    if figures.is_empty() {
        return Err(Error::Plot(format!(
            "side_by_side({title:?}) was given no figures; pass at least one"
        )));
    }
    let mut parts = Vec::new();
    let (mut x, mut height) = (0u32, 0u32);
    for figure in figures {
        let Some((w, h)) = svg_size(figure.svg()) else {
            return Err(Error::Plot(format!(
                "the figure {:?} has no width and height on its <svg> element",
                figure.title()
            )));
        };
        // The figure's own <svg>, placed at (x, TITLE_H) in the frame.
        let placed = figure
            .svg()
            .replacen("<svg ", &format!("<svg x=\"{x}\" y=\"{TITLE_H}\" "), 1);
        parts.push(placed);
        x += w + GAP;
        height = height.max(h);
    }
    let (width, height) = (x - GAP, height + TITLE_H);
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         style=\"max-width:100%;height:auto\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>{t}</title>\n<rect width=\"{width}\" height=\"{height}\" fill=\"#FFFFFF\"/>\n\
         <text x=\"{cx}\" y=\"22\" text-anchor=\"middle\" font-family=\"sans-serif\" \
         font-size=\"{px}\" font-weight=\"bold\" fill=\"#222222\">{t}</text>\n",
        t = html_escape(title),
        cx = width / 2,
        px = TITLE_PX * 1.1,
    );
    for part in parts {
        svg.push_str(&part);
        svg.push('\n');
    }
    svg.push_str("</svg>\n");
    Ok(Figure {
        svg,
        title: title.to_string(),
    })
}

/// The lesson's round trip in one picture: the mask the buffered module loaded (its 2s came
/// back) beside the mask of the module that keeps it in a plain field (1s again), each with
/// its values written in the cells, on one colour scale, in the notebook's language.
///
/// ```
/// use understanding_buffers::prelude::*;
/// # fn main() -> understanding_buffers::error::Result<()> {
/// let twos = replace_value(&causal_mask(4)?, 1.0, 2.0)?;
/// let fig = plots::mask_round_trip(&twos, &causal_mask(4)?)?;
/// // Each cell shows its value: the buffer's 2s, the plain field's 1s.
/// assert!(fig.svg().contains("\n2\n</text>") && fig.svg().contains("\n1\n</text>"));
/// # Ok(())
/// # }
/// ```
pub fn mask_round_trip(buffer_mask: &Tensor, plain_mask: &Tensor) -> Result<Figure> {
    let (x, y) = (
        tr("key position", "键的位置"),
        tr("query position", "查询的位置"),
    );
    let largest = |t: &Tensor| -> Result<f64> {
        let t = t.to_dtype(candle_core::DType::F64)?.flatten_all()?;
        Ok(t.max(0)?.to_scalar::<f64>()?)
    };
    let scale = Some((0.0, largest(buffer_mask)?.max(largest(plain_mask)?)));
    let value = tr("mask value", "掩码的值");
    let buffer = heatmap::heatmap_on_scale(
        buffer_mask,
        scale,
        value,
        tr("Buffer: the 2s came back", "缓冲区：2 回来了"),
        x,
        y,
    )?;
    let plain = heatmap::heatmap_on_scale(
        plain_mask,
        scale,
        value,
        tr("Plain field: 1s again", "普通字段：又是 1"),
        x,
        y,
    )?;
    side_by_side(
        &[buffer, plain],
        tr("The mask after save and load", "保存再加载之后的掩码"),
    )
}
