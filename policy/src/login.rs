//! Which `[[login]]` rule gates a login, and which profiles' leases open it. Pure functions
//! of the policy and the subject, so the precedence is tested without a system.
//!
//! Precedence, independent of file order: a rule naming the user in `users` beats rules that
//! match through `groups`; among rules of the same kind the most restrictive wins
//! (`deny` over `lease` over `standing`). So a broad `standing` rule for a group can never
//! loosen a `lease` rule written for a person, and a mistake errs on the side of no login.

use crate::lease::{LoginAccess, LoginRule};
use crate::model::{HostInfo, Policy, Profile, Subject};

fn strictness(a: LoginAccess) -> u8 {
    match a {
        LoginAccess::Standing => 0,
        LoginAccess::Lease => 1,
        LoginAccess::Deny => 2,
    }
}

fn names_service(r: &LoginRule, service: &str) -> bool {
    r.services.iter().any(|s| s == service)
}

impl Policy {
    /// The rule that gates `subject` logging in through `service`; `None`: not gated.
    pub fn login_rule(
        &self,
        service: &str,
        host: &HostInfo,
        subject: &Subject,
    ) -> Option<&LoginRule> {
        let pick = |by_user: bool| {
            self.logins
                .iter()
                .filter(|r| names_service(r, service) && r.applies_to_host(host))
                .filter(|r| {
                    if by_user {
                        r.users.contains(&subject.user)
                    } else {
                        subject.groups.iter().any(|g| r.groups.contains(g))
                    }
                })
                .max_by_key(|r| strictness(r.access))
        };
        pick(true).or_else(|| pick(false))
    }

    /// Profiles on this host whose leases open `service` logins for `subject`.
    pub fn login_profiles<'a>(
        &'a self,
        service: &'a str,
        host: &'a HostInfo,
        subject: &'a Subject,
    ) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles
            .iter()
            .filter(move |p| p.login.iter().any(|s| s == service) && p.applies(host, subject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Location;

    fn rule(services: &[&str], users: &[&str], groups: &[&str], access: LoginAccess) -> LoginRule {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        LoginRule {
            services: s(services),
            users: s(users),
            groups: s(groups),
            access,
            hosts: None,
            host_labels: Default::default(),
            location: Location {
                file: "t.toml".into(),
                line: 1,
                col: 1,
            },
        }
    }
    fn subject(user: &str, groups: &[&str]) -> Subject {
        Subject {
            uid: elevate_base::Uid(1000),
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn precedence_user_over_group_then_most_restrictive() {
        use LoginAccess::*;
        let p = Policy {
            logins: vec![
                rule(&["sshd"], &[], &["staff"], Standing),
                rule(&["sshd"], &[], &["engineers"], Lease),
                rule(&["sshd", "login"], &["bot"], &[], Standing),
                rule(&["sshd"], &[], &["contractors"], Deny),
            ],
            ..Policy::default()
        };
        let host = HostInfo {
            name: "web-1".into(),
            ..HostInfo::default()
        };
        let access = |u: &str, g: &[&str], svc: &str| {
            p.login_rule(svc, &host, &subject(u, g)).map(|r| r.access)
        };
        assert_eq!(access("alice", &["staff"], "sshd"), Some(Standing));
        assert_eq!(
            access("alice", &["staff", "engineers"], "sshd"),
            Some(Lease)
        );
        assert_eq!(
            access("alice", &["staff", "contractors"], "sshd"),
            Some(Deny)
        );
        // Named users: their own rule, even when a group rule is stricter.
        assert_eq!(access("bot", &["engineers"], "sshd"), Some(Standing));
        assert_eq!(access("bot", &[], "login"), Some(Standing));
        // Not gated: another service, or nobody matches.
        assert_eq!(access("alice", &["engineers"], "login"), None);
        assert_eq!(access("zed", &[], "sshd"), None);
    }

    #[test]
    fn rules_apply_only_on_their_hosts() {
        use LoginAccess::*;
        let mut db_only = rule(&["sshd"], &[], &["engineers"], Deny);
        db_only.hosts = Some(vec!["db-*".into()]);
        let mut prod_only = rule(&["sshd"], &[], &["engineers"], Lease);
        prod_only.host_labels = [("env".to_string(), "prod".to_string())].into();
        let p = Policy {
            logins: vec![db_only, prod_only],
            ..Policy::default()
        };
        let host = |name: &str, env: &str| HostInfo {
            name: name.into(),
            labels: [("env".to_string(), env.to_string())].into(),
        };
        let access = |h: &HostInfo| {
            p.login_rule("sshd", h, &subject("alice", &["engineers"]))
                .map(|r| r.access)
        };
        assert_eq!(access(&host("db-1", "prod")), Some(Deny));
        assert_eq!(access(&host("web-1", "prod")), Some(Lease));
        assert_eq!(access(&host("web-1", "dev")), None);
    }
}
