//! The just-in-time part of the policy: lease settings on profiles, who approves, who
//! administers, login rules.

use crate::model::{Location, Policy, Profile, Subject};
use regex::Regex;
use std::fmt;
use std::time::Duration;

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

impl Profile {
    /// How long a lease lasts when the request names no duration: `default_duration`, else
    /// 15 minutes for break-glass and an hour otherwise — never beyond `max_duration`.
    pub fn effective_default_duration(&self) -> Duration {
        let d = self.default_duration.unwrap_or(if self.break_glass {
            Duration::from_secs(900)
        } else {
            Duration::from_secs(3600)
        });
        self.max_duration.map_or(d, |m| d.min(m))
    }
}

impl Policy {
    /// Named in `[admin]` by user or by one of their groups: may list and revoke any lease.
    pub fn is_admin(&self, s: &Subject) -> bool {
        self.admin.users.iter().any(|u| u == &s.user)
            || self.admin.groups.iter().any(|g| s.groups.contains(g))
    }

    /// Admins are auditors too.
    pub fn is_auditor(&self, s: &Subject) -> bool {
        self.is_admin(s) || self.admin.auditors.iter().any(|a| a.matches(s))
    }

    /// Separation of duties is symmetric: either profile naming the other is enough.
    pub fn conflicts_between(&self, a: &str, b: &str) -> bool {
        let names = |x: &str, y: &str| {
            self.profile(x)
                .is_some_and(|p| p.conflicts.iter().any(|c| c == y))
        };
        names(a, b) || names(b, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers() {
        let s = Subject {
            uid: 1,
            user: "erin".into(),
            groups: vec!["leads".into()],
        };
        assert!(Approver::parse("group:leads").matches(&s));
        assert!(Approver::parse("erin").matches(&s));
        assert!(!Approver::parse("group:erin").matches(&s));
        assert!(!Approver::parse("leads").matches(&s));
        assert_eq!(Approver::parse("group:x").to_string(), "group:x");
    }
}
