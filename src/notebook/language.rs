//! The language of a notebook: everything the crate prints or draws for a lesson is in it.
//!
//! The English and Chinese notebooks run the very same code cells, so the language is not
//! written in them: a notebook under a folder named `zh/` is Chinese, any other English
//! (evcxr runs the cells in the notebook's folder). `UB_LANG=zh` or `en` overrides that, and
//! a lesson program takes it as an argument (`cargo run --example lesson1_understanding_buffers
//! -- zh`, read by [`lesson_setup`](crate::notebook::display::lesson_setup)).
//!
//! ```
//! use understanding_buffers::notebook::language::{tr, Language};
//! std::env::set_var("UB_LANG", "zh");
//! assert_eq!(Language::current(), Language::Chinese);
//! assert_eq!(tr("mask", "掩码"), "掩码");
//! std::env::set_var("UB_LANG", "en");
//! assert_eq!(tr("mask", "掩码"), "mask");
//! ```

use std::fmt;
use std::path::Path;

/// The environment variable that names the language, `en` or `zh`, when set.
pub const LANGUAGE_VARIABLE: &str = "UB_LANG";

/// A notebook's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// English: `notebooks/en/`.
    English,
    /// Simplified Chinese: `notebooks/zh/`.
    Chinese,
}

impl Language {
    /// The language from its code, `en` or `zh` (case-insensitive); `None` for any other.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Self::English),
            "zh" | "chinese" | "中文" => Some(Self::Chinese),
            _ => None,
        }
    }

    /// The language of a notebook in `folder`: Chinese when the folder is named `zh`.
    pub fn of_folder(folder: &Path) -> Self {
        match folder.file_name().and_then(|name| name.to_str()) {
            Some("zh") => Self::Chinese,
            _ => Self::English,
        }
    }

    /// The language of this process: `UB_LANG` when it names one, else that of the current
    /// folder (the notebook's).
    pub fn current() -> Self {
        if let Some(language) = std::env::var(LANGUAGE_VARIABLE)
            .ok()
            .and_then(|code| Self::from_code(&code))
        {
            return language;
        }
        std::env::current_dir()
            .map(|dir| Self::of_folder(&dir))
            .unwrap_or(Self::English)
    }

    /// Makes `self` the language of this process (and of the lesson's later cells).
    pub fn set_current(self) {
        std::env::set_var(LANGUAGE_VARIABLE, self.code());
    }

    /// `en` or `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::Chinese => "zh",
        }
    }

    /// One of two texts: `english` or `chinese`.
    pub fn pick<'a>(self, english: &'a str, chinese: &'a str) -> &'a str {
        match self {
            Self::English => english,
            Self::Chinese => chinese,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pick("English", "中文"))
    }
}

/// The text for the current language: `english` or `chinese` (see [`Language::current`]).
pub fn tr<'a>(english: &'a str, chinese: &'a str) -> &'a str {
    Language::current().pick(english, chinese)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_decides_unless_told_otherwise() {
        assert_eq!(
            Language::of_folder(Path::new("/x/notebooks/zh")),
            Language::Chinese
        );
        assert_eq!(
            Language::of_folder(Path::new("/x/notebooks/en")),
            Language::English
        );
        assert_eq!(Language::of_folder(Path::new("/")), Language::English);
        assert_eq!(Language::from_code(" ZH "), Some(Language::Chinese));
        assert_eq!(Language::from_code("fr"), None);
    }
}
