//! How wide text is on a figure, estimated in pixels (for the layout): plotters, with no font
//! library, estimates from the UTF-8 length, about twice too wide for Chinese. Which
//! characters are wide is the one rule of [`crate::notebook::width`].

use crate::notebook::width::is_wide;

/// An estimate, on the wide side, of the width in pixels of `text` set at `px` pixels in a
/// common sans-serif font: wide characters one em, Latin letters and digits less.
pub(crate) fn text_width(text: &str, px: f64) -> f64 {
    let em = |c: char| match c {
        _ if is_wide(c) => 1.0,
        'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.9,
        'A'..='Z' => 0.72,
        '0'..='9' => 0.64,
        _ if " .,:;!|'ijlft()[]/-r".contains(c) => 0.38,
        _ => 0.6,
    };
    text.chars().map(em).sum::<f64>() * px
}

/// Breaks `text` into lines of about equal width, none wider than `max_width` at `px` pixels
/// if it can: first at `" / "` (the seam of an `"English / 中文"` label), then after spaces
/// and wide characters. A single word wider than `max_width` stays whole.
pub(crate) fn wrap(text: &str, max_width: f64, px: f64) -> Vec<String> {
    if text_width(text, px) <= max_width {
        return vec![text.to_string()];
    }
    let mut lines = Vec::new();
    for part in text.split(" / ") {
        // As few lines as `max_width` allows, then the narrowest width giving no more.
        let fewest = fill(part, max_width, px).len();
        let mut width = text_width(part, px) / fewest as f64;
        while width < max_width && fill(part, width, px).len() > fewest {
            width += px / 4.0;
        }
        lines.extend(fill(part, width.min(max_width), px));
    }
    lines
}

/// Fills lines greedily, breaking after spaces and wide characters.
fn fill(text: &str, max_width: f64, px: f64) -> Vec<String> {
    let (mut lines, mut line) = (Vec::new(), String::new());
    for token in text.split_inclusive(|c: char| c == ' ' || is_wide(c)) {
        let longer = format!("{line}{token}");
        if line.trim().is_empty() || text_width(longer.trim_end(), px) <= max_width {
            line = longer;
        } else {
            lines.push(line.trim_end().to_string());
            line = token.trim_start().to_string();
        }
    }
    lines.push(line.trim_end().to_string());
    lines
}
