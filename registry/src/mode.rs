//! Registry modes: READWRITE (normal), READONLY (no registration or deletion), READONLY_OVERRIDE
//! (read-only even for the subject's own overrides), IMPORT (registration with explicit ids and
//! versions and no compatibility check, to copy another registry).

use std::fmt;
use std::str::FromStr;

/// A registry or subject mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Registration and deletion allowed.
    ReadWrite,
    /// Reads only.
    ReadOnly,
    /// Reads only, whatever the subject's own mode.
    ReadOnlyOverride,
    /// Registration with explicit ids and versions, unchecked.
    Import,
}

/// The error of a mode that is not one of the four.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown mode {0:?}")]
pub struct UnknownMode(pub String);

impl Mode {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }

    /// Whether writes are refused.
    pub(crate) fn read_only(self) -> bool {
        matches!(self, Mode::ReadOnly | Mode::ReadOnlyOverride)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Mode, UnknownMode> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Mode::ReadWrite,
            "READONLY" => Mode::ReadOnly,
            "READONLY_OVERRIDE" => Mode::ReadOnlyOverride,
            "IMPORT" => Mode::Import,
            _ => return Err(UnknownMode(s.to_string())),
        })
    }
}
