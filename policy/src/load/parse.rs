//! One file's text → its profiles, `[admin]` and `[[login]]` rules. Each top-level table is
//! deserialized on its own, so one broken profile does not hide the errors of the others.

use super::admin::validate_admin;
use super::ctx::Ctx;
use super::login::validate_login;
use super::profile::validate_profile;
use super::raw::{RawAdmin, RawLogin, RawProfile};
use crate::diag::Diagnostic;
use crate::model::{Admin, Location, LoginRule, Profile};
use crate::system::System;
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// What one file contributes.
pub(super) struct FileParts {
    pub(super) profiles: Vec<Profile>,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) admin: Option<Admin>,
    pub(super) logins: Vec<LoginRule>,
    /// (profile, the profile it names in `conflicts`, where), checked across files.
    pub(super) conflict_refs: Vec<(String, String, Location)>,
}

pub(super) fn parse_file(file: &Path, text: &str, sys: &dyn System) -> FileParts {
    let mut ctx = Ctx {
        file,
        text,
        sys,
        diags: Vec::new(),
    };
    let mut parts = FileParts {
        profiles: Vec::new(),
        diags: Vec::new(),
        admin: None,
        logins: Vec::new(),
        conflict_refs: Vec::new(),
    };
    match DeTable::parse(text) {
        Err(e) => ctx.toml_error(&e, &(0..0)),
        Ok(root) => {
            for (key, value) in root.get_ref().iter() {
                let key_name: &str = key.get_ref();
                match key_name {
                    "admin" => match RawAdmin::deserialize(ValueDeserializer::from(value.clone())) {
                        Ok(raw) => parts.admin = Some(validate_admin(&mut ctx, raw, &key.span())),
                        Err(e) => ctx.toml_error(&e, &value.span()),
                    },
                    "login" => parse_logins(&mut ctx, value, &mut parts),
                    "profile" => parse_profiles(&mut ctx, value, &mut parts),
                    _ => ctx.error(
                        &key.span(),
                        format!(
                            "unknown top-level key `{key_name}`, expected `profile`, `admin` or `login`"
                        ),
                    ),
                }
            }
        }
    }
    for p in &parts.profiles {
        ctx.diags.extend(crate::lint::lint(p, sys));
    }
    parts.diags = ctx.diags;
    parts
}

/// The items of `[[what]]`; an error when `what` was written as anything but an array.
fn array_of_tables<'v, 'i>(
    ctx: &mut Ctx,
    what: &str,
    value: &'v Spanned<DeValue<'i>>,
) -> Option<&'v DeArray<'i>> {
    let DeValue::Array(items) = value.get_ref() else {
        ctx.error(
            &value.span(),
            format!("`{what}` must be an array of tables: write each as [[{what}]]"),
        );
        return None;
    };
    Some(items)
}

fn parse_logins(ctx: &mut Ctx, value: &Spanned<DeValue<'_>>, parts: &mut FileParts) {
    let Some(items) = array_of_tables(ctx, "login", value) else {
        return;
    };
    for item in items.iter() {
        match RawLogin::deserialize(ValueDeserializer::from(item.clone())) {
            Ok(raw) => {
                if let Some(l) = validate_login(ctx, raw, &item.span()) {
                    parts.logins.push(l);
                }
            }
            Err(e) => ctx.toml_error(&e, &item.span()),
        }
    }
}

fn parse_profiles(ctx: &mut Ctx, value: &Spanned<DeValue<'_>>, parts: &mut FileParts) {
    let Some(items) = array_of_tables(ctx, "profile", value) else {
        return;
    };
    for item in items.iter() {
        let span = item.span();
        match RawProfile::deserialize(ValueDeserializer::from(item.clone())) {
            Ok(raw) => {
                let refs: Vec<(String, Range<usize>)> = raw
                    .conflicts
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| (c.get_ref().clone(), c.span()))
                    .collect();
                if let Some(p) = validate_profile(ctx, raw, &span) {
                    for (to, sp) in refs {
                        parts.conflict_refs.push((p.name.clone(), to, ctx.loc(&sp)));
                    }
                    parts.profiles.push(p);
                }
            }
            Err(e) => ctx.toml_error(&e, &span),
        }
    }
}
