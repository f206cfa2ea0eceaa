//! How wide text is in a monospace font, where CJK characters take two columns: to align
//! plain-text tables that hold Chinese. (Figures estimate pixels: see `plots::text`.)

/// Whether `c` is East Asian wide or full-width: CJK ideographs and punctuation, kana, hangul,
/// full-width forms, and the emoji that terminals draw two columns wide.
///
/// ```
/// use understanding_buffers::notebook::width::is_wide;
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
/// characters and combining marks none, everything else one.
///
/// ```
/// use understanding_buffers::notebook::width::display_width;
/// assert_eq!((display_width("mask"), display_width("因果掩码"), display_width("u8 掩码")), (4, 8, 7));
/// ```
pub fn display_width(text: &str) -> usize {
    let columns = |c: char| match c as u32 {
        _ if is_wide(c) => 2,
        0..=0x1F | 0x7F..=0x9F | 0x300..=0x36F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        _ => 1,
    };
    text.chars().map(columns).sum()
}

/// `text` padded with spaces to `width` columns (left-aligned); wider text is left as it is.
///
/// ```
/// use understanding_buffers::notebook::width::{display_width, pad};
/// assert_eq!(pad("掩码", 6), "掩码  ");
/// assert_eq!(display_width(&pad("mask", 6)), display_width(&pad("掩码", 6)));
/// ```
pub fn pad(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(display_width(text));
    format!("{text}{}", " ".repeat(fill))
}

/// `text` padded on the left to `width` columns (right-aligned, for numbers).
///
/// ```
/// assert_eq!(understanding_buffers::notebook::width::pad_left("1.5", 5), "  1.5");
/// ```
pub fn pad_left(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(display_width(text));
    format!("{}{text}", " ".repeat(fill))
}
