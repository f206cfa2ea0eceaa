//! What notebook cells show:
//!
//! - [`display`]: rich output under evcxr, plain text elsewhere;
//! - [`diagnostics`]: device and gradient reports for every module;
//! - [`lesson_code`]: the lesson's own source, and the diff of two modules;
//! - [`names`]: the names of a `named_parameters()` or `named_buffers()` list;
//! - [`plots`]: heat maps, line and bar charts as SVG;
//! - [`table`]: tables of text, aligned for Chinese too;
//! - [`language`]: the notebook's language, and [`text`]: every word the reports show in it;
//! - [`width`]: how many columns text takes, CJK included.

pub mod diagnostics;
pub mod display;
pub mod language;
pub mod lesson_code;
pub mod names;
pub mod plots;
pub mod table;
pub mod text;
pub mod width;
