//! The end-of-lease set-gid sweep as configured (`setgid_scan` in elevated.toml), and the
//! question both `elevate status` and `elevate policy check` ask of this host: which of those
//! places are on a file system that honours set-id bits (not mounted `nosuid`).
//!
//! Why: a holder of a lease that grants group G can copy a program, `chgrp G` and `chmod
//! g+s` it; once the lease ends, the copy still runs with G. The daemon strips the bit from
//! such files when the lease ends, but only where it looks, and a `nosuid` mount makes the
//! bit harmless everywhere on it.

use crate::system::os;
use elevate_base::Uid;
use serde::Deserialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// `setgid_scan` when the configuration does not name it: where a user can usually write,
/// their own runtime directory (a mount of its own) and their home directory.
pub const DEFAULT_SETGID_SCAN: &[&str] = &[
    "/home",
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run/user/%U",
    "%h",
];

/// One place the sweep walks: an absolute directory, in which `%U` stands for the holder's
/// uid and a leading `%h` for their home directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ScanRoot(String);

/// Why a `setgid_scan` entry is refused; `Display` is the sentence shown (after the
/// file:line:col of the entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRootError {
    NotAbsolute(String),
    DotComponent(String),
    Specifier(String),
}

impl fmt::Display for ScanRootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanRootError::NotAbsolute(s) => write!(
                f,
                "setgid_scan entry {s:?}: must be an absolute path or start with %h"
            ),
            ScanRootError::DotComponent(s) => {
                write!(f, "setgid_scan entry {s:?}: no . or .. components")
            }
            ScanRootError::Specifier(s) => write!(
                f,
                "setgid_scan entry {s:?}: only %U (the holder's uid) and a leading %h (their home) may be used"
            ),
        }
    }
}

impl std::error::Error for ScanRootError {}

impl TryFrom<String> for ScanRoot {
    type Error = ScanRootError;

    fn try_from(s: String) -> Result<ScanRoot, ScanRootError> {
        let (home, rest) = match s.strip_prefix("%h") {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let absolute = rest.starts_with('/') || (home && rest.is_empty());
        if !absolute {
            return Err(ScanRootError::NotAbsolute(s));
        }
        let mut specifiers = rest.split('%').skip(1);
        if specifiers.any(|after| !after.starts_with('U')) {
            return Err(ScanRootError::Specifier(s));
        }
        let dots = Path::new(rest)
            .components()
            .any(|c| matches!(c, Component::CurDir | Component::ParentDir));
        if dots || rest.split('/').any(|c| c == ".") {
            return Err(ScanRootError::DotComponent(s));
        }
        Ok(ScanRoot(s))
    }
}

impl fmt::Display for ScanRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ScanRoot {
    /// The defaults, [`DEFAULT_SETGID_SCAN`].
    pub fn defaults() -> Vec<ScanRoot> {
        DEFAULT_SETGID_SCAN
            .iter()
            .map(|s| ScanRoot(s.to_string()))
            .collect()
    }

    /// The directory for the holder `uid` whose home is `home`; `None` when it names the
    /// home and that is not an absolute path other than `/` (a system account's).
    pub fn expand(&self, uid: Uid, home: &Path) -> Option<PathBuf> {
        let with_uid = self.0.replace("%U", &uid.to_string());
        match with_uid.strip_prefix("%h") {
            None => Some(PathBuf::from(with_uid)),
            Some(_) if !home.is_absolute() || home == Path::new("/") => None,
            Some(rest) => {
                let rest = rest.trim_start_matches('/');
                Some(if rest.is_empty() {
                    home.to_path_buf()
                } else {
                    home.join(rest)
                })
            }
        }
    }

    /// The fixed directory this entry is in, whoever the holder: the entry itself, or the
    /// part before the first component with `%U` (`/run/user/%U` → `/run/user`); `None` for
    /// one under the home directory.
    pub fn fixed_part(&self) -> Option<PathBuf> {
        if self.0.starts_with("%h") {
            return None;
        }
        let fixed: PathBuf = Path::new(&self.0)
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains('%'))
            .collect();
        Some(fixed)
    }
}

/// A place in the sweep's list (or, with the sweep off, in its default list) where set-id
/// bits work. `Display` is the warning, after `warning: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NosuidWarning {
    pub root: PathBuf,
    /// Whether the sweep is on (`setgid_scan` not empty).
    pub sweep: bool,
}

impl fmt::Display for NosuidWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = self.root.display();
        if self.sweep {
            write!(f, "{root} is not mounted nosuid: a lease's group can be kept in a set-gid file there until the end-of-lease sweep strips it")
        } else {
            write!(f, "{root} is not mounted nosuid and the end-of-lease sweep is off (setgid_scan = []): a lease's group can be kept in a set-gid file there")
        }
    }
}

/// One line of /proc/self/mountinfo, as far as the question needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    nosuid: bool,
}

/// The mounts in a /proc/self/mountinfo text, in its order (a later mount on the same point
/// is on top). Lines that do not parse are skipped.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let options = fields.next()?;
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                nosuid: options.split(',').any(|o| o == "nosuid"),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether set-id bits work at `path` (already canonical): the mount that covers it is the
/// one with the longest mount point above it, the last listed among equals.
fn honours_setid(mounts: &[Mount], path: &Path) -> Option<bool> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.point))
        .max_by_key(|(i, m)| (m.point.components().count(), *i))
        .map(|(_, m)| !m.nosuid)
}

/// The warnings for `scan` (the configured list; empty = the sweep is off, and then the
/// default list is what is checked) given this mountinfo text and a way to canonicalise a
/// path (`None`: it does not exist, no warning).
fn warnings_for(
    scan: &[ScanRoot],
    mountinfo: &str,
    canonical: impl Fn(&Path) -> Option<PathBuf>,
) -> Vec<NosuidWarning> {
    let sweep = !scan.is_empty();
    let checked = if sweep {
        scan.to_vec()
    } else {
        ScanRoot::defaults()
    };
    let mounts = parse_mountinfo(mountinfo);
    let mut seen = std::collections::HashSet::new();
    let roots = checked.iter().filter_map(ScanRoot::fixed_part);
    roots
        .filter(|r| seen.insert(r.clone()))
        .filter(|r| canonical(r).is_some_and(|c| honours_setid(&mounts, &c) == Some(true)))
        .map(|root| NosuidWarning { root, sweep })
        .collect()
}

/// [`NosuidWarning`]s for `scan` on this host (none when /proc/self/mountinfo cannot be
/// read).
pub fn nosuid_warnings(scan: &[ScanRoot]) -> Vec<NosuidWarning> {
    match os::mountinfo() {
        Some(text) => warnings_for(scan, &text, os::canonicalize),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(s: &str) -> Result<ScanRoot, ScanRootError> {
        ScanRoot::try_from(s.to_string())
    }

    #[test]
    fn entries_are_absolute_with_known_specifiers() {
        for ok in ["/home", "%h", "%h/bin", "/run/user/%U", "/srv/%U/x", "/"] {
            assert!(root(ok).is_ok(), "{ok}");
        }
        let refused = |s: &str| root(s).unwrap_err().to_string();
        assert_eq!(
            refused("tmp"),
            "setgid_scan entry \"tmp\": must be an absolute path or start with %h"
        );
        assert!(refused("%hx").contains("absolute"));
        assert!(refused("/home/../etc").contains("no . or .."));
        assert!(refused("/home/./x").contains("no . or .."));
        assert!(refused("/home/%u").contains("only %U"));
        assert!(refused("/srv/%h").contains("only %U"));
        assert!(refused("").contains("absolute"));
    }

    #[test]
    fn expansion_per_holder() {
        let home = Path::new("/home/alice");
        let e = |s: &str, h: &Path| root(s).unwrap().expand(Uid(1000), h);
        assert_eq!(e("/run/user/%U", home), Some("/run/user/1000".into()));
        assert_eq!(e("%h", home), Some("/home/alice".into()));
        assert_eq!(e("%h/tmp", home), Some("/home/alice/tmp".into()));
        assert_eq!(e("/tmp", home), Some("/tmp".into()));
        assert_eq!(e("%h", Path::new("/")), None, "a system account's /");
        assert_eq!(e("%h", Path::new("relative")), None);
        assert_eq!(
            root("/run/user/%U").unwrap().fixed_part(),
            Some("/run/user".into())
        );
        assert_eq!(root("%h/x").unwrap().fixed_part(), None);
        assert_eq!(root("/tmp").unwrap().fixed_part(), Some("/tmp".into()));
    }

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
24 23 0:6 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
25 22 0:7 / /tmp rw,nosuid,nodev shared:4 - tmpfs tmpfs rw
26 22 8:2 / /home rw,relatime shared:5 - ext4 /dev/sda2 rw
27 22 0:8 / /my\\040disk rw,nosuid - tmpfs tmpfs rw
28 26 0:9 / /home rw,nosuid,nodev - tmpfs home rw
";

    #[test]
    fn the_covering_mount_decides() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m[5].point, PathBuf::from("/my disk"));
        assert_eq!(honours_setid(&m, Path::new("/var/tmp")), Some(true));
        assert_eq!(honours_setid(&m, Path::new("/tmp/x")), Some(false));
        assert_eq!(
            honours_setid(&m, Path::new("/tmpfoo")),
            Some(true),
            "not a prefix by component"
        );
        assert_eq!(honours_setid(&m, Path::new("/dev/shm")), Some(false));
        assert_eq!(
            honours_setid(&m, Path::new("/home/a")),
            Some(false),
            "the later mount is on top"
        );
        assert_eq!(honours_setid(&m[..5], Path::new("/home/a")), Some(true));
        assert_eq!(honours_setid(&[], Path::new("/x")), None);
    }

    #[test]
    fn warnings_name_the_exposed_roots() {
        let scan = vec![
            root("/tmp").unwrap(),
            root("/var/tmp").unwrap(),
            root("%h").unwrap(),
        ];
        let same = |p: &Path| Some(p.to_path_buf());
        let w = warnings_for(&scan, MOUNTINFO, same);
        assert_eq!(
            w,
            vec![NosuidWarning {
                root: "/var/tmp".into(),
                sweep: true
            }]
        );
        assert_eq!(
            w[0].to_string(),
            "/var/tmp is not mounted nosuid: a lease's group can be kept in a set-gid file there until the end-of-lease sweep strips it"
        );
        let gone = |_: &Path| None;
        assert!(
            warnings_for(&scan, MOUNTINFO, gone).is_empty(),
            "missing roots are skipped"
        );
        // Off: the default places are checked, and the warning says the sweep is off.
        let without_home_tmpfs: Vec<&str> = MOUNTINFO
            .lines()
            .filter(|l| !l.starts_with("28 "))
            .collect();
        let off = warnings_for(&[], &without_home_tmpfs.join("\n"), same);
        let roots: Vec<_> = off.iter().map(|w| w.root.clone()).collect();
        assert_eq!(
            roots,
            vec![
                PathBuf::from("/home"),
                "/var/tmp".into(),
                "/run/user".into()
            ]
        );
        assert!(off[0]
            .to_string()
            .contains("sweep is off (setgid_scan = [])"));
    }

    #[test]
    fn the_config_key() {
        use crate::config::{Config, ConfigError};
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(
            c.setgid_scan(),
            ScanRoot::defaults(),
            "absent: the defaults"
        );
        let c: Config = toml::from_str("setgid_scan = []").unwrap();
        assert!(c.setgid_scan().is_empty(), "empty: off");
        let c: Config = toml::from_str("setgid_scan = [\"/srv\", \"%h\"]").unwrap();
        assert_eq!(c.setgid_scan().len(), 2);
        let path = std::env::temp_dir().join(format!("setgid-scan-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "hostname = \"h\"\nsetgid_scan = [\"/tmp\", \"srv\"]\n",
        )
        .unwrap();
        let e = Config::load(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        let ConfigError::Invalid { line, message, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(*line, 2, "{e}");
        assert!(
            message.contains("setgid_scan entry \"srv\": must be an absolute path"),
            "{e}"
        );
    }
}
