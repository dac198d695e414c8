//! Adding and removing group members in /etc/group and /etc/gshadow as shadow-utils
//! (gpasswd, usermod) does, so the two never step on each other:
//!
//! - under the same lock: a write lock (fcntl) on `/etc/.pwd.lock`, which is what `lckpwdf(3)`
//!   takes; taken here directly so tests can use another root, with the same 15 s patience;
//! - atomically: write `/etc/group+`, fsync, keep the previous file as `/etc/group-`, rename
//!   the new one into place, fsync the directory — a crash leaves the old or the new file,
//!   never a torn one;
//! - minimally: only the member field of the lines a change names is rewritten; every other
//!   byte stays as it was;
//! - in batches: any number of changes cost one rewrite of each file.

mod edit;
mod sys;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Add { user: String, group: String },
    Remove { user: String, group: String },
}

/// What one change did (judged by /etc/group; /etc/gshadow follows it where it has the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Added,
    /// The user was already a member: the caller must not remove this membership later.
    AlreadyMember,
    Removed,
    NotMember,
    NoSuchGroup,
    /// A name with `:`, `,`, whitespace or control characters, or empty: nothing was touched.
    InvalidName,
}

pub struct GroupDb {
    root: PathBuf,
    lock_timeout: Duration,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s
            .chars()
            .any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control())
}

impl GroupDb {
    /// The machine's own /etc.
    pub fn system() -> GroupDb {
        GroupDb::at("/")
    }

    /// Files under `root`/etc (tests use a temporary root).
    pub fn at(root: impl Into<PathBuf>) -> GroupDb {
        GroupDb {
            root: root.into(),
            lock_timeout: Duration::from_secs(15),
        }
    }

    fn etc(&self, name: &str) -> PathBuf {
        self.root.join("etc").join(name)
    }

    /// Apply every change with one locked rewrite of /etc/group (and /etc/gshadow if present).
    pub fn apply(&self, changes: &[Change]) -> io::Result<Vec<Outcome>> {
        let valid: Vec<bool> = changes
            .iter()
            .map(|c| match c {
                Change::Add { user, group } | Change::Remove { user, group } => {
                    valid_name(user) && valid_name(group)
                }
            })
            .collect();
        let todo: Vec<Change> = changes
            .iter()
            .zip(&valid)
            .filter(|(_, v)| **v)
            .map(|(c, _)| c.clone())
            .collect();
        let _lock = sys::lock_file(&self.etc(".pwd.lock"), self.lock_timeout)?;
        let group_path = self.etc("group");
        let text = fs::read(&group_path)?;
        let (new_group, outcomes) = edit::apply(&text, &todo);
        let gshadow_path = self.etc("gshadow");
        let gshadow = match fs::read(&gshadow_path) {
            Ok(t) => Some(edit::apply(&t, &todo).0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if new_group != text {
            replace(&group_path, &text, &new_group)?;
            if let Some(g) = gshadow {
                let old = fs::read(&gshadow_path)?;
                if g != old {
                    replace(&gshadow_path, &old, &g)?;
                }
            }
        }
        let mut per_change = outcomes.into_iter();
        Ok(valid
            .iter()
            .map(|ok| {
                if *ok {
                    per_change.next().flatten().unwrap_or(Outcome::NoSuchGroup)
                } else {
                    Outcome::InvalidName
                }
            })
            .collect())
    }

    /// Members listed for `group` in /etc/group (not counting users whose primary group it is).
    pub fn members_of(&self, group: &str) -> io::Result<Option<Vec<String>>> {
        Ok(self.find(group)?.map(|(_, members)| members))
    }

    pub fn gid_of(&self, group: &str) -> io::Result<Option<u32>> {
        Ok(self.find(group)?.and_then(|(gid, _)| gid))
    }

    fn find(&self, group: &str) -> io::Result<Option<(Option<u32>, Vec<String>)>> {
        let text = fs::read(self.etc("group"))?;
        for line in text.split(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let f: Vec<&str> = line.split(':').collect();
            if f.len() == 4 && f[0] == group {
                let members = f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(|m| m.trim_end_matches('\r').to_string())
                    .collect();
                return Ok(Some((f[2].parse().ok(), members)));
            }
        }
        Ok(None)
    }
}

/// Replace `path` with `new` the way shadow-utils does: `path+` written, fsync'd and given the
/// original's owner and mode; the original kept as `path-`; rename; fsync the directory.
fn replace(path: &Path, old: &[u8], new: &[u8]) -> io::Result<()> {
    let meta = fs::metadata(path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("group");
    let tmp = path.with_file_name(format!("{name}+"));
    write_like(&tmp, new, &meta)?;
    let backup = path.with_file_name(format!("{name}-"));
    let backup_tmp = path.with_file_name(format!("{name}-+"));
    write_like(&backup_tmp, old, &meta)?;
    fs::rename(&backup_tmp, &backup)?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A new file at `path` holding `bytes`, with `like`'s owner and mode, on disk before return.
fn write_like(path: &Path, bytes: &[u8], like: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(bytes)?;
    sys::fchown(&f, like.uid(), like.gid())?;
    f.set_permissions(fs::Permissions::from_mode(like.mode() & 0o7777))?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> PathBuf {
        let r = std::env::temp_dir().join(format!("groupdb-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&r);
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(
            r.join("etc/group"),
            "root:x:0:\n# keep me\nops:x:100:bob\ndev:x:101:\n",
        )
        .unwrap();
        fs::write(r.join("etc/gshadow"), "root:*::\nops:!::bob\ndev:!::\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(r.join("etc/gshadow"), fs::Permissions::from_mode(0o640)).unwrap();
        r
    }

    #[test]
    fn batch_edits_both_files_and_keeps_backups() {
        let r = root("batch");
        let db = GroupDb::at(&r);
        let out = db
            .apply(&[
                Change::Add {
                    user: "alice".into(),
                    group: "ops".into(),
                },
                Change::Add {
                    user: "bob".into(),
                    group: "ops".into(),
                },
                Change::Add {
                    user: "alice".into(),
                    group: "nope".into(),
                },
                Change::Remove {
                    user: "carol".into(),
                    group: "dev".into(),
                },
                Change::Add {
                    user: "bad:name".into(),
                    group: "dev".into(),
                },
            ])
            .unwrap();
        assert_eq!(
            out,
            vec![
                Outcome::Added,
                Outcome::AlreadyMember,
                Outcome::NoSuchGroup,
                Outcome::NotMember,
                Outcome::InvalidName
            ]
        );
        assert_eq!(
            fs::read_to_string(r.join("etc/group")).unwrap(),
            "root:x:0:\n# keep me\nops:x:100:bob,alice\ndev:x:101:\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("etc/gshadow")).unwrap(),
            "root:*::\nops:!::bob,alice\ndev:!::\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("etc/group-")).unwrap(),
            "root:x:0:\n# keep me\nops:x:100:bob\ndev:x:101:\n"
        );
        assert_eq!(
            fs::metadata(r.join("etc/gshadow")).unwrap().mode() & 0o777,
            0o640,
            "mode preserved"
        );
        assert_eq!(
            db.members_of("ops").unwrap(),
            Some(vec!["bob".to_string(), "alice".to_string()])
        );
        assert_eq!(db.gid_of("dev").unwrap(), Some(101));
        assert_eq!(db.gid_of("nope").unwrap(), None);
        db.apply(&[Change::Remove {
            user: "alice".into(),
            group: "ops".into(),
        }])
        .unwrap();
        assert_eq!(db.members_of("ops").unwrap(), Some(vec!["bob".to_string()]));
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn no_change_means_no_rewrite() {
        let r = root("noop");
        let db = GroupDb::at(&r);
        let ino = fs::metadata(r.join("etc/group")).unwrap().ino();
        db.apply(&[Change::Remove {
            user: "zed".into(),
            group: "ops".into(),
        }])
        .unwrap();
        assert_eq!(fs::metadata(r.join("etc/group")).unwrap().ino(), ino);
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn concurrent_writers_are_serialized_by_the_lock() {
        let r = root("lock");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let r = r.clone();
                std::thread::spawn(move || {
                    GroupDb::at(&r)
                        .apply(&[Change::Add {
                            user: format!("u{i}"),
                            group: "dev".into(),
                        }])
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), vec![Outcome::Added]);
        }
        assert_eq!(
            GroupDb::at(&r).members_of("dev").unwrap().unwrap().len(),
            8,
            "no lost update"
        );
        fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn grpck_accepts_the_result() {
        let r = root("grpck");
        fs::write(r.join("etc/group"), fs::read("/etc/group").unwrap()).unwrap();
        fs::write(
            r.join("etc/gshadow"),
            fs::read("/etc/gshadow").unwrap_or_default(),
        )
        .unwrap();
        let db = GroupDb::at(&r);
        let some = String::from_utf8_lossy(&fs::read("/etc/group").unwrap())
            .lines()
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string();
        db.apply(&[Change::Add {
            user: "root".into(),
            group: some.clone(),
        }])
        .unwrap();
        db.apply(&[Change::Remove {
            user: "root".into(),
            group: some,
        }])
        .unwrap();
        let st = std::process::Command::new("grpck")
            .args(["-r"])
            .arg(r.join("etc/group"))
            .arg(r.join("etc/gshadow"))
            .output()
            .expect("grpck (apt-get install passwd)");
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        fs::remove_dir_all(&r).unwrap();
    }
}
