//! The just-in-time questions asked of a loaded policy: how long a lease lasts by default,
//! who administers and audits, which profiles exclude each other. The lease types themselves
//! live in [`crate::model`] (re-exported here for the old paths).

pub use crate::model::{
    Admin, Approval, Approver, LoginAccess, LoginRule, OnExpiry, TicketPattern,
};
use crate::model::{Policy, Profile, Subject};
use std::time::Duration;

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
            uid: elevate_base::Uid(1),
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
