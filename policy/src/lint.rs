//! Warnings for rules that are valid but dangerous: known privilege escape hatches (shells,
//! editors, pagers, interpreters, find, tar, env…) allowed as root with free arguments.

use crate::diag::Diagnostic;
use crate::model::Profile;

pub fn lint(profile: &Profile) -> Vec<Diagnostic> {
    todo!("{}", profile.name)
}
