//! `hosts`: the host-name globs a profile or `[[login]]` rule is limited to.

use super::ctx::Ctx;
use super::names::bad_host_pattern;
use toml::Spanned;

/// `hosts`: globs on the host name, lower-cased; `None` means every host.
pub(super) fn validate_hosts(
    ctx: &mut Ctx,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Option<Vec<String>> {
    match raw {
        None => None,
        Some(h) if h.get_ref().is_empty() => {
            ctx.error(
                &h.span(),
                "`hosts = []` matches no host; remove the key to mean every host".to_string(),
            );
            None
        }
        Some(h) => {
            let mut v = Vec::new();
            for p in h.get_ref() {
                if bad_host_pattern(p.get_ref()) {
                    ctx.error(
                        &p.span(),
                        format!(
                            "invalid host pattern \"{}\": use host-name characters, '*' and '?'",
                            p.get_ref().escape_debug()
                        ),
                    );
                }
                v.push(p.get_ref().to_ascii_lowercase());
            }
            Some(v)
        }
    }
}
