//! How wide text is: in terminal columns ([`display_width`], for aligning plain-text tables
//! that hold Chinese) and, estimated, in pixels (for the figures' layout). plotters, with no
//! font library, estimates from the UTF-8 length, about twice too wide for Chinese.

/// Whether `c` is East Asian wide or full-width: CJK ideographs and punctuation, kana, hangul,
/// full-width forms, and the emoji that terminals draw two columns wide.
///
/// ```
/// use understanding_buffers::notebook::plots::text::is_wide;
/// assert!(is_wide('掩') && is_wide('（') && !is_wide('a') && !is_wide('é'));
/// ```
pub fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD)
}

/// The width of `text` in terminal columns: wide characters ([`is_wide`]) take two, control
/// characters and combining marks none, everything else one. Pad with it to align columns:
///
/// ```
/// use understanding_buffers::notebook::plots::text::display_width;
/// assert_eq!((display_width("mask"), display_width("因果掩码"), display_width("u8 掩码")), (4, 8, 7));
/// let padded = format!("{}{}|", "掩码", " ".repeat(8 - display_width("掩码")));
/// assert_eq!(display_width(&padded), 9);
/// ```
pub fn display_width(text: &str) -> usize {
    let columns = |c: char| match c as u32 {
        _ if is_wide(c) => 2,
        0..=0x1F | 0x7F..=0x9F | 0x300..=0x36F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        _ => 1,
    };
    text.chars().map(columns).sum()
}

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
