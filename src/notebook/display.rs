//! Rich output for notebooks: how figures, reports and errors reach the evcxr kernel.
//!
//! evcxr turns `EVCXR_BEGIN_CONTENT <mime>` … `EVCXR_END_CONTENT` blocks printed on stdout
//! into rich Jupyter outputs. Outside evcxr (a plain `cargo run --example`), the same calls
//! print plain text instead, so the lessons also run as ordinary programs.

use std::fmt;

use crate::notebook::language::{tr, Language};

/// Whether this code runs inside an evcxr kernel (evcxr sets `EVCXR_IS_RUNTIME` in the
/// process that runs the cells).
pub fn in_evcxr() -> bool {
    std::env::var_os("EVCXR_IS_RUNTIME").is_some()
}

/// Something a notebook cell can show: rich content under evcxr, plain text elsewhere.
pub trait Show {
    /// The rich form: a MIME type and its content, e.g. `("text/html", "<table>…")`.
    fn rich(&self) -> (&'static str, String);
    /// The plain-text form, printed outside notebooks.
    fn plain(&self) -> String;

    /// Shows it: as a rich Jupyter output under evcxr, as plain text on stdout elsewhere.
    fn show(&self) {
        if in_evcxr() {
            let (mime, content) = self.rich();
            println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
        } else {
            println!("{}", self.plain());
        }
    }
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// An error as a notebook shows it: a red block holding the error's text, and `Error: …`
/// (`错误：…` in a Chinese notebook) as plain text. Lessons use it for the errors they mean
/// to show; the message itself is the error's own (candle's and PyTorch's stay verbatim).
pub struct ErrorOutput {
    kind: String,
    message: String,
}

impl ErrorOutput {
    /// Wraps any error; `kind` is its type name as the learner should read it.
    pub fn new(err: &dyn std::error::Error) -> Self {
        Self {
            kind: tr("Error: ", "错误：").to_string(),
            message: err.to_string(),
        }
    }
}

impl Show for ErrorOutput {
    fn rich(&self) -> (&'static str, String) {
        (
            "text/html",
            format!(
                "<pre class=\"ub-error\" style=\"background:#fdd;color:#a00;padding:6px 10px;\
                 border-left:4px solid #d00;white-space:pre-wrap\">{}{}</pre>",
                self.kind,
                html_escape(&self.message)
            ),
        )
    }
    fn plain(&self) -> String {
        format!("{}{}", self.kind, self.message)
    }
}

impl fmt::Display for ErrorOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.plain())
    }
}

/// Shows an error the lesson means to show (see [`ErrorOutput`]).
pub fn show_error(err: &dyn std::error::Error) {
    ErrorOutput::new(err).show();
}

/// Prepares a notebook or lesson program and returns its language: the notebook's folder
/// decides ([`Language`]); a lesson program takes it as its argument, `en` or `zh` (`cargo run
/// --example lesson1_understanding_buffers -- zh`). It prints which language it chose.
///
/// Panics and backtraces are the kernel's business: the project's kernel names the line of the
/// learner's cell where a panic happened and takes `RUST_BACKTRACE` from its kernel spec
/// (scripts/evcxr/README.md, patches 08 and 10), and [`Error`](crate::Error) strips the
/// backtrace candle attaches to its errors.
pub fn lesson_setup() -> Language {
    let language = if in_evcxr() {
        Language::current()
    } else {
        std::env::args()
            .skip(1)
            .find_map(|arg| Language::from_code(arg.trim_start_matches("--lang=")))
            .unwrap_or_else(Language::current)
    };
    language.set_current();
    println!("{}", language.pick("Language: English", "语言：中文"));
    language
}
