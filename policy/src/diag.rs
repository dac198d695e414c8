//! Errors and warnings about policy files, printed as `file:line:col: severity: message`,
//! and [`line_col`], which turns a byte offset into that line and column.

use crate::model::Location;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// line/col are 1-based; 0 means "the whole file" (permissions, unreadable file).
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.location.line == 0 {
            write!(
                f,
                "{}: {sev}: {}",
                self.location.file.display(),
                self.message
            )
        } else {
            write!(f, "{}: {sev}: {}", self.location, self.message)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = elevate_base::text::cut(text, offset);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
