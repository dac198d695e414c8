//! The just-in-time part of the policy: lease settings on profiles, who approves, who
//! administers, login rules, and the human duration syntax (`90s`, `15m`, `1h30m`, `1d`).

use crate::model::{Location, Policy, Profile, Subject};
use regex::Regex;
use std::fmt;
use std::time::Duration;

/// The longest lease or duration the policy accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The accepted forms, for error messages.
const DURATION_FORMS: &str =
    "use whole numbers with units d, h, m, s in that order, e.g. 90s, 15m, 1h30m, 2h or 1d";

/// Parse `90s`, `15m`, `1h30m`, `2h`, `1d`: whole numbers (ASCII digits), each followed by a
/// unit, units in the order d, h, m, s and each at most once (`1h1h` is a typo, not 2h); a
/// number may exceed its unit's range (`90m`). Surrounding whitespace is ignored. The total
/// must be positive and at most [`MAX_DURATION`] (366 days). Never panics, whatever the input.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let shown: String = s.chars().take(40).collect();
    let bad = |why: &str| format!("invalid duration {shown:?}: {why}; {DURATION_FORMS}");
    let text = s.trim();
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let too_long = || {
        format!(
            "duration {shown:?} is longer than the maximum of {}",
            format_duration(MAX_DURATION)
        )
    };
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    // Index into "dhms" of the last unit seen: the next must come strictly later.
    let mut last_unit: Option<u8> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
            // Saturate: any number this big is over the maximum anyway.
            num = Some(
                num.unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(u64::from(d)),
            );
            continue;
        }
        let (idx, unit): (u8, u64) = match c {
            'd' => (0, 86_400),
            'h' => (1, 3_600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return Err(bad(&format!("unexpected {c:?}"))),
        };
        let Some(n) = num.take() else {
            return Err(bad(&format!("unit '{c}' without a number before it")));
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(bad(
                "units must come in the order d, h, m, s, each at most once",
            ));
        }
        last_unit = Some(idx);
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(too_long)?;
    }
    if num.is_some() {
        return Err(bad("a number without a unit"));
    }
    if total == 0 {
        return Err(bad("it must be longer than zero"));
    }
    let d = Duration::from_secs(total);
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// The canonical short form: `1h30m`, `45s`, `2d3h`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, 'd'),
        (s / 3_600 % 24, 'h'),
        (s / 60 % 60, 'm'),
        (s % 60, 's'),
    ];
    let out: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() {
        "0s".into()
    } else {
        out
    }
}

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
    fn durations() {
        let ok = [
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("2h", 7200),
            ("1d", 86400),
            ("1d2h3m4s", 93784),
            (" 5m ", 300),
        ];
        for (s, secs) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        for s in [
            "",
            "0s",
            "5",
            "m",
            "1x",
            "1.5h",
            "-1m",
            "1h 30m",
            "٣m",
            "99999999999999999999s",
            "400d",
            "h1",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(93784)), "1d2h3m4s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for s in ["90s", "1h30m", "1d2h3m4s"] {
            assert_eq!(
                format_duration(parse_duration(s).unwrap()).as_str(),
                if s == "90s" { "1m30s" } else { s }
            );
        }
    }

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
