//! `[[login]]`: which PAM services gate which users and groups, and how.

use super::accounts::validate_names;
use super::ctx::Ctx;
use super::hosts::validate_hosts;
use super::names::is_service_name;
use super::raw::RawLogin;
use crate::model::{LoginAccess, LoginRule};
use std::ops::Range;
use toml::Spanned;

pub(super) fn validate_login(
    ctx: &mut Ctx,
    raw: RawLogin,
    span: &Range<usize>,
) -> Option<LoginRule> {
    // A bad host pattern is an error of its own: the whole policy is rejected anyway.
    let hosts = validate_hosts(ctx, raw.hosts.as_ref());
    let (services, mut ok) = validate_services(ctx, &raw.services);
    if raw.services.is_empty() {
        ctx.error(span, "[[login]] lists no services".to_string());
        ok = false;
    }
    let sys = ctx.sys;
    let users = validate_names(
        ctx,
        "user",
        raw.users.as_deref().unwrap_or_default(),
        &|n| sys.user_exists(n),
    );
    let groups = validate_names(
        ctx,
        "group",
        raw.groups.as_deref().unwrap_or_default(),
        &|n| sys.group_exists(n),
    );
    let access = match raw.access.get_ref().as_str() {
        "standing" => LoginAccess::Standing,
        "lease" => LoginAccess::Lease,
        "deny" => LoginAccess::Deny,
        other => {
            ctx.error(
                &raw.access.span(),
                format!(
                    "invalid login access \"{}\": expected \"standing\", \"lease\" or \"deny\"",
                    other.escape_debug()
                ),
            );
            ok = false;
            LoginAccess::Deny
        }
    };
    let (users, groups) = (users?, groups?);
    if users.is_empty() && groups.is_empty() {
        ctx.error(
            span,
            "[[login]] gates nobody: list users or groups".to_string(),
        );
        ok = false;
    }
    ok.then(|| LoginRule {
        services,
        users,
        groups,
        access,
        hosts,
        host_labels: raw.host_labels.unwrap_or_default(),
        location: ctx.loc(span),
    })
}

/// PAM service names (a `[[login]]` rule's `services`, a lease profile's `login`): the valid
/// ones, and whether all were.
pub(super) fn validate_services(ctx: &mut Ctx, raw: &[Spanned<String>]) -> (Vec<String>, bool) {
    let mut ok = true;
    let mut services = Vec::new();
    for s in raw {
        if is_service_name(s.get_ref()) {
            services.push(s.get_ref().clone());
        } else {
            ctx.error(
                &s.span(),
                format!(
                    "invalid PAM service name \"{}\": use 1-64 of a-z 0-9 . _ - (not \".\" or \"..\")",
                    s.get_ref().escape_debug()
                ),
            );
            ok = false;
        }
    }
    (services, ok)
}
