//! Where validators report: one file's text, the system it is checked against, and the
//! diagnostics found so far, each placed at `file:line:col` from a TOML span.

use crate::diag::{line_col, Diagnostic, Severity};
use crate::model::Location;
use crate::system::System;
use std::ops::Range;
use std::path::Path;

pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) sys: &'a dyn System,
    pub(super) diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(super) fn loc(&self, span: &Range<usize>) -> Location {
        let (line, col) = line_col(self.text, span.start);
        Location {
            file: self.file.to_path_buf(),
            line,
            col,
        }
    }
    pub(super) fn push(&mut self, severity: Severity, span: &Range<usize>, message: String) {
        let location = self.loc(span);
        self.diags.push(Diagnostic {
            severity,
            location,
            message,
        });
    }
    pub(super) fn error(&mut self, span: &Range<usize>, message: String) {
        self.push(Severity::Error, span, message);
    }
    pub(super) fn warn(&mut self, span: &Range<usize>, message: String) {
        self.push(Severity::Warning, span, message);
    }
    /// How many errors have been reported so far (a validator compares before and after).
    pub(super) fn error_count(&self) -> usize {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    pub(super) fn toml_error(&mut self, e: &toml::de::Error, fallback: &Range<usize>) {
        let span = e.span().unwrap_or_else(|| fallback.clone());
        self.error(&span, e.message().to_string());
    }
}
