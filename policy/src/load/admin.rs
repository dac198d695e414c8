//! `[admin]`: who may list and revoke every lease, and who may list them (auditors).

use super::accounts::{users_and_groups, validate_approver};
use super::ctx::Ctx;
use super::raw::RawAdmin;
use crate::model::Admin;
use std::ops::Range;
use toml::Spanned;

pub(super) fn validate_admin(ctx: &mut Ctx, raw: RawAdmin, span: &Range<usize>) -> Admin {
    let (users, groups) = users_and_groups(ctx, raw.users.as_deref(), raw.groups.as_deref());
    let mut auditors = Vec::new();
    for a in raw.auditors.as_deref().unwrap_or_default() {
        if let Some(x) = validate_approver(ctx, "auditor", a) {
            auditors.push(x);
        }
    }
    let listed = |v: &Option<Vec<Spanned<String>>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let (has_admins, has_auditors) = (
        listed(&raw.users) || listed(&raw.groups),
        listed(&raw.auditors),
    );
    if !has_admins {
        ctx.warn(
            span,
            if has_auditors {
                "[admin] names no users or groups: nobody can revoke others' leases"
            } else {
                "[admin] is empty: nobody can list or revoke others' leases"
            }
            .to_string(),
        );
    }
    Admin {
        users,
        groups,
        auditors,
        location: Some(ctx.loc(span)),
    }
}
