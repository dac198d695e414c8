//! I/O tests, each in its own temporary root (never the real /etc). They run as root (they
//! chown), as the project's tests do.

use super::*;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;
use Outcome::*;

const GROUP: &str = "root:x:0:\n\
# local groups: keep me\n\
ops:x:100:bob\n\
dev:x:101:\n\
weird : spaced:102: carol \r\n\
broken line without fields\n\
+nisgroup\n\
-excluded:x:1:\n\
solo:x:103:dave";
const GSHADOW: &str = "root:*::\nops:!:admin:bob\ndev:!::\n";

/// A temporary root with an etc/ directory, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "groupdb-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        Root(dir)
    }

    /// The usual fixture: group 0644 root:root, gshadow 0640 root:shadow(42).
    fn fixture(name: &str) -> Root {
        let r = Root::new(name);
        r.write("group", GROUP, 0o644, (0, 0));
        r.write("gshadow", GSHADOW, 0o640, (0, 42));
        r
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join("etc").join(name)
    }

    fn write(&self, name: &str, text: &str, mode: u32, (uid, gid): (u32, u32)) {
        let p = self.path(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    }

    fn read(&self, name: &str) -> String {
        String::from_utf8(fs::read(self.path(name)).unwrap()).unwrap()
    }

    fn meta(&self, name: &str) -> fs::Metadata {
        fs::symlink_metadata(self.path(name)).unwrap()
    }

    fn exists(&self, name: &str) -> bool {
        fs::symlink_metadata(self.path(name)).is_ok()
    }

    fn db(&self) -> GroupDb {
        GroupDb::at(&self.0)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn add(u: &str, g: &str) -> Change {
    Change::add(u, g)
}
fn rm(u: &str, g: &str) -> Change {
    Change::remove(u, g)
}

#[test]
fn a_batch_rewrites_both_files_once_and_keeps_backups() {
    let r = Root::fixture("batch");
    let (group_ino, gshadow_ino) = (r.meta("group").ino(), r.meta("gshadow").ino());
    let out = r
        .db()
        .apply(&[
            add("alice", "ops"),
            add("bob", "ops"),
            add("alice", "nope"),
            rm("carol", "dev"),
            add("bad:name", "dev"),
            add("erin", "dev"),
            rm("dave", "solo"),
            add("frank", "solo"),
        ])
        .unwrap();
    assert_eq!(
        out,
        vec![
            Added,
            AlreadyMember,
            NoSuchGroup,
            NotMember,
            InvalidName,
            Added,
            Removed,
            Added
        ]
    );
    let want = GROUP
        .replace("ops:x:100:bob\n", "ops:x:100:bob,alice\n")
        .replace("dev:x:101:\n", "dev:x:101:erin\n")
        .replace("solo:x:103:dave", "solo:x:103:frank");
    assert_eq!(r.read("group"), want);
    assert_eq!(
        r.read("gshadow"),
        "root:*::\nops:!:admin:bob,alice\ndev:!::erin\n"
    );
    // The previous files are the backups: the very inodes we replaced.
    assert_eq!(r.read("group-"), GROUP);
    assert_eq!(r.read("gshadow-"), GSHADOW);
    assert_eq!(r.meta("group-").ino(), group_ino);
    assert_eq!(r.meta("gshadow-").ino(), gshadow_ino);
    assert_eq!((r.meta("group").nlink(), r.meta("group-").nlink()), (1, 1));
    for leftover in ["group+", "gshadow+", "group-+", "gshadow-+"] {
        assert!(!r.exists(leftover), "{leftover} left behind");
    }
    let db = r.db();
    assert_eq!(
        db.members_of("ops").unwrap(),
        Some(vec!["bob".into(), "alice".into()])
    );
    assert_eq!(db.members_of("solo").unwrap(), Some(vec!["frank".into()]));
    assert_eq!(db.members_of("nope").unwrap(), None);
    assert_eq!(db.members_of("+nisgroup").unwrap(), None);
    assert_eq!(db.gid_of("dev").unwrap(), Some(101));
    assert_eq!(db.gid_of("root").unwrap(), Some(0));
    assert_eq!(db.gid_of("nope").unwrap(), None);
}

#[test]
fn owner_and_mode_are_kept_like_shadow_utils_keeps_them() {
    let r = Root::fixture("perms");
    r.write("group", GROUP, 0o644, (1234, 5678));
    r.db().apply(&[add("alice", "ops")]).unwrap();
    let (g, s) = (r.meta("group"), r.meta("gshadow"));
    assert_eq!((g.mode() & 0o7777, g.uid(), g.gid()), (0o644, 1234, 5678));
    assert_eq!((s.mode() & 0o7777, s.uid(), s.gid()), (0o640, 0, 42));
    let b = r.meta("gshadow-");
    assert_eq!((b.mode() & 0o7777, b.uid(), b.gid()), (0o640, 0, 42));
    // Execute, other-write and special bits are dropped, as gpasswd drops them (mode & 0664).
    r.write("group", GROUP, 0o2757, (0, 0));
    r.db().apply(&[add("alice", "dev")]).unwrap();
    assert_eq!(r.meta("group").mode() & 0o7777, 0o644);
}

#[test]
fn a_copied_backup_keeps_owner_mode_and_times() {
    let r = Root::fixture("copy");
    r.write("group", GROUP, 0o640, (7, 8));
    let times = fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .set_accessed(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_001));
    File::options()
        .write(true)
        .open(r.path("group"))
        .unwrap()
        .set_times(times)
        .unwrap();
    let old = Original::read(&r.path("group")).unwrap().unwrap();
    write_like(&r.path("copy"), &old.bytes, &old.meta, Perms::Copy).unwrap();
    let c = r.meta("copy");
    assert_eq!(r.read("copy"), GROUP);
    assert_eq!((c.mode() & 0o7777, c.uid(), c.gid()), (0o640, 7, 8));
    assert_eq!((c.mtime(), c.atime()), (1_000_000_000, 1_000_000_001));
}

#[test]
fn nothing_to_change_means_no_rewrite() {
    let r = Root::fixture("noop");
    let ino = (r.meta("group").ino(), r.meta("gshadow").ino());
    let out = r
        .db()
        .apply(&[add("bob", "ops"), rm("zed", "dev"), add("x", "nope")])
        .unwrap();
    assert_eq!(out, vec![AlreadyMember, NotMember, NoSuchGroup]);
    assert_eq!((r.meta("group").ino(), r.meta("gshadow").ino()), ino);
    assert!(!r.exists("group-") && !r.exists("group+"));
    assert_eq!(r.db().apply(&[]).unwrap(), vec![]);
}

#[test]
fn invalid_names_are_rejected_before_any_file_is_touched() {
    let r = Root::fixture("invalid");
    let out = r
        .db()
        .apply(&[
            add("a b", "ops"),
            add("x", "ops,dev"),
            rm("", "dev"),
            add("\n", "x"),
        ])
        .unwrap();
    assert_eq!(out, vec![InvalidName; 4]);
    assert!(!r.exists(".pwd.lock"), "not even the lock was taken");
    assert_eq!(r.read("group"), GROUP);
}

#[test]
fn without_gshadow_only_group_is_edited() {
    let r = Root::new("nogshadow");
    r.write("group", GROUP, 0o644, (0, 0));
    assert_eq!(r.db().apply(&[add("alice", "dev")]).unwrap(), vec![Added]);
    assert!(r.read("group").contains("dev:x:101:alice\n"));
    assert!(!r.exists("gshadow") && !r.exists("gshadow-") && !r.exists("gshadow+"));
}

#[test]
fn gshadow_without_the_group_is_left_alone() {
    let r = Root::fixture("gshadow-partial");
    let ino = r.meta("gshadow").ino();
    assert_eq!(r.db().apply(&[add("alice", "solo")]).unwrap(), vec![Added]);
    assert!(r.read("group").ends_with("solo:x:103:dave,alice"));
    assert_eq!(r.read("gshadow"), GSHADOW);
    assert_eq!(r.meta("gshadow").ino(), ino, "gshadow not even rewritten");
    assert!(!r.exists("gshadow-"));
}

#[test]
fn missing_group_file_is_an_error() {
    let r = Root::new("nogroup");
    let e = r.db().apply(&[add("a", "b")]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        r.db().members_of("b").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

/// Whatever fails on the way, both originals stay exactly as they were (same inode, same
/// bytes) and no temporary file is left; once the obstacle is gone the same batch applies.
#[test]
fn a_failed_rewrite_leaves_the_originals_intact() {
    for obstacle in ["group+", "gshadow+", "group-", "gshadow-", "group-+"] {
        let r = Root::fixture("atomic");
        let ino = (r.meta("group").ino(), r.meta("gshadow").ino());
        fs::create_dir(r.path(obstacle)).unwrap();
        fs::write(r.path(obstacle).join("keep"), "x").unwrap();
        let e = r.db().apply(&[add("alice", "ops")]);
        assert!(e.is_err(), "{obstacle}: {e:?}");
        assert_eq!(r.read("group"), GROUP, "{obstacle}");
        assert_eq!(r.read("gshadow"), GSHADOW, "{obstacle}");
        assert_eq!((r.meta("group").ino(), r.meta("gshadow").ino()), ino);
        for tmp in ["group+", "gshadow+", "group-+", "gshadow-+"] {
            assert!(
                tmp == obstacle || !r.exists(tmp),
                "{obstacle}: {tmp} left behind"
            );
        }
        fs::remove_dir_all(r.path(obstacle)).unwrap();
        assert_eq!(r.db().apply(&[add("alice", "ops")]).unwrap(), vec![Added]);
    }
}

#[test]
fn stale_temporary_files_from_a_crash_are_replaced() {
    let r = Root::fixture("stale");
    for stale in ["group+", "gshadow-+"] {
        fs::write(r.path(stale), "half-written junk").unwrap();
    }
    symlink("/nonexistent", r.path("group-+")).unwrap();
    assert_eq!(r.db().apply(&[add("alice", "ops")]).unwrap(), vec![Added]);
    assert_eq!(r.read("group-"), GROUP);
    assert!(!r.exists("group+") && !r.exists("group-+") && !r.exists("gshadow-+"));
}

#[test]
fn a_symlinked_group_file_is_refused_as_shadow_utils_refuses_it() {
    let r = Root::new("symlink");
    r.write("group.real", GROUP, 0o644, (0, 0));
    symlink("group.real", r.path("group")).unwrap();
    assert!(r.db().apply(&[add("alice", "ops")]).is_err());
    assert!(r.meta("group").file_type().is_symlink());
    assert_eq!(r.read("group.real"), GROUP);
}

#[test]
fn a_file_replaced_behind_the_lock_is_not_overwritten() {
    let r = Root::fixture("replaced");
    let old = Original::read(&r.path("group")).unwrap().unwrap();
    // Someone who ignores /etc/.pwd.lock renames a new file in after we read.
    r.write("other", "root:x:0:\nnew:x:5:\n", 0o644, (0, 0));
    fs::rename(r.path("other"), r.path("group")).unwrap();
    let e = replace_all(&[(&old, &b"whatever\n"[..])]).unwrap_err();
    assert!(e.to_string().contains("was replaced"), "{e}");
    assert_eq!(r.read("group"), "root:x:0:\nnew:x:5:\n");
    assert!(!r.exists("group+") && !r.exists("group-+"));
}

#[test]
fn concurrent_writers_are_serialized_by_the_lock() {
    let r = Root::fixture("threads");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = r.db();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| db.apply(&[add(&format!("u{t}x{i}"), "dev")]).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().iter().all(|o| o == &[Added]));
    }
    let members = r.db().members_of("dev").unwrap().unwrap();
    assert_eq!(members.len(), 200, "no lost update");
    let gshadow_dev = r.read("gshadow");
    let line = gshadow_dev.lines().find(|l| l.starts_with("dev:")).unwrap();
    assert_eq!(line.split(',').count(), 200);
}

/// The lock conflicts with the classic fcntl lock lckpwdf() takes: we wait for its holder,
/// and give up with `TimedOut` (touching nothing) if it keeps it past our timeout.
#[test]
fn waits_for_an_lckpwdf_holder_and_times_out() {
    let r = Root::fixture("lckpwdf");
    let hold = |ms: u64| {
        let path = r.path(".pwd.lock");
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let f = File::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .unwrap();
            sys::classic_lock(&f).unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(ms));
        });
        rx.recv().unwrap();
        t
    };
    let t = hold(400);
    let start = Instant::now();
    let e = r
        .db()
        .with_lock_timeout(Duration::from_millis(100))
        .apply(&[add("alice", "ops")])
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(r.read("group"), GROUP);
    t.join().unwrap();

    let t = hold(300);
    let start = Instant::now();
    assert_eq!(r.db().apply(&[add("alice", "ops")]).unwrap(), vec![Added]);
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "did not wait"
    );
    t.join().unwrap();
}

/// The real thing: shadow-utils' gpasswd (lckpwdf inside `--root`) waits while we hold the
/// lock, then makes its edit; no update is lost either way.
#[test]
fn gpasswd_waits_for_our_lock() {
    if Command::new("gpasswd").arg("--help").output().is_err() {
        eprintln!("gpasswd not installed: skipped");
        return;
    }
    let r = Root::new("gpasswd");
    r.write("passwd", "root:x:0:0::/root:/bin/sh\n", 0o644, (0, 0));
    r.write("group", "root:x:0:\nops:x:100:bob\n", 0o644, (0, 0));
    r.write("gshadow", "root:*::\nops:!::bob\n", 0o640, (0, 42));
    let lock = sys::lock_file(&r.path(".pwd.lock"), Duration::from_secs(1)).unwrap();
    let mut child = Command::new("gpasswd")
        .arg("--root")
        .arg(&r.0)
        .args(["-a", "root", "ops"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "gpasswd did not wait");
    assert_eq!(r.read("group"), "root:x:0:\nops:x:100:bob\n");
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert_eq!(r.db().apply(&[add("alice", "ops")]).unwrap(), vec![Added]);
    assert_eq!(r.read("group"), "root:x:0:\nops:x:100:bob,root,alice\n");
    assert_eq!(r.read("gshadow"), "root:*::\nops:!::bob,root,alice\n");
}

/// 1,000 changes, one rewrite: the backup is the very file we started from (a second rewrite
/// would have made the first one's result the backup), and every change is in.
#[test]
fn a_batch_of_1000_changes_is_one_rewrite() {
    let r = Root::new("thousand");
    let mut group = String::new();
    let mut gshadow = String::new();
    for g in 0..100 {
        group.push_str(&format!("g{g}:x:{}:old{g}\n", 1000 + g));
        gshadow.push_str(&format!("g{g}:!::old{g}\n"));
    }
    r.write("group", &group, 0o644, (0, 0));
    r.write("gshadow", &gshadow, 0o640, (0, 42));
    let ino = r.meta("group").ino();
    let changes: Vec<Change> = (0..1000)
        .map(|i| add(&format!("u{i}"), &format!("g{}", i % 100)))
        .collect();
    let out = r.db().apply(&changes).unwrap();
    assert!(out.iter().all(|o| *o == Added));
    assert_eq!(r.read("group-"), group);
    assert_eq!(r.meta("group-").ino(), ino, "exactly one rename");
    let db = r.db();
    for g in 0..100 {
        assert_eq!(db.members_of(&format!("g{g}")).unwrap().unwrap().len(), 11);
    }
    // And undone in one more: back to the original bytes.
    let undo: Vec<Change> = changes.iter().map(|c| rm(c.user(), c.group())).collect();
    assert!(r.db().apply(&undo).unwrap().iter().all(|o| *o == Removed));
    assert_eq!((r.read("group"), r.read("gshadow")), (group, gshadow));
}

/// shadow-utils' own checker finds nothing wrong after a batch of edits.
#[test]
fn grpck_is_clean_after_changes() {
    let r = Root::new("grpck");
    let users = ["root", "daemon", "bin", "alice", "bob", "carol", "dave"];
    let passwd: String = users
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{u}:x:{}:{}::/:/bin/sh\n", 1000 + i, 1000 + i))
        .collect();
    r.write("passwd", &passwd, 0o644, (0, 0));
    r.write(
        "group",
        "root:x:0:\nadm:x:4:bob\nops:x:100:alice,bob\ndev:x:101:\nqa:x:102:carol\n",
        0o644,
        (0, 0),
    );
    r.write(
        "gshadow",
        "root:*::\nadm:*::bob\nops:!:alice:alice,bob\ndev:!::\nqa:!::carol\n",
        0o640,
        (0, 42),
    );
    let grpck = |r: &Root| Command::new("grpck").args(["-r", "-R"]).arg(&r.0).output();
    let Ok(before) = grpck(&r) else {
        eprintln!("grpck not installed: skipped");
        return;
    };
    assert!(before.status.success(), "fixture: {before:?}");
    let out = r
        .db()
        .apply(&[
            add("dave", "ops"),
            rm("alice", "ops"),
            add("alice", "dev"),
            add("bob", "dev"),
            rm("carol", "qa"),
            add("root", "adm"),
            rm("bob", "adm"),
            add("daemon", "qa"),
        ])
        .unwrap();
    assert!(out.iter().all(|o| matches!(o, Added | Removed)), "{out:?}");
    let after = grpck(&r).unwrap();
    assert!(
        after.status.success() && after.stdout.is_empty() && after.stderr.is_empty(),
        "grpck: {}\n{}",
        String::from_utf8_lossy(&after.stdout),
        String::from_utf8_lossy(&after.stderr)
    );
    assert_eq!(
        r.read("group"),
        "root:x:0:\nadm:x:4:root\nops:x:100:bob,dave\ndev:x:101:alice,bob\nqa:x:102:daemon\n"
    );
}

#[test]
fn readers_merge_split_groups_and_skip_what_is_not_an_entry() {
    let r = Root::new("readers");
    r.write(
        "group",
        "+ops:x:9:nis\nops:x:100:a,,b\r\nops:x:100:c,a\nodd:x:1x:z\n",
        0o644,
        (0, 0),
    );
    let db = r.db();
    assert_eq!(
        db.members_of("ops").unwrap(),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(db.gid_of("ops").unwrap(), Some(100));
    assert_eq!(db.gid_of("odd").unwrap(), None);
    assert_eq!(db.members_of("odd").unwrap(), Some(vec!["z".into()]));
    assert_eq!(db.members_of("a:b").unwrap(), None);
}
