//! `[[profile.command]]`: the path (absolute, clean; resolved through [`System`] for
//! matching) and the argument patterns, with regexes anchored to the whole argument.

use super::ctx::Ctx;
use super::raw::{RawArg, RawCommand};
use crate::model::{ArgPattern, CommandRule, Rest};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Compiled-program size limit for one argument regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a policy command path is unusable, if it is.
fn bad_command_path(path: &str) -> Option<&'static str> {
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    if !path.starts_with('/') {
        return Some("is not absolute (commands are matched by absolute path)");
    }
    if path.len() > 1 && path.ends_with('/') {
        return Some("ends with '/'");
    }
    if path == "/" {
        return Some("is the root directory");
    }
    if path.contains("//") {
        return Some("contains an empty component ('//')");
    }
    // Path::components() silently drops "." components, so look at the raw segments.
    for seg in path.split('/') {
        if seg == "." || seg == ".." {
            return Some("contains '.' or '..' components (write the real path)");
        }
    }
    None
}

/// The one line of a regex error that says what is wrong.
fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Why an argument (or ticket) regex was refused; `Display` is the sentence shown after
/// "invalid regex: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexError {
    /// The regex itself does not compile (the one line that says why).
    Invalid(String),
    /// It compiles alone but not inside `^(?:…)$`.
    NotAnchorable(String),
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegexError::Invalid(why) => f.write_str(why),
            RegexError::NotAnchorable(why) => write!(
                f,
                "cannot be anchored to the whole argument ({why}); a trailing comment in (?x) mode?"
            ),
        }
    }
}

impl std::error::Error for RegexError {}

/// Compile an argument regex so it must match the whole argument.
pub fn compile_arg_regex(source: &str) -> Result<regex::Regex, RegexError> {
    let build = |s: &str| {
        regex::RegexBuilder::new(s)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    // Compile it alone first: a valid regex has balanced groups, so wrapping it cannot change
    // its structure (e.g. "a)|(b" would otherwise escape the anchors).
    build(source).map_err(|e| RegexError::Invalid(regex_error_summary(&e)))?;
    build(&format!("^(?:{source})$"))
        .map_err(|e| RegexError::NotAnchorable(regex_error_summary(&e)))
}

pub(super) fn validate_command(
    ctx: &mut Ctx,
    raw: &RawCommand,
    span: &Range<usize>,
) -> Option<CommandRule> {
    let Some(path) = &raw.path else {
        ctx.error(span, "command has no `path`".to_string());
        return None;
    };
    let path_span = path.span();
    let mut ok = true;
    if let Some(why) = bad_command_path(path.get_ref()) {
        ctx.error(
            &path_span,
            format!("command path \"{}\" {why}", path.get_ref().escape_debug()),
        );
        ok = false;
    }
    let args = validate_args(ctx, raw.args.as_deref().unwrap_or_default());
    let rest = validate_rest(ctx, raw.rest.as_ref());
    let (Some(args), Some(rest), true) = (args, rest, ok) else {
        return None;
    };
    let written = PathBuf::from(path.get_ref());
    let canonical = canonical_on_this_host(ctx, &written, &path_span);
    Some(CommandRule {
        path: written,
        canonical,
        args,
        rest,
        location: ctx.loc(&path_span),
    })
}

/// The argument patterns; `None` if any is invalid (each one reported).
fn validate_args(ctx: &mut Ctx, raw: &[Spanned<RawArg>]) -> Option<Vec<ArgPattern>> {
    let mut ok = true;
    let mut args = Vec::new();
    for a in raw {
        let t = match a.get_ref() {
            RawArg::Literal(s) => {
                args.push(ArgPattern::Literal(s.clone()));
                continue;
            }
            RawArg::Table(t) => t,
        };
        match (&t.regex, &t.one_of) {
            (Some(r), None) => match compile_arg_regex(r.get_ref()) {
                Ok(re) => args.push(ArgPattern::Regex {
                    source: r.get_ref().clone(),
                    re,
                }),
                Err(e) => {
                    ctx.error(&r.span(), format!("invalid regex: {e}"));
                    ok = false;
                }
            },
            (None, Some(v)) if v.get_ref().is_empty() => {
                ctx.error(
                    &v.span(),
                    "`one_of = []` matches nothing; list at least one value".to_string(),
                );
                ok = false;
            }
            (None, Some(v)) => args.push(ArgPattern::OneOf(v.get_ref().clone())),
            _ => {
                ctx.error(
                    &a.span(),
                    "an argument pattern table needs exactly one of `regex` or `one_of`"
                        .to_string(),
                );
                ok = false;
            }
        }
    }
    ok.then_some(args)
}

/// `rest`, `deny` when absent; `None` if invalid (reported).
fn validate_rest(ctx: &mut Ctx, raw: Option<&Spanned<String>>) -> Option<Rest> {
    let Some(r) = raw else {
        return Some(Rest::Deny);
    };
    match r.get_ref().as_str() {
        "deny" => Some(Rest::Deny),
        "any" => Some(Rest::Any),
        other => {
            ctx.error(
                &r.span(),
                format!(
                    "invalid rest \"{}\": expected \"deny\" or \"any\"",
                    other.escape_debug()
                ),
            );
            None
        }
    }
}

/// The path with symlinks resolved through [`System::canonicalize`](crate::system::System);
/// the path as written (with a warning) when it does not exist here.
fn canonical_on_this_host(ctx: &mut Ctx, written: &Path, span: &Range<usize>) -> PathBuf {
    match ctx.sys.canonicalize(written) {
        Some(c) => {
            if !ctx.sys.is_executable(&c) {
                ctx.warn(
                    span,
                    format!(
                        "{} is not an executable file on this host",
                        written.display()
                    ),
                );
            }
            c
        }
        None => {
            ctx.warn(
                span,
                format!(
                    "{} does not exist on this host; the rule matches only that exact path",
                    written.display()
                ),
            );
            written.to_path_buf()
        }
    }
}
