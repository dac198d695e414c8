//! Deciding one request against a policy (first match in load order wins), and whether a
//! profile or `[[login]]` rule applies to a host and a subject.

use crate::model::{Access, ArgPattern, CommandRule, HostInfo, Policy, Profile, Rest, Subject};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A request to decide. `path` is already canonical (symlinks resolved by the daemon).
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub path: &'a Path,
    pub args: &'a [String],
    /// `-p NAME`: consider only this profile.
    pub profile: Option<&'a str>,
    /// `-u USER`: must equal the profile's `run_as`. `None` accepts whatever the matching
    /// profile runs as (the daemon then runs the command as that profile's `run_as`).
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

impl Verdict<'_> {
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow { .. })
    }
}

#[derive(Debug)]
pub struct Denied<'p> {
    pub reason: DenyReason,
    /// The rule that came closest, and where it stopped matching (for `policy explain`).
    pub nearest: Option<(&'p Profile, &'p CommandRule, Mismatch)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No profile applies to this user on this host.
    NoEligibleProfile,
    /// `-p NAME` names no profile.
    UnknownProfile(String),
    /// `-p NAME` exists but does not apply to this user on this host.
    NotEligible(String),
    /// The command is allowed, but not as the requested user (or no applicable profile runs
    /// as that user).
    RunAsNotAllowed { requested: String },
    /// The command would be allowed by these lease profiles, but the caller holds no lease.
    LeaseRequired { profiles: Vec<String> },
    /// No applicable profile allows this command with these arguments.
    CommandNotAllowed,
}

/// Where a rule with the right path stopped matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    TooFewArgs {
        expected: usize,
        got: usize,
    },
    TooManyArgs {
        allowed: usize,
        got: usize,
    },
    Arg {
        /// 0-based index into the arguments (argv\[1..\]).
        index: usize,
        arg: String,
        pattern: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::TooFewArgs { expected, got } => {
                write!(f, "expects {expected} argument(s), got {got}")
            }
            Mismatch::TooManyArgs { allowed, got } => {
                write!(f, "allows only {allowed} argument(s), got {got}")
            }
            Mismatch::Arg {
                index,
                arg,
                pattern,
            } => write!(
                f,
                "argument {} {:?} does not match {pattern}",
                index + 1,
                arg
            ),
        }
    }
}

impl Denied<'_> {
    /// Why, in words for the user who asked.
    pub fn message(&self) -> String {
        match &self.reason {
            DenyReason::NoEligibleProfile => {
                "no policy profile applies to you on this host".to_string()
            }
            DenyReason::UnknownProfile(p) => format!("no such profile: {p}"),
            DenyReason::NotEligible(p) => {
                format!("profile {p} does not apply to you on this host")
            }
            DenyReason::RunAsNotAllowed { requested } => {
                format!("you may not run this command as {requested}")
            }
            DenyReason::LeaseRequired { profiles } => format!(
                "this command needs an active lease on profile {}",
                profiles.join(" or ")
            ),
            DenyReason::CommandNotAllowed => match &self.nearest {
                Some((profile, rule, mismatch)) => format!(
                    "command not allowed; closest rule is `{}` in profile {}: {mismatch}",
                    rule.display(),
                    profile.name
                ),
                None => "command not allowed by any of your profiles".to_string(),
            },
        }
    }

    /// What the user can do next, if anything.
    pub fn hint(&self) -> Option<String> {
        match &self.reason {
            DenyReason::LeaseRequired { profiles } => profiles
                .first()
                .map(|p| format!("request a lease: elevate request {p}")),
            DenyReason::NoEligibleProfile => None,
            _ => Some("see what you may run: elevate list".to_string()),
        }
    }
}

impl fmt::Display for Denied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// `*` matches any run of characters, `?` exactly one; ASCII case-insensitive.
pub fn host_glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let n: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Classic linear backtracking over the last `*`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == '*')
}

/// `hosts` (globs on the host name; absent = any) and `host_labels` (all equal) allow `host`.
fn host_allows(
    hosts: Option<&Vec<String>>,
    labels: &std::collections::BTreeMap<String, String>,
    host: &HostInfo,
) -> bool {
    let name_ok = match hosts {
        None => true,
        Some(globs) => globs.iter().any(|g| host_glob_matches(g, &host.name)),
    };
    name_ok && labels.iter().all(|(k, v)| host.labels.get(k) == Some(v))
}

impl crate::model::LoginRule {
    /// The rule's `hosts` and `host_labels` allow `host`.
    pub fn applies_to_host(&self, host: &HostInfo) -> bool {
        host_allows(self.hosts.as_ref(), &self.host_labels, host)
    }
}

impl Profile {
    /// `hosts` (globs on the host name) and `host_labels` (all equal) both allow `host`.
    pub fn applies_to_host(&self, host: &HostInfo) -> bool {
        host_allows(self.hosts.as_ref(), &self.host_labels, host)
    }

    /// The subject is listed in `users`, or is a member of one of `groups`.
    pub fn is_eligible(&self, subject: &Subject) -> bool {
        self.users.contains(&subject.user) || subject.groups.iter().any(|g| self.groups.contains(g))
    }

    /// Usable by this subject on this host (lease state aside).
    pub fn applies(&self, host: &HostInfo, subject: &Subject) -> bool {
        self.applies_to_host(host) && self.is_eligible(subject)
    }
}

impl CommandRule {
    /// How many leading arguments match, and where matching stopped (`None` = full match).
    pub fn check_args(&self, args: &[String]) -> (usize, Option<Mismatch>) {
        for (index, pattern) in self.args.iter().enumerate() {
            let Some(arg) = args.get(index) else {
                return (
                    index,
                    Some(Mismatch::TooFewArgs {
                        expected: self.args.len(),
                        got: args.len(),
                    }),
                );
            };
            if !pattern.matches(arg) {
                return (
                    index,
                    Some(Mismatch::Arg {
                        index,
                        arg: arg.clone(),
                        pattern: pattern.to_string(),
                    }),
                );
            }
        }
        if self.rest == Rest::Deny && args.len() > self.args.len() {
            return (
                self.args.len(),
                Some(Mismatch::TooManyArgs {
                    allowed: self.args.len(),
                    got: args.len(),
                }),
            );
        }
        (self.args.len(), None)
    }

    /// The canonical path is byte-for-byte `path` and the arguments match.
    pub fn matches(&self, path: &Path, args: &[String]) -> bool {
        self.canonical.as_os_str().as_bytes() == path.as_os_str().as_bytes()
            && self.check_args(args).1.is_none()
    }

    /// One line for `elevate list`: `/usr/bin/systemctl restart {nginx.service|php-fpm.service}`,
    /// `... /regex/`, and ` ...` when further arguments are allowed.
    pub fn display(&self) -> String {
        let mut s = self.path.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string());
        }
        if self.rest == Rest::Any {
            s.push_str(" ...");
        }
        s
    }

    /// Whether any argument is a free-form regex.
    pub fn has_regex(&self) -> bool {
        self.args
            .iter()
            .any(|a| matches!(a, ArgPattern::Regex { .. }))
    }
}

impl Policy {
    /// The profile named `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Every profile that applies to `subject` on `host`, in load order (lease or not).
    pub fn applicable<'p>(&'p self, host: &HostInfo, subject: &Subject) -> Vec<&'p Profile> {
        self.profiles
            .iter()
            .filter(|p| p.applies(host, subject))
            .collect()
    }

    pub fn decide<'p>(
        &'p self,
        host: &HostInfo,
        subject: &Subject,
        query: &Query<'_>,
        has_lease: &dyn Fn(&Profile) -> bool,
    ) -> Verdict<'p> {
        let deny = |reason| {
            Verdict::Deny(Denied {
                reason,
                nearest: None,
            })
        };
        let candidates = match query.profile {
            Some(name) => match self.profile(name) {
                None => return deny(DenyReason::UnknownProfile(name.to_string())),
                Some(p) if !p.applies(host, subject) => {
                    return deny(DenyReason::NotEligible(name.to_string()))
                }
                Some(p) => vec![p],
            },
            None => self.applicable(host, subject),
        };
        if candidates.is_empty() {
            return deny(DenyReason::NoEligibleProfile);
        }

        let mut lease_needed: Vec<String> = Vec::new();
        let mut run_as_blocked = false;
        for profile in &candidates {
            let run_as_ok = match query.run_as {
                None => true,
                Some(r) => r == profile.run_as,
            };
            for rule in &profile.commands {
                if !rule.matches(query.path, query.args) {
                    continue;
                }
                if !run_as_ok {
                    run_as_blocked = true;
                } else if profile.access == Access::Lease && !has_lease(profile) {
                    if !lease_needed.contains(&profile.name) {
                        lease_needed.push(profile.name.clone());
                    }
                } else {
                    return Verdict::Allow { profile, rule };
                }
                break;
            }
        }

        let reason = if !lease_needed.is_empty() {
            DenyReason::LeaseRequired {
                profiles: lease_needed,
            }
        } else if let Some(requested) = query
            .run_as
            .filter(|r| run_as_blocked || !candidates.iter().any(|p| p.run_as == *r))
        {
            DenyReason::RunAsNotAllowed {
                requested: requested.to_string(),
            }
        } else {
            DenyReason::CommandNotAllowed
        };

        Verdict::Deny(Denied {
            reason,
            nearest: nearest_rule(&candidates, query),
        })
    }
}

/// Among `candidates`, the rule with the query's path that matched the most leading
/// arguments (the first one on a tie), and where it stopped matching.
fn nearest_rule<'p>(
    candidates: &[&'p Profile],
    query: &Query<'_>,
) -> Option<(&'p Profile, &'p CommandRule, Mismatch)> {
    let mut nearest: Option<(&Profile, &CommandRule, Mismatch, usize)> = None;
    for profile in candidates {
        for rule in &profile.commands {
            if rule.canonical.as_os_str().as_bytes() != query.path.as_os_str().as_bytes() {
                continue;
            }
            if let (matched, Some(m)) = rule.check_args(query.args) {
                let better = match &nearest {
                    None => true,
                    Some(n) => matched > n.3,
                };
                if better {
                    nearest = Some((profile, rule, m, matched));
                }
            }
        }
    }
    nearest.map(|(p, r, m, _)| (p, r, m))
}
