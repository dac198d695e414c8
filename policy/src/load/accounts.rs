//! Users, groups and approvers named in a policy: invalid names are errors, names unknown on
//! this host ([`System::user_exists`](crate::system::System::user_exists)) are warnings.

use super::ctx::Ctx;
use super::names::bad_account_name;
use crate::model::Approver;
use toml::Spanned;

/// The `users` and `groups` lists of a profile, `[admin]` or `[[login]]`, validated (unknown
/// names are warnings; invalid ones errors and dropped).
pub(super) fn users_and_groups(
    ctx: &mut Ctx,
    users: Option<&[Spanned<String>]>,
    groups: Option<&[Spanned<String>]>,
) -> (Vec<String>, Vec<String>) {
    let sys = ctx.sys;
    let users = validate_names(ctx, "user", users.unwrap_or_default(), &|n| {
        sys.user_exists(n)
    })
    .unwrap_or_default();
    let groups = validate_names(ctx, "group", groups.unwrap_or_default(), &|n| {
        sys.group_exists(n)
    })
    .unwrap_or_default();
    (users, groups)
}

pub(super) fn validate_names(
    ctx: &mut Ctx,
    what: &str,
    names: &[Spanned<String>],
    exists: &dyn Fn(&str) -> bool,
) -> Option<Vec<String>> {
    let mut ok = true;
    let mut out = Vec::new();
    for n in names {
        if let Some(why) = bad_account_name(n.get_ref()) {
            ctx.error(
                &n.span(),
                format!(
                    "invalid {what} name \"{}\": {why}",
                    n.get_ref().escape_debug()
                ),
            );
            ok = false;
        } else {
            if !exists(n.get_ref()) {
                ctx.warn(
                    &n.span(),
                    format!("unknown {what} \"{}\" on this host", n.get_ref()),
                );
            }
            out.push(n.get_ref().clone());
        }
    }
    ok.then_some(out)
}

/// `NAME` (a user) or `group:NAME`: an error if the name is invalid, a warning if it is
/// unknown on this host.
pub(super) fn validate_approver(
    ctx: &mut Ctx,
    what: &str,
    raw: &Spanned<String>,
) -> Option<Approver> {
    let text = raw.get_ref();
    let (kind, name) = match text.strip_prefix("group:") {
        Some(g) => ("group", g),
        None => ("user", text.as_str()),
    };
    if let Some(why) = bad_account_name(name) {
        ctx.error(
            &raw.span(),
            format!(
                "invalid {what} \"{}\": {why} (write a user name or group:NAME)",
                text.escape_debug()
            ),
        );
        return None;
    }
    let approver = Approver::parse(text);
    let known = match &approver {
        Approver::User(u) => ctx.sys.user_exists(u),
        Approver::Group(g) => ctx.sys.group_exists(g),
    };
    if !known {
        ctx.warn(
            &raw.span(),
            format!("{what}: unknown {kind} \"{name}\" on this host"),
        );
    }
    Some(approver)
}
