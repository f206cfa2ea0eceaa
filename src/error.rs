//! The crate's error type: every failure says what is wrong and, where it can, how to fix it.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Errors coming from candle keep candle's own message (the lessons show candle's real
/// device- and dtype-mismatch errors), without the backtrace candle appends when
/// `RUST_BACKTRACE` is set.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An error raised by candle itself, e.g. `device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }`.
    Candle(candle_core::Error),
    /// Input that a module cannot process: wrong rank, wrong feature size, too many tokens.
    Input(String),
    /// A module cannot take a state dict; the text follows PyTorch's `load_state_dict` error.
    StateDict(String),
    /// Asking a module for a name it does not have, a hand-written `impl TorchModule` whose two
    /// field lists disagree, and the like.
    Module(String),
    /// A checkpoint file that cannot be read or written.
    Checkpoint {
        /// The file in question.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Tensors that are not on the device they should be on.
    Device(String),
    /// A picture that could not be drawn.
    Plot(String),
}

/// `Result` with this crate's [`Error`] by default. The error type can still be named
/// (`Result<(), Box<dyn Error>>`), so that code in the same scope that spells out
/// `Result<T, E>`, as evcxr's generated code does, keeps working after a glob import of the
/// prelude.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A checkpoint error for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Removes the backtrace candle attaches under `RUST_BACKTRACE=1`, so that the message is
/// the one line a learner should read.
fn strip_backtrace(err: candle_core::Error) -> candle_core::Error {
    match err {
        candle_core::Error::WithBacktrace { inner, .. } => strip_backtrace(*inner),
        candle_core::Error::Context { inner, context } => candle_core::Error::Context {
            inner: Box::new(strip_backtrace(*inner)),
            context,
        },
        candle_core::Error::WithPath { inner, path } => candle_core::Error::WithPath {
            inner: Box::new(strip_backtrace(*inner)),
            path,
        },
        other => other,
    }
}

impl From<candle_core::Error> for Error {
    fn from(err: candle_core::Error) -> Self {
        Self::Candle(strip_backtrace(err))
    }
}

/// Back into candle's error, for candle's traits (`candle_nn::Module::forward` of this
/// crate's layers): candle's own errors come back as they were, the others wrapped with
/// their message.
impl From<Error> for candle_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Candle(err) => err,
            other => candle_core::Error::wrap(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Candle(err) => write!(f, "{err}"),
            Self::Input(msg) | Self::StateDict(msg) | Self::Module(msg) => f.write_str(msg),
            Self::Device(msg) | Self::Plot(msg) => f.write_str(msg),
            Self::Checkpoint { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Candle(err) => Some(err),
            _ => None,
        }
    }
}
