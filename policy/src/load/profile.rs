//! One `[[profile]]`: who may use it, as whom, where, with which environment and commands.
//! Its lease keys are checked in [`super::lease_keys`].

use super::accounts::users_and_groups;
use super::command::validate_command;
use super::ctx::Ctx;
use super::hosts::validate_hosts;
use super::lease_keys::{validate_auth_cache, validate_lease_keys};
use super::names::{bad_account_name, is_valid_profile_name};
use super::raw::RawProfile;
use crate::env::{self, keep_verdict, KeepVerdict};
use crate::lint::LeaseKey;
use crate::model::{Access, CommandRule, Profile};
use std::ops::Range;
use toml::Spanned;

pub(super) fn validate_profile(
    ctx: &mut Ctx,
    raw: RawProfile,
    span: &Range<usize>,
) -> Option<Profile> {
    let errors_before = ctx.error_count();
    let sys = ctx.sys;
    let name = profile_name(ctx, &raw, span);
    let name_span = raw.name.as_ref().map_or(span.clone(), |n| n.span());
    let hosts = validate_hosts(ctx, raw.hosts.as_ref());
    let (users, groups) = users_and_groups(ctx, raw.users.as_deref(), raw.groups.as_deref());
    if raw.users.as_ref().map_or(0, Vec::len) == 0 && raw.groups.as_ref().map_or(0, Vec::len) == 0 {
        ctx.error(
            &name_span,
            format!("profile \"{name}\" has no `users` and no `groups`: nobody could use it"),
        );
    }
    let run_as = match &raw.run_as {
        None => "root".to_string(),
        Some(r) => run_as_account(ctx, "run_as user", r, &|n| sys.user_exists(n)),
    };
    let run_as_group = raw
        .run_as_group
        .as_ref()
        .map(|g| run_as_account(ctx, "run_as_group", g, &|n| sys.group_exists(n)));
    let access = validate_access(ctx, raw.access.as_ref());
    let env_keep = validate_env_keep(ctx, &raw, &name);
    let commands = validate_commands(ctx, &raw, access, &name, &name_span);
    let lease = validate_lease_keys(ctx, &raw, access);
    let authenticate = raw.authenticate.as_ref().is_some_and(|b| *b.get_ref());
    let auth_cache = validate_auth_cache(ctx, &raw, authenticate);
    let max_span = raw.max_duration.as_ref().map(|x| x.span());
    let expiry_span = raw.on_expiry.as_ref().map(|x| x.span());
    if ctx.error_count() != errors_before {
        return None;
    }
    let profile = Profile {
        name,
        description: raw.description.unwrap_or_default(),
        hosts,
        host_labels: raw.host_labels.unwrap_or_default(),
        users,
        groups,
        run_as,
        run_as_group,
        access,
        env_keep,
        commands,
        location: ctx.loc(&name_span),
        default_duration: lease.default_duration,
        max_duration: lease.max_duration,
        require_reason: lease.require_reason,
        ticket: lease.ticket,
        approval: lease.approval,
        grant_groups: lease.grant_groups,
        conflicts: lease.conflicts,
        on_expiry: lease.on_expiry,
        break_glass: lease.break_glass,
        login: lease.login,
        authenticate,
        auth_cache,
    };
    for (key, message) in crate::lint::lease_findings(&profile) {
        let span = match key {
            LeaseKey::Name => None,
            LeaseKey::MaxDuration => max_span.clone(),
            LeaseKey::OnExpiry => expiry_span.clone(),
        };
        ctx.warn(&span.unwrap_or_else(|| name_span.clone()), message);
    }
    Some(profile)
}

/// The profile's `name` (empty, with an error, when missing).
fn profile_name(ctx: &mut Ctx, raw: &RawProfile, span: &Range<usize>) -> String {
    let Some(n) = &raw.name else {
        ctx.error(span, "profile has no `name`".to_string());
        return String::new();
    };
    if !is_valid_profile_name(n.get_ref()) {
        ctx.error(
            &n.span(),
            format!(
                "invalid profile name \"{}\": use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)",
                n.get_ref().escape_debug()
            ),
        );
    }
    n.get_ref().clone()
}

/// `run_as` / `run_as_group` (`what` names it in messages): an invalid name is an error, one
/// unknown on this host a warning.
fn run_as_account(
    ctx: &mut Ctx,
    what: &str,
    raw: &Spanned<String>,
    exists: &dyn Fn(&str) -> bool,
) -> String {
    if let Some(why) = bad_account_name(raw.get_ref()) {
        ctx.error(
            &raw.span(),
            format!("invalid {what} \"{}\": {why}", raw.get_ref().escape_debug()),
        );
    } else if !exists(raw.get_ref()) {
        ctx.warn(
            &raw.span(),
            format!(
                "{what} \"{}\" does not exist on this host; commands will fail",
                raw.get_ref()
            ),
        );
    }
    raw.get_ref().clone()
}

/// `access`, standing when absent (or invalid, with an error).
fn validate_access(ctx: &mut Ctx, raw: Option<&Spanned<String>>) -> Access {
    let Some(a) = raw else {
        return Access::Standing;
    };
    match a.get_ref().as_str() {
        "standing" => Access::Standing,
        "lease" => Access::Lease,
        other => {
            ctx.error(
                &a.span(),
                format!(
                    "invalid access \"{}\": expected \"standing\" or \"lease\"",
                    other.escape_debug()
                ),
            );
            Access::Standing
        }
    }
}

/// The variables to pass: `env_keep`'s inert names and `env_keep_unsafe`'s acknowledged
/// ones (each with a warning). A refused name in either is an error, and so is a name in
/// `env_keep` that is not known to be inert (the message says to acknowledge it instead).
fn validate_env_keep(ctx: &mut Ctx, raw: &RawProfile, profile: &str) -> Vec<String> {
    let mut env_keep = Vec::new();
    for e in raw.env_keep.as_deref().unwrap_or_default() {
        let name = e.get_ref();
        match keep_verdict(name) {
            KeepVerdict::Inert => env_keep.push(name.clone()),
            KeepVerdict::Unknown => ctx.error(&e.span(), env::unacknowledged(name)),
            KeepVerdict::Refused(why) => ctx.error(&e.span(), why),
        }
    }
    for e in raw.env_keep_unsafe.as_deref().unwrap_or_default() {
        let name = e.get_ref();
        match keep_verdict(name) {
            KeepVerdict::Inert => ctx.warn(&e.span(), env::needlessly_acknowledged(name)),
            KeepVerdict::Unknown => {
                ctx.warn(&e.span(), crate::lint::unsafe_env_warning(profile, name))
            }
            KeepVerdict::Refused(why) => {
                ctx.error(&e.span(), why);
                continue;
            }
        }
        env_keep.push(name.clone());
    }
    env_keep
}

/// The valid `[[profile.command]]`s; a standing profile with none at all is warned about.
fn validate_commands(
    ctx: &mut Ctx,
    raw: &RawProfile,
    access: Access,
    name: &str,
    name_span: &Range<usize>,
) -> Vec<CommandRule> {
    let mut commands = Vec::new();
    for c in raw.command.as_deref().unwrap_or_default() {
        if let Some(rule) = validate_command(ctx, c.get_ref(), &c.span()) {
            commands.push(rule);
        }
    }
    if commands.is_empty()
        && access == Access::Standing
        && raw.command.as_ref().map_or(0, Vec::len) == 0
    {
        ctx.warn(
            name_span,
            format!("standing profile \"{name}\" has no commands: it grants nothing"),
        );
    }
    commands
}
