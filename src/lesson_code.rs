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
        (
            "text/markdown",
            format!("```{}\n{}\n```", self.language, self.text),
        )
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

/// What changes from snippet `a` to snippet `b`: the code lines of `a` missing from `b`
/// (marked `-`) and those of `b` missing from `a` (marked `+`). Doc comments are skipped,
/// and `a`'s name is read as `b`'s, so only real differences remain.
///
/// ```
/// use understanding_buffers::lesson_code::difference;
/// let diff = difference("CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer")?;
/// assert!(diff.text().contains("+ registry.register_buffer(\"mask\""));
/// # Ok::<(), understanding_buffers::Error>(())
/// ```
pub fn difference(a: &str, b: &str) -> Result<Code> {
    let (code_a, code_b) = (snippet(a)?, snippet(b)?);
    let lines = |code: &Code| -> Vec<String> {
        code.text
            .lines()
            .map(|l| l.trim().replace(a, b))
            .filter(|l| !l.is_empty() && !l.starts_with("///"))
            .collect()
    };
    let (lines_a, lines_b) = (lines(&code_a), lines(&code_b));
    let mut out: Vec<String> = lines_a
        .iter()
        .filter(|l| !lines_b.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        lines_b
            .iter()
            .filter(|l| !lines_a.contains(l))
            .map(|l| format!("+ {l}")),
    );
    Ok(Code {
        text: out.join("\n"),
        language: "diff",
    })
}
