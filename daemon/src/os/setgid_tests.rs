//! The walk on real directories. No root needed: the files are the test's own, with its own
//! group, so chmod g+s works for any user (as root the same holds).

use super::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("setgid-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A file at `path` with permission bits `mode`; its owner and group are the test's.
fn file(path: &Path, mode: u32) -> PathBuf {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(path, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    assert_eq!(
        mode_of(path),
        mode,
        "{}: chmod {mode:o} did not hold",
        path.display()
    );
    path.to_path_buf()
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The test's own uid and the group its files get, wanted.
fn me(dir: &Path) -> (Uid, Gid, Wanted) {
    let m = fs::metadata(dir).unwrap();
    let (uid, gid) = (Uid(m.uid()), Gid(m.gid()));
    (
        uid,
        gid,
        [(uid, [gid].into_iter().collect())].into_iter().collect(),
    )
}

#[test]
fn strips_the_holders_set_gid_files_and_nothing_else() {
    let t = TempDir::new("strip");
    let root = &t.0;
    let (uid, gid, wanted) = me(root);
    let gcat = file(&root.join("gcat"), 0o2755);
    let deep = file(&root.join("a/b/c/g2"), 0o2710);
    let plain = file(&root.join("plain"), 0o755);
    let setuid = file(&root.join("suid"), 0o4755);
    let both = file(&root.join("both"), 0o6755);
    fs::create_dir(root.join("sgid-dir")).unwrap();
    fs::set_permissions(root.join("sgid-dir"), fs::Permissions::from_mode(0o2775)).unwrap();
    let fifo = root.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o2666)).unwrap();

    let s = sweep(std::slice::from_ref(root), &wanted, Bounds::default());
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.bound, None);
    assert_eq!(s.roots, vec![fs::canonicalize(root).unwrap()]);
    let mut got: Vec<_> = s
        .stripped
        .iter()
        .map(|x| (x.path.clone(), x.old_mode, x.new_mode))
        .collect();
    got.sort();
    let canon = |p: &Path| fs::canonicalize(p).unwrap();
    let mut want = vec![
        (canon(&gcat), 0o2755, 0o755),
        (canon(&deep), 0o2710, 0o710),
        (canon(&both), 0o6755, 0o4755),
    ];
    want.sort();
    assert_eq!(got, want);
    assert!(s.stripped.iter().all(|x| x.uid == uid && x.gid == gid));
    assert_eq!(mode_of(&gcat), 0o755);
    assert_eq!(mode_of(&deep), 0o710);
    assert_eq!(
        mode_of(&both),
        0o4755,
        "set-uid stays: it gives the owner's own uid only"
    );
    assert_eq!(mode_of(&plain), 0o755);
    assert_eq!(mode_of(&setuid), 0o4755);
    assert_eq!(
        mode_of(&root.join("sgid-dir")),
        0o2775,
        "directories are not files"
    );
    assert_eq!(
        mode_of(&fifo),
        0o2666,
        "a FIFO is neither opened nor changed"
    );
    assert!(s.entries >= 9, "{}", s.entries);
}

#[test]
fn another_owner_or_gid_is_left_alone() {
    let t = TempDir::new("others");
    let (uid, gid, _) = me(&t.0);
    let f = file(&t.0.join("g"), 0o2755);
    let other_owner: Wanted = [(Uid(uid.0 + 12345), [gid].into_iter().collect())].into();
    let other_gid: Wanted = [(uid, [Gid(gid.0 + 12345)].into_iter().collect())].into();
    for wanted in [other_owner, other_gid, Wanted::new()] {
        let s = sweep(std::slice::from_ref(&t.0), &wanted, Bounds::default());
        assert!(s.stripped.is_empty() && s.errors.is_empty(), "{s:?}");
        assert_eq!(mode_of(&f), 0o2755);
    }
}

#[test]
fn symlinks_lead_nowhere() {
    let outside = TempDir::new("outside");
    let t = TempDir::new("links");
    let (_, _, wanted) = me(&t.0);
    let target = file(&outside.0.join("gfile"), 0o2755);
    let hidden = file(&outside.0.join("sub/gfile2"), 0o2755);
    symlink(&target, t.0.join("link")).unwrap();
    symlink(outside.0.join("sub"), t.0.join("dirlink")).unwrap();
    let s = sweep(std::slice::from_ref(&t.0), &wanted, Bounds::default());
    assert!(s.stripped.is_empty() && s.errors.is_empty(), "{s:?}");
    assert_eq!(mode_of(&target), 0o2755);
    assert_eq!(mode_of(&hidden), 0o2755);
}

/// What the walk does when a file or directory is swapped for a symlink after it was looked
/// at: the check through the descriptor sees the symlink, and changes nothing.
#[test]
fn a_swap_after_the_look_changes_nothing() {
    let outside = TempDir::new("swap-out");
    let t = TempDir::new("swap");
    let (_, _, wanted) = me(&t.0);
    let target = file(&outside.0.join("gfile"), 0o2755);
    symlink(&target, t.0.join("was-a-file")).unwrap();
    symlink(&outside.0, t.0.join("was-a-dir")).unwrap();
    let (dir, _) = open_root(&t.0).unwrap();
    let walk = Walk {
        wanted: &wanted,
        bounds: Bounds::default(),
        started: Instant::now(),
        out: Sweep::default(),
    };
    let name = CString::new("was-a-file").unwrap();
    let r = strip(dir.as_fd(), &name, &|st| walk.wants(st)).unwrap();
    assert_eq!(r, None);
    assert_eq!(mode_of(&target), 0o2755);
    let dev = fstat(dir.as_fd()).unwrap().st_dev;
    let e = open_subdir(dir.as_fd(), &CString::new("was-a-dir").unwrap(), dev).unwrap_err();
    // O_DIRECTORY | O_NOFOLLOW on a symlink: ENOTDIR (ELOOP on some kernels).
    assert!(
        matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)),
        "{e}"
    );
    assert!(gone(&e), "not reported: nothing was there to strip");
}

#[test]
fn the_bounds_stop_the_walk_and_say_so() {
    let t = TempDir::new("bound");
    let (_, _, wanted) = me(&t.0);
    for i in 0..10 {
        file(&t.0.join(format!("f{i}")), 0o644);
    }
    let few = Bounds {
        max_entries: 3,
        budget: Duration::from_secs(60),
    };
    let s = sweep(std::slice::from_ref(&t.0), &wanted, few);
    assert_eq!((s.bound, s.entries), (Some(Bound::Entries(3)), 3));
    let (dir, _) = open_root(&t.0).unwrap();
    let some = read_dir(dir.as_fd(), 4).unwrap();
    assert!(
        (4..=10).contains(&some.len()),
        "stops reading at the limit: {}",
        some.len()
    );
    assert_eq!(
        s.bound.unwrap().to_string(),
        "stopped after 3 entries, its bound"
    );
    let no_time = Bounds {
        max_entries: 1_000_000,
        budget: Duration::ZERO,
    };
    let s = sweep(&[t.0.clone(), t.0.clone()], &wanted, no_time);
    assert_eq!(s.bound, Some(Bound::Time(Duration::ZERO)));
    assert_eq!(s.roots.len(), 1, "the walk stops at the first bound");
}

#[test]
fn roots_are_collapsed() {
    let t = TempDir::new("roots");
    let (_, _, wanted) = me(&t.0);
    let f = file(&t.0.join("sub/g"), 0o2755);
    fs::create_dir(t.0.join("real")).unwrap();
    symlink(t.0.join("real"), t.0.join("alias")).unwrap();
    let roots = [
        t.0.join("sub"),
        t.0.clone(),
        t.0.join("sub"),
        t.0.join("missing"),
        t.0.join("alias"),
    ];
    let s = sweep(&roots, &wanted, Bounds::default());
    assert_eq!(s.roots, vec![fs::canonicalize(&t.0).unwrap()]);
    assert_eq!(s.stripped.len(), 1, "{s:?}");
    assert!(
        s.errors.is_empty(),
        "a missing root is skipped quietly: {s:?}"
    );
    assert_eq!(mode_of(&f), 0o755);
}

#[test]
fn deeper_than_the_open_descriptors_reach() {
    let t = TempDir::new("deep");
    let (_, _, wanted) = me(&t.0);
    let mut dir = t.0.clone();
    for i in 0..(MAX_OPEN + 8) {
        dir.push(format!("d{i}"));
        if i == 5 || i == MAX_OPEN + 3 {
            file(&dir.join("side"), 0o2700);
        }
    }
    let bottom = file(&dir.join("g"), 0o2755);
    file(&t.0.join("d0/d1/late"), 0o2755);
    let s = sweep(std::slice::from_ref(&t.0), &wanted, Bounds::default());
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.stripped.len(), 4, "{:?}", s.stripped);
    assert!(s
        .stripped
        .iter()
        .any(|x| x.path == fs::canonicalize(&bottom).unwrap()));
    assert_eq!(mode_of(&bottom), 0o755);
}

#[test]
fn directory_records_parse_defensively() {
    let mut out = Vec::new();
    let mut rec = vec![0u8; 24];
    rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
    rec[18] = libc::DT_REG;
    rec[19..22].copy_from_slice(b"abc");
    parse_dirents(&rec, &mut out);
    assert_eq!(out, vec![(CString::new("abc").unwrap(), libc::DT_REG)]);
    for garbage in [&[0xffu8; 40][..], &[0u8; 40][..], &[1, 2, 3][..], &[]] {
        parse_dirents(garbage, &mut Vec::new());
    }
    let mut dots = Vec::new();
    for name in [&b"."[..], b".."] {
        let mut r = vec![0u8; 24];
        r[16..18].copy_from_slice(&24u16.to_ne_bytes());
        r[19..19 + name.len()].copy_from_slice(name);
        dots.extend(r);
    }
    parse_dirents(&dots, &mut out);
    assert_eq!(out.len(), 1, "no . or ..");
}
