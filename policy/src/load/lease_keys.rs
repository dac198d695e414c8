//! The just-in-time keys of a profile (durations, reason, ticket, approval, granted groups,
//! conflicts, expiry, break-glass, login services), which only `access = "lease"` profiles
//! take; and `auth_cache`, the step-up memory any profile with `authenticate = true` may set.

use super::accounts::{validate_approver, validate_names};
use super::command::compile_arg_regex;
use super::ctx::Ctx;
use super::login::validate_services;
use super::names::is_valid_profile_name;
use super::raw::{RawApproval, RawDuration, RawProfile};
use crate::model::{Access, Approval, Approver, OnExpiry, TicketPattern};
use std::ops::Range;
use toml::Spanned;

/// Longest `auth_cache` accepted: a remembered authentication is standing privilege on that
/// terminal, so it is kept short (sudo's default is 15 minutes).
const MAX_AUTH_CACHE: std::time::Duration = std::time::Duration::from_secs(3600);

pub(super) fn validate_auth_cache(
    ctx: &mut Ctx,
    raw: &RawProfile,
    authenticate: bool,
) -> Option<std::time::Duration> {
    let v = raw.auth_cache.as_ref()?;
    if !authenticate {
        ctx.error(
            &v.span(),
            "`auth_cache` without `authenticate = true` has no effect: add authenticate = true or remove it".to_string(),
        );
        return None;
    }
    match elevate_base::duration::parse_duration(&v.get_ref().0) {
        Ok(d) if d > MAX_AUTH_CACHE => {
            ctx.error(
                &v.span(),
                format!(
                    "auth_cache \"{}\" is longer than the 1h allowed",
                    v.get_ref().0
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(&v.span(), format!("auth_cache: {e}"));
            None
        }
    }
}

/// The lease keys of one profile, validated.
#[derive(Default)]
pub(super) struct LeaseKeys {
    pub(super) default_duration: Option<std::time::Duration>,
    pub(super) max_duration: Option<std::time::Duration>,
    pub(super) require_reason: bool,
    pub(super) ticket: Option<TicketPattern>,
    pub(super) approval: Option<Approval>,
    pub(super) grant_groups: Vec<String>,
    pub(super) conflicts: Vec<String>,
    pub(super) on_expiry: OnExpiry,
    pub(super) break_glass: bool,
    pub(super) login: Vec<String>,
}

pub(super) fn validate_lease_keys(ctx: &mut Ctx, raw: &RawProfile, access: Access) -> LeaseKeys {
    if access != Access::Lease {
        reject_lease_only_keys(ctx, raw);
        return LeaseKeys::default();
    }
    let default_duration = duration(ctx, &raw.default_duration);
    let max_duration = duration(ctx, &raw.max_duration);
    if let (Some(d), Some(m), Some(sp)) = (
        default_duration,
        max_duration,
        raw.default_duration.as_ref(),
    ) {
        if d > m {
            ctx.error(
                &sp.span(),
                format!(
                    "default_duration {} is longer than max_duration {}",
                    elevate_base::duration::format_duration(d),
                    elevate_base::duration::format_duration(m)
                ),
            );
        }
    }
    let break_glass = raw.break_glass.as_ref().is_some_and(|b| *b.get_ref());
    let sys = ctx.sys;
    LeaseKeys {
        default_duration,
        max_duration,
        require_reason: raw.require_reason.as_ref().is_some_and(|b| *b.get_ref()),
        ticket: validate_ticket(ctx, raw.ticket.as_ref()),
        approval: raw
            .approval
            .as_ref()
            .map(|a| validate_approval(ctx, a, raw, break_glass)),
        grant_groups: match &raw.grant_groups {
            Some(g) => {
                validate_names(ctx, "group", g, &|n| sys.group_exists(n)).unwrap_or_default()
            }
            None => Vec::new(),
        },
        conflicts: validate_conflicts(ctx, raw.conflicts.as_deref().unwrap_or_default()),
        on_expiry: validate_on_expiry(ctx, raw.on_expiry.as_ref()),
        break_glass,
        login: validate_services(ctx, raw.login.as_deref().unwrap_or_default()).0,
    }
}

/// A standing profile may not carry lease keys: an error at each one written.
fn reject_lease_only_keys(ctx: &mut Ctx, raw: &RawProfile) {
    let first = |v: &Option<Vec<Spanned<String>>>| v.as_ref()?.first().map(|x| x.span());
    let lease_only: [(&str, Option<Range<usize>>); 10] = [
        (
            "default_duration",
            raw.default_duration.as_ref().map(|x| x.span()),
        ),
        ("max_duration", raw.max_duration.as_ref().map(|x| x.span())),
        (
            "require_reason",
            raw.require_reason.as_ref().map(|x| x.span()),
        ),
        ("ticket", raw.ticket.as_ref().map(|x| x.span())),
        ("approval", raw.approval.as_ref().map(|x| x.span())),
        ("grant_groups", first(&raw.grant_groups)),
        ("conflicts", first(&raw.conflicts)),
        ("on_expiry", raw.on_expiry.as_ref().map(|x| x.span())),
        ("break_glass", raw.break_glass.as_ref().map(|x| x.span())),
        ("login", first(&raw.login)),
    ];
    for (key, span) in lease_only {
        if let Some(sp) = span {
            ctx.error(
                &sp,
                format!(
                    "only lease profiles take `{key}` (this one is standing): add access = \"lease\" or remove `{key}`"
                ),
            );
        }
    }
}

fn duration(ctx: &mut Ctx, v: &Option<Spanned<RawDuration>>) -> Option<std::time::Duration> {
    let v = v.as_ref()?;
    match elevate_base::duration::parse_duration(&v.get_ref().0) {
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(&v.span(), e.to_string());
            None
        }
    }
}

fn validate_ticket(ctx: &mut Ctx, raw: Option<&Spanned<String>>) -> Option<TicketPattern> {
    let t = raw?;
    if t.get_ref().trim().is_empty() {
        ctx.error(
            &t.span(),
            "an empty ticket pattern matches no ticket (tickets are never empty): remove `ticket` or write a pattern such as \"^(INC|CHG)-[0-9]+$\"".to_string(),
        );
        return None;
    }
    match compile_arg_regex(t.get_ref()) {
        Ok(regex) => Some(TicketPattern {
            source: t.get_ref().clone(),
            regex,
        }),
        Err(e) => {
            ctx.error(&t.span(), format!("invalid ticket pattern: {e}"));
            None
        }
    }
}

/// `approval`: who approves and how many must. Counts that could never be reached are
/// errors; a requester who is one of exactly `count` approvers is warned about.
fn validate_approval(
    ctx: &mut Ctx,
    a: &Spanned<RawApproval>,
    raw: &RawProfile,
    break_glass: bool,
) -> Approval {
    let ra = a.get_ref();
    let mut approvers = Vec::new();
    for ap in &ra.approvers {
        if let Some(x) = validate_approver(ctx, "approver", ap) {
            approvers.push(x);
        }
    }
    if ra.approvers.is_empty() {
        ctx.error(&a.span(), "approval lists no approvers".to_string());
    }
    let count = ra.count.as_ref().map_or(1, |c| *c.get_ref());
    let cspan = ra.count.as_ref().map_or(a.span(), |c| c.span());
    let users_only = approvers.iter().all(|x| matches!(x, Approver::User(_)));
    // Each approver counts once, however often listed.
    let mut distinct: Vec<&Approver> = Vec::new();
    for x in &approvers {
        if !distinct.contains(&x) {
            distinct.push(x);
        }
    }
    if !(1..=100).contains(&count) {
        ctx.error(
            &cspan,
            format!("approval count must be between 1 and 100, not {count}"),
        );
    } else if users_only && !distinct.is_empty() && count as usize > distinct.len() {
        ctx.error(
            &cspan,
            format!(
                "approval count {count} is more than the {} distinct approver(s) listed: no request could ever be approved",
                distinct.len()
            ),
        );
    } else if users_only && count as usize == distinct.len() {
        // The requester never approves their own request.
        let eligible = raw.users.as_deref().unwrap_or_default();
        if let Some(Approver::User(u)) = distinct
            .iter()
            .find(|a| matches!(a, Approver::User(u) if eligible.iter().any(|e| e.get_ref() == u)))
        {
            ctx.warn(
                &cspan,
                format!(
                    "approver \"{u}\" may also request this profile, but never approves their own request: their requests need {count} other approver(s) and only {} are listed",
                    count - 1
                ),
            );
        }
    }
    if break_glass {
        ctx.error(
            &a.span(),
            "a break-glass profile never waits for approval: remove `approval`".to_string(),
        );
    }
    Approval {
        approvers,
        count: count.clamp(1, 100) as u32,
    }
}

/// `conflicts`: names of profiles (whether they exist is checked once all files are loaded).
fn validate_conflicts(ctx: &mut Ctx, raw: &[Spanned<String>]) -> Vec<String> {
    let mut conflicts = Vec::new();
    for c in raw {
        if !is_valid_profile_name(c.get_ref()) {
            ctx.error(
                &c.span(),
                format!(
                    "invalid profile name \"{}\" in conflicts",
                    c.get_ref().escape_debug()
                ),
            );
        } else {
            conflicts.push(c.get_ref().clone());
        }
    }
    conflicts
}

fn validate_on_expiry(ctx: &mut Ctx, raw: Option<&Spanned<String>>) -> OnExpiry {
    let Some(o) = raw else {
        return OnExpiry::default();
    };
    match o.get_ref().as_str() {
        "terminate" => OnExpiry::Terminate,
        "keep" => OnExpiry::Keep,
        other => {
            ctx.error(
                &o.span(),
                format!(
                    "invalid on_expiry \"{}\": expected \"terminate\" or \"keep\"",
                    other.escape_debug()
                ),
            );
            OnExpiry::default()
        }
    }
}
