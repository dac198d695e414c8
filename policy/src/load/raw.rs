//! The raw shape of a policy file, as serde sees it: every key not listed is an error, and
//! every value keeps its span so validation can point at it.

use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) name: Option<Spanned<String>>,
    pub(super) description: Option<String>,
    pub(super) hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) host_labels: Option<BTreeMap<String, String>>,
    pub(super) users: Option<Vec<Spanned<String>>>,
    pub(super) groups: Option<Vec<Spanned<String>>>,
    pub(super) run_as: Option<Spanned<String>>,
    pub(super) run_as_group: Option<Spanned<String>>,
    pub(super) access: Option<Spanned<String>>,
    pub(super) env_keep: Option<Vec<Spanned<String>>>,
    pub(super) env_keep_unsafe: Option<Vec<Spanned<String>>>,
    pub(super) command: Option<Vec<Spanned<RawCommand>>>,
    pub(super) default_duration: Option<Spanned<RawDuration>>,
    pub(super) max_duration: Option<Spanned<RawDuration>>,
    pub(super) require_reason: Option<Spanned<bool>>,
    pub(super) ticket: Option<Spanned<String>>,
    pub(super) approval: Option<Spanned<RawApproval>>,
    pub(super) grant_groups: Option<Vec<Spanned<String>>>,
    pub(super) conflicts: Option<Vec<Spanned<String>>>,
    pub(super) on_expiry: Option<Spanned<String>>,
    pub(super) break_glass: Option<Spanned<bool>>,
    pub(super) login: Option<Vec<Spanned<String>>>,
    pub(super) authenticate: Option<Spanned<bool>>,
    pub(super) auth_cache: Option<Spanned<RawDuration>>,
}

/// A duration as written: must be a string (`"90m"`); anything else is a type error that
/// says which forms are accepted.
pub(super) struct RawDuration(pub(super) String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a duration string such as \"90s\", \"15m\", \"1h30m\", \"2h\" or \"1d\"",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApproval {
    pub(super) approvers: Vec<Spanned<String>>,
    pub(super) count: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) users: Option<Vec<Spanned<String>>>,
    pub(super) groups: Option<Vec<Spanned<String>>>,
    pub(super) auditors: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogin {
    pub(super) services: Vec<Spanned<String>>,
    pub(super) hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) host_labels: Option<BTreeMap<String, String>>,
    pub(super) users: Option<Vec<Spanned<String>>>,
    pub(super) groups: Option<Vec<Spanned<String>>>,
    pub(super) access: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommand {
    pub(super) path: Option<Spanned<String>>,
    pub(super) args: Option<Vec<Spanned<RawArg>>>,
    pub(super) rest: Option<Spanned<String>>,
}

pub(super) enum RawArg {
    Literal(String),
    Table(RawArgTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArgTable {
    pub(super) regex: Option<Spanned<String>>,
    pub(super) one_of: Option<Spanned<Vec<String>>>,
}

impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArg;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an argument pattern: a string, { regex = \"...\" } or { one_of = [...] }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawArg, E> {
                Ok(RawArg::Literal(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawArg, E> {
                Ok(RawArg::Literal(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawArg, A::Error> {
                RawArgTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawArg::Table)
            }
        }
        d.deserialize_any(V)
    }
}
