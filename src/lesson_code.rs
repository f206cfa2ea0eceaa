//! The lesson's own source code, for notebooks to show. The snippets are read from this
//! crate's sources when it is compiled, so what a learner reads is the code that runs:
//! there is no second copy to drift.

use crate::display::Show;
use crate::{Error, Result};

const SOURCES: &[(&str, &str)] = &[("attention.rs", include_str!("attention.rs"))];

/// A piece of Rust source, shown as a highlighted code block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    text: String,
    language: &'static str,
}

impl Code {
    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Show for Code {
    fn rich(&self) -> (&'static str, String) {
        ("text/markdown", format!("```{}\n{}\n```", self.language, self.text))
    }
    fn plain(&self) -> String {
        self.text.clone()
    }
}

/// The snippet of the crate's source between `// lesson: NAME` and `// lesson: end`.
///
/// ```
/// let code = understanding_buffers::lesson_code::snippet("CausalAttentionWithBuffer")?;
/// assert!(code.text().contains("register_buffer(\"mask\""));
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
pub fn snippet(name: &str) -> Result<Code> {
    let begin = format!("// lesson: {name}\n");
    for (_, source) in SOURCES {
        if let Some(start) = source.find(&begin) {
            let body = &source[start + begin.len()..];
            let end = body.find("// lesson: end").unwrap_or(body.len());
            return Ok(Code {
                text: body[..end].trim_end().to_string(),
                language: "rust",
            });
        }
    }
    Err(Error::Input(format!(
        "no lesson snippet named {name:?}; known: CausalAttentionWithoutBuffers, CausalAttentionWithBuffer"
    )))
}

/// The lines of snippet `b` that are not in snippet `a`, marked `+`, and those of `a` not
/// in `b`, marked `-`: what changes from one variant to the other.
pub fn difference(a: &str, b: &str) -> Result<Code> {
    let (a, b) = (snippet(a)?, snippet(b)?);
    let a_lines: Vec<&str> = a.text.lines().collect();
    let b_lines: Vec<&str> = b.text.lines().collect();
    let mut out = Vec::new();
    for line in &a_lines {
        if !b_lines.contains(line) {
            out.push(format!("- {}", line.trim()));
        }
    }
    for line in &b_lines {
        if !a_lines.contains(line) {
            out.push(format!("+ {}", line.trim()));
        }
    }
    Ok(Code {
        text: out.join("\n"),
        language: "diff",
    })
}
