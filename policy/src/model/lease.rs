//! The just-in-time settings as validated values: who approves, ticket patterns, what happens
//! at expiry, `[admin]` and `[[login]]` rules.

use super::{Location, Subject};
use regex::Regex;
use std::fmt;

/// Who may approve: a user, or any member of a group (`group:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    User(String),
    Group(String),
}

impl Approver {
    pub fn parse(s: &str) -> Approver {
        match s.strip_prefix("group:") {
            Some(g) => Approver::Group(g.to_string()),
            None => Approver::User(s.to_string()),
        }
    }

    pub fn matches(&self, subject: &Subject) -> bool {
        match self {
            Approver::User(u) => &subject.user == u,
            Approver::Group(g) => subject.groups.iter().any(|x| x == g),
        }
    }
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approver::User(u) => write!(f, "{u}"),
            Approver::Group(g) => write!(f, "group:{g}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Approval {
    pub approvers: Vec<Approver>,
    /// Distinct approvers needed (never counting the requester).
    pub count: u32,
}

impl Approval {
    pub fn approver_matches(&self, subject: &Subject) -> bool {
        self.approvers.iter().any(|a| a.matches(subject))
    }
}

/// A whole-string ticket pattern.
#[derive(Debug, Clone)]
pub struct TicketPattern {
    pub source: String,
    pub regex: Regex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExpiry {
    /// Processes still carrying a granted group get TERM, then KILL.
    #[default]
    Terminate,
    /// They are recorded in the audit log and left alone.
    Keep,
}

/// `[admin]`: may list all leases and revoke any; auditors may list all.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub auditors: Vec<Approver>,
    pub location: Option<Location>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAccess {
    Standing,
    Lease,
    Deny,
}

/// `[[login]]`: which PAM services gate which identities, and how.
#[derive(Debug, Clone)]
pub struct LoginRule {
    pub services: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub access: LoginAccess,
    /// Where the rule applies, as a profile's `hosts` / `host_labels` (absent: every host),
    /// so that one policy set can be shipped to a whole fleet.
    pub hosts: Option<Vec<String>>,
    pub host_labels: std::collections::BTreeMap<String, String>,
    pub location: Location,
}
