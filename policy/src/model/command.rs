//! One `[[profile.command]]`: the path it allows and the patterns its arguments must match.

use super::Location;
use regex::Regex;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Exactly the listed arguments (the default).
    Deny,
    /// Further arguments after the listed ones are allowed.
    Any,
}

#[derive(Debug, Clone)]
pub enum ArgPattern {
    Literal(String),
    /// Compiled anchored (`^(?:src)$`) so it must match the whole argument.
    Regex {
        source: String,
        re: Regex,
    },
    OneOf(Vec<String>),
}

impl ArgPattern {
    pub fn matches(&self, arg: &str) -> bool {
        match self {
            ArgPattern::Literal(s) => s == arg,
            ArgPattern::Regex { re, .. } => re.is_match(arg),
            ArgPattern::OneOf(v) => v.iter().any(|s| s == arg),
        }
    }
}

impl std::fmt::Display for ArgPattern {
    /// How `elevate list` and `explain` show a pattern.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgPattern::Literal(s) => write!(f, "{}", quote_if_needed(s)),
            ArgPattern::Regex { source, .. } => {
                let shown: String = source
                    .chars()
                    .flat_map(|c| {
                        let esc: Vec<char> = if c.is_control() {
                            c.escape_default().collect()
                        } else {
                            vec![c]
                        };
                        esc
                    })
                    .collect();
                write!(f, "/{shown}/")
            }
            ArgPattern::OneOf(v) => {
                let alts: Vec<String> = v.iter().map(|s| quote_if_needed(s)).collect();
                write!(f, "{{{}}}", alts.join("|"))
            }
        }
    }
}

/// Literals are shown bare unless that would be ambiguous or unsafe on a terminal (empty,
/// whitespace, quotes, control characters, pattern syntax): then quoted and escaped.
fn quote_if_needed(s: &str) -> String {
    let special = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '\'' | '{' | '}' | '|')
    };
    let looks_like_regex = s.len() > 1 && s.starts_with('/') && s.ends_with('/');
    if s.is_empty() || s.chars().any(special) || looks_like_regex {
        format!("\"{}\"", s.escape_debug())
    } else {
        s.to_string()
    }
}

#[derive(Debug, Clone)]
pub struct CommandRule {
    /// The absolute path as written in the policy.
    pub path: PathBuf,
    /// The path with symlinks resolved on this host at load time (`System::canonicalize`);
    /// equal to `path` when it does not exist here. Requests match against this.
    pub canonical: PathBuf,
    pub args: Vec<ArgPattern>,
    pub rest: Rest,
    pub location: Location,
}
