//! [`Table`]: rows of text shown as an HTML table in a notebook and as aligned text elsewhere.
//! Columns are aligned by display width, so Chinese cells (two columns a character) line up.

use std::fmt;

use crate::notebook::display::{html_escape, Show};
use crate::notebook::width::{display_width, pad, pad_left};

/// How a column's cells are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// Words, left-aligned.
    Text,
    /// Code (names, dtypes): left-aligned, in a code font in HTML.
    Code,
    /// Numbers: right-aligned.
    Number,
}

/// A table with a caption, a header row and rows; a row can be highlighted, with a note that
/// plain text shows after it.
///
/// ```
/// use understanding_buffers::notebook::table::{Column, Table};
/// let mut table = Table::new("掩码占用的内存", &[("上下文长度", Column::Number), ("f32", Column::Number)]);
/// table.row(["1024", "4.0 MiB"]);
/// table.row(["32768", "4096.0 MiB"]);
/// let text = table.to_string();
/// assert!(text.contains("上下文长度         f32"));
/// assert!(text.contains("     32768  4096.0 MiB"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    caption: String,
    columns: Vec<(String, Column)>,
    rows: Vec<Row>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    cells: Vec<String>,
    highlight: Option<String>,
}

impl Table {
    /// An empty table; `columns` are the headers with their kinds.
    pub fn new(caption: &str, columns: &[(&str, Column)]) -> Self {
        Self {
            caption: caption.to_string(),
            columns: columns.iter().map(|(h, k)| (h.to_string(), *k)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.push(cells, None)
    }

    /// Adds a highlighted row: followed by `note`, in words (text and HTML alike: a last
    /// column in HTML, shaded, so that colour is never the only mark).
    pub fn highlighted_row<S: AsRef<str>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
        note: &str,
    ) -> &mut Self {
        self.push(cells, Some(note.to_string()))
    }

    fn push<S: AsRef<str>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
        highlight: Option<String>,
    ) -> &mut Self {
        let mut cells: Vec<String> = cells.into_iter().map(|c| c.as_ref().to_string()).collect();
        cells.resize(self.columns.len(), String::new());
        self.rows.push(Row { cells, highlight });
        self
    }

    /// The table's caption.
    pub fn caption(&self) -> &str {
        &self.caption
    }

    /// How many rows it has (the header aside).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Table {
    /// The caption, then the columns padded to their widest cell, two spaces apart, indented
    /// by two.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| display_width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(&row.cells) {
                *w = (*w).max(display_width(cell));
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&self.columns)
                .zip(&widths)
                .map(|((cell, (_, kind)), &w)| match kind {
                    Column::Number => pad_left(cell, w),
                    _ => pad(cell, w),
                })
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        writeln!(f, "{}", self.caption)?;
        writeln!(
            f,
            "  {}",
            line(self.columns.iter().map(|(h, _)| h.as_str()).collect())
        )?;
        for row in &self.rows {
            let note = row
                .highlight
                .as_deref()
                .map(|n| format!("  {n}"))
                .unwrap_or_default();
            writeln!(
                f,
                "  {}{note}",
                line(row.cells.iter().map(String::as_str).collect())
            )?;
        }
        Ok(())
    }
}

impl Show for Table {
    fn rich(&self) -> (&'static str, String) {
        let mut html = format!(
            "<table class=\"ub-report\"><caption style=\"text-align:left\">{}</caption><thead><tr>",
            html_escape(&self.caption)
        );
        for (header, kind) in &self.columns {
            let align = if *kind == Column::Number {
                " style=\"text-align:right\""
            } else {
                ""
            };
            html.push_str(&format!("<th{align}>{}</th>", html_escape(header)));
        }
        let notes = self.rows.iter().any(|r| r.highlight.is_some());
        if notes {
            html.push_str("<th></th>");
        }
        html.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            let style = if row.highlight.is_some() {
                " style=\"background:#fdd\" class=\"ub-stray\""
            } else {
                ""
            };
            html.push_str(&format!("<tr{style}>"));
            for (cell, (_, kind)) in row.cells.iter().zip(&self.columns) {
                let cell = html_escape(cell);
                html.push_str(&match kind {
                    Column::Code => format!("<td><code>{cell}</code></td>"),
                    Column::Number => format!("<td style=\"text-align:right\">{cell}</td>"),
                    Column::Text => format!("<td>{cell}</td>"),
                });
            }
            if notes {
                let note = row
                    .highlight
                    .as_deref()
                    .map(html_escape)
                    .unwrap_or_default();
                html.push_str(&format!("<td class=\"ub-note\">{note}</td>"));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
        ("text/html", html)
    }

    fn plain(&self) -> String {
        self.to_string()
    }
}
