//! Deciding one request against a policy. First match in load order wins.

use crate::model::{CommandRule, HostInfo, Policy, Profile, Subject};
use std::path::Path;

/// A request to decide. `path` is already canonical (symlinks resolved by the daemon).
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub path: &'a Path,
    pub args: &'a [String],
    pub profile: Option<&'a str>,
    pub run_as: Option<&'a str>,
}

#[must_use]
#[derive(Debug)]
pub enum Verdict<'p> {
    Allow {
        profile: &'p Profile,
        rule: &'p CommandRule,
    },
    Deny(Denied<'p>),
}

#[derive(Debug)]
pub struct Denied<'p> {
    pub reason: DenyReason,
    /// The rule that came closest, and where it stopped matching (for `policy explain`).
    pub nearest: Option<(&'p Profile, &'p CommandRule, Mismatch)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {}

impl Policy {
    pub fn decide<'p>(
        &'p self,
        host: &HostInfo,
        subject: &Subject,
        query: &Query<'_>,
        has_lease: &dyn Fn(&Profile) -> bool,
    ) -> Verdict<'p> {
        todo!(
            "{host:?} {subject:?} {query:?} {}",
            has_lease(&self.profiles[0])
        )
    }
}
