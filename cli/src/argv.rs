//! The command to run, as the daemon takes it: argv as UTF-8 with a relative path made
//! absolute, and the caller's environment.

use crate::error::Failure;
use std::ffi::OsString;

/// argv as UTF-8, with a relative path containing `/` made absolute against our cwd (the
/// daemon resolves bare names itself, through its fixed PATH).
pub fn request_argv(command: &[OsString]) -> Result<Vec<String>, Failure> {
    let mut argv = Vec::with_capacity(command.len());
    for a in command {
        match a.to_str() {
            Some(s) => argv.push(s.to_string()),
            None => return Err(Failure::NotUtf8Argument(a.clone())),
        }
    }
    if let Some(first) = argv.first_mut() {
        if first.is_empty() {
            return Err(Failure::EmptyCommandName);
        }
        if first.contains('/') && !first.starts_with('/') {
            let cwd = std::env::current_dir().map_err(|source| Failure::CannotResolve {
                name: first.clone(),
                source,
            })?;
            *first = cwd.join(&*first).display().to_string();
        }
    }
    Ok(argv)
}

/// The caller's environment as UTF-8 pairs (the daemon keeps what its allow-list permits).
pub fn caller_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::exit;

    #[test]
    fn argv_rules() {
        let a = |v: &[&str]| request_argv(&v.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(a(&["id", "-u"]).unwrap(), vec!["id", "-u"]);
        assert_eq!(a(&["/usr/bin/id"]).unwrap(), vec!["/usr/bin/id"]);
        let rel = a(&["./x"]).unwrap();
        assert!(rel[0].starts_with('/') && rel[0].ends_with("/./x"));
        assert!(a(&[""]).is_err());
        use std::os::unix::ffi::OsStringExt;
        let bad = vec![OsString::from("id"), OsString::from_vec(vec![0xff])];
        assert_eq!(request_argv(&bad).unwrap_err().code(), exit::USAGE);
    }
}
