//! The lesson's own source code, for notebooks to show. The snippets are read from this
//! crate's sources when it is compiled, so what a learner reads is the code that runs:
//! there is no second copy to drift.

use crate::error::{Error, Result};
use crate::notebook::display::Show;

/// The files snippets are cut from, each between `// lesson: NAME` and `// lesson: end`.
const SOURCES: &[&str] = &[
    include_str!("../lesson/attention.rs"),
    include_str!("../lesson/positional.rs"),
];

/// A piece of Rust source (or a diff of two), shown as a highlighted code block.
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

/// The names of every snippet, in source order.
///
/// ```
/// let names = understanding_buffers::notebook::lesson_code::snippet_names();
/// assert_eq!(&names[..2], ["CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer"]);
/// ```
pub fn snippet_names() -> Vec<&'static str> {
    SOURCES
        .iter()
        .flat_map(|source| source.lines())
        .filter_map(|line| line.strip_prefix("// lesson: "))
        .filter(|name| *name != "end")
        .collect()
}

/// The snippet of the crate's source between `// lesson: NAME` and `// lesson: end`.
///
/// ```
/// let code = understanding_buffers::notebook::lesson_code::snippet("CausalAttentionWithBuffer")?;
/// assert!(code.text().contains("pub mask: Buffer,"));
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn snippet(name: &str) -> Result<Code> {
    let begin = format!("// lesson: {name}\n");
    for source in SOURCES {
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
        "no lesson snippet named {name:?}; known: {}",
        snippet_names().join(", ")
    )))
}

/// How snippet `b` differs from snippet `a`, as a unified diff (`diff -u`) with three lines
/// of context: `-` lines only in `a`, `+` lines only in `b`, indentation kept. Doc comments
/// are left out of both, and `a`'s name is read as `b`'s, so only the code that differs
/// remains.
///
/// ```
/// use understanding_buffers::notebook::lesson_code::difference;
/// let diff = difference("CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer")?;
/// let changed: Vec<&str> = diff.text().lines().filter(|l| l.starts_with(['-', '+'])).collect();
/// assert_eq!(changed.len(), 4); // the two file headers, and the mask field
/// assert!(changed[3].starts_with("+    pub mask: Buffer,"));
/// # Ok::<(), understanding_buffers::error::Error>(())
/// ```
pub fn difference(a: &str, b: &str) -> Result<Code> {
    let (code_a, code_b) = (snippet(a)?, snippet(b)?);
    let lines = |code: &Code| -> Vec<String> {
        code.text
            .lines()
            .filter(|l| !l.trim_start().starts_with("///"))
            .map(|l| l.replace(a, b))
            .collect()
    };
    let (lines_a, lines_b) = (lines(&code_a), lines(&code_b));
    let mut text = format!("--- {a}\n+++ {b}");
    for hunk in hunks(&edit_script(&lines_a, &lines_b), 3) {
        text.push('\n');
        text.push_str(&hunk);
    }
    Ok(Code {
        text,
        language: "diff",
    })
}

/// One line of an edit script: kept (in both), removed (only in `a`) or added (only in `b`),
/// with its line numbers in `a` and `b` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edit<'a> {
    Keep(&'a str, usize, usize),
    Remove(&'a str, usize, usize),
    Add(&'a str, usize, usize),
}

/// The shortest edit script from `a` to `b`, from their longest common subsequence.
fn edit_script<'a>(a: &'a [String], b: &'a [String]) -> Vec<Edit<'a>> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut script) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            script.push(Edit::Keep(&a[i], i + 1, j + 1));
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            script.push(Edit::Add(&b[j], i + 1, j + 1));
            j += 1;
        } else {
            script.push(Edit::Remove(&a[i], i + 1, j + 1));
            i += 1;
        }
    }
    // Within a run of changes, show removals before additions, as diff does.
    let mut ordered = Vec::with_capacity(script.len());
    let mut run: Vec<Edit<'a>> = Vec::new();
    for edit in script {
        if let Edit::Keep(..) = edit {
            run.sort_by_key(|e| matches!(e, Edit::Add(..)));
            ordered.append(&mut run);
            ordered.push(edit);
        } else {
            run.push(edit);
        }
    }
    run.sort_by_key(|e| matches!(e, Edit::Add(..)));
    ordered.append(&mut run);
    ordered
}

/// The changes of `script` grouped into unified-diff hunks with `context` kept lines around
/// them, each starting with its `@@ -a,n +b,m @@` header.
fn hunks(script: &[Edit<'_>], context: usize) -> Vec<String> {
    let changed: Vec<usize> = (0..script.len())
        .filter(|&k| !matches!(script[k], Edit::Keep(..)))
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new(); // inclusive ranges of script indices
    for &k in &changed {
        let (start, end) = (
            k.saturating_sub(context),
            (k + context).min(script.len() - 1),
        );
        match groups.last_mut() {
            Some(last) if start <= last.1 + 1 => last.1 = end,
            _ => groups.push((start, end)),
        }
    }
    groups
        .into_iter()
        .map(|(start, end)| {
            let edits = &script[start..=end];
            let (a_start, b_start) = match edits[0] {
                Edit::Keep(_, i, j) | Edit::Remove(_, i, j) | Edit::Add(_, i, j) => (i, j),
            };
            let a_len = edits.iter().filter(|e| !matches!(e, Edit::Add(..))).count();
            let b_len = edits
                .iter()
                .filter(|e| !matches!(e, Edit::Remove(..)))
                .count();
            let mut hunk = format!("@@ -{a_start},{a_len} +{b_start},{b_len} @@");
            for edit in edits {
                let (sign, line) = match edit {
                    Edit::Keep(l, ..) => (' ', l),
                    Edit::Remove(l, ..) => ('-', l),
                    Edit::Add(l, ..) => ('+', l),
                };
                hunk.push('\n');
                hunk.push(sign);
                hunk.push_str(line);
            }
            hunk
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_are_those_of_diff_u() {
        let a: Vec<String> = (1..=20).map(|i| format!("l{i}")).collect();
        let mut b = a.clone();
        (b[4], b[17]) = ("X".into(), "Y".into());
        b.push("Z".into());
        let hunks = hunks(&edit_script(&a, &b), 3);
        assert_eq!(
            hunks,
            [
                "@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+X\n l6\n l7\n l8",
                "@@ -15,6 +15,7 @@\n l15\n l16\n l17\n-l18\n+Y\n l19\n l20\n+Z"
            ]
        );
        assert!(super::hunks(&edit_script(&a, &a), 3).is_empty());
    }
}
