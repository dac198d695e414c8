//! The user and group databases through NSS, with the reentrant calls (`getpwnam_r`,
//! `getpwuid_r`, `getgrnam_r`, `getgrgid_r`) and `getgrouplist`. These report failure through
//! their return value rather than `errno`, so they are checked here directly; `ERANGE` grows
//! the buffer and `EINTR` retries.

use crate::ids::{Gid, Uid};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A password-database entry, as NSS returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// First buffer size for the `*_r` NSS calls; doubled on ERANGE up to [`NSS_BUF_MAX`].
const NSS_BUF_START: usize = 1024;
const NSS_BUF_MAX: usize = 1 << 20;

/// Run one reentrant NSS lookup with a growing buffer. `call` gets the buffer and returns the
/// C function's return code (0 = success or not found, ERANGE = buffer too small); it reports
/// whether an entry was found through its own result pointer.
fn with_nss_buffer<T>(
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> Option<T> {
    let mut size = NSS_BUF_START;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && size < NSS_BUF_MAX {
            size *= 2;
            continue;
        }
        if rc == libc::EINTR {
            continue;
        }
        return if rc == 0 { found } else { None };
    }
}

/// Copy a C string owned by NSS into an owned byte vector. `None` for a null pointer.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string that stays valid for the call.
unsafe fn c_bytes(p: *const libc::c_char) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `p` is a valid NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec())
}

/// Convert a filled-in `struct passwd` (pointing into the caller's buffer) to [`Passwd`].
///
/// # Safety
/// The string pointers in `pw` must be null or valid NUL-terminated strings.
unsafe fn passwd_from(pw: &libc::passwd) -> Option<Passwd> {
    // SAFETY: forwarded from the caller's guarantee on `pw`'s pointers.
    let name = String::from_utf8(unsafe { c_bytes(pw.pw_name) }?).ok()?;
    // SAFETY: as above.
    let home = unsafe { c_bytes(pw.pw_dir) }.unwrap_or_default();
    // SAFETY: as above.
    let shell = unsafe { c_bytes(pw.pw_shell) }.unwrap_or_default();
    Some(Passwd {
        name,
        uid: Uid(pw.pw_uid),
        gid: Gid(pw.pw_gid),
        home: PathBuf::from(OsStr::from_bytes(&home)),
        shell: PathBuf::from(OsStr::from_bytes(&shell)),
    })
}

/// One reentrant lookup (`getpw*_r`, `getgr*_r`): `call` runs the C function on a fresh
/// entry, the buffer and the result pointer, and returns its code; on success `read` copies
/// what is wanted out of the entry while the buffer it points into is still alive. `read`
/// may rely on the entry's string pointers being null or valid.
fn lookup<E, T>(
    empty: fn() -> E,
    mut call: impl FnMut(&mut E, &mut [libc::c_char], &mut *mut E) -> libc::c_int,
    read: unsafe fn(&E) -> Option<T>,
) -> Option<T> {
    with_nss_buffer(|buf| {
        let mut entry = empty();
        let mut result: *mut E = std::ptr::null_mut();
        let rc = call(&mut entry, buf, &mut result);
        let found = if rc == 0 && !result.is_null() {
            // SAFETY: the call succeeded, so the entry's strings are null or point into
            // `buf`, which is alive until this closure returns.
            unsafe { read(&entry) }
        } else {
            None
        };
        (rc, found)
    })
}

fn empty_passwd() -> libc::passwd {
    // SAFETY: an all-zero `struct passwd` is a valid value (integers and null pointers).
    unsafe { std::mem::zeroed() }
}

fn empty_group() -> libc::group {
    // SAFETY: an all-zero `struct group` is a valid value (integers and null pointers).
    unsafe { std::mem::zeroed() }
}

/// # Safety
/// None needed (the gid is an integer); `unsafe` only to fit [`lookup`]'s `read`.
unsafe fn read_gid(gr: &libc::group) -> Option<Gid> {
    Some(Gid(gr.gr_gid))
}

/// # Safety
/// `gr.gr_name` must be null or a valid NUL-terminated string.
unsafe fn read_group_name(gr: &libc::group) -> Option<String> {
    // SAFETY: forwarded from the caller's guarantee on `gr_name`.
    unsafe { c_bytes(gr.gr_name) }.and_then(|b| String::from_utf8(b).ok())
}

/// The passwd entry of `uid`, or `None` if NSS has none.
pub fn passwd_by_uid(uid: Uid) -> Option<Passwd> {
    lookup(
        empty_passwd,
        |pw, buf, result| {
            // SAFETY: `pw` and `result` are live references and `buf` is a live buffer of
            // exactly `buf.len()` bytes.
            unsafe { libc::getpwuid_r(uid.0, pw, buf.as_mut_ptr(), buf.len(), result) }
        },
        passwd_from,
    )
}

/// The passwd entry named `name`, or `None` if NSS has none (or the name contains NUL).
pub fn passwd_by_name(name: &str) -> Option<Passwd> {
    let cname = CString::new(name).ok()?;
    lookup(
        empty_passwd,
        |pw, buf, result| {
            // SAFETY: `cname` is NUL-terminated; `pw` and `result` are live references and
            // `buf` is a live buffer of exactly `buf.len()` bytes.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), result) }
        },
        passwd_from,
    )
}

/// The gid of the group named `name`.
pub fn group_gid(name: &str) -> Option<Gid> {
    let cname = CString::new(name).ok()?;
    lookup(
        empty_group,
        |gr, buf, result| {
            // SAFETY: `cname` is NUL-terminated; `gr` and `result` are live references and
            // `buf` is a live buffer of exactly `buf.len()` bytes.
            unsafe { libc::getgrnam_r(cname.as_ptr(), gr, buf.as_mut_ptr(), buf.len(), result) }
        },
        read_gid,
    )
}

/// The name of group `gid` (`None` if it has none or it is not UTF-8).
pub fn group_name(gid: Gid) -> Option<String> {
    lookup(
        empty_group,
        |gr, buf, result| {
            // SAFETY: `gr` and `result` are live references and `buf` is a live buffer of
            // exactly `buf.len()` bytes.
            unsafe { libc::getgrgid_r(gid.0, gr, buf.as_mut_ptr(), buf.len(), result) }
        },
        read_group_name,
    )
}

/// Every gid `passwd` is a member of: its primary group first, then the supplementary
/// groups from NSS (`getgrouplist`), without duplicates.
pub fn gids_for(passwd: &Passwd) -> Vec<Gid> {
    let mut gids = vec![passwd.gid];
    let Ok(cname) = CString::new(passwd.name.as_str()) else {
        return gids;
    };
    let mut size: usize = 64;
    loop {
        let mut buf: Vec<libc::gid_t> = vec![0; size];
        let mut n: libc::c_int = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: `cname` is NUL-terminated, `buf` holds `n` gids and `n` is a live local;
        // getgrouplist writes at most `n` entries and stores the needed count in `n`.
        let rc =
            unsafe { libc::getgrouplist(cname.as_ptr(), passwd.gid.0, buf.as_mut_ptr(), &mut n) };
        let got = usize::try_from(n).unwrap_or(0);
        if rc >= 0 {
            for gid in buf.iter().take(got.min(size)).map(|g| Gid(*g)) {
                if !gids.contains(&gid) {
                    gids.push(gid);
                }
            }
            return gids;
        }
        // Too small: glibc reports the needed size in `n`; otherwise double.
        let next = if got > size { got } else { size * 2 };
        if next > 1 << 16 {
            return gids;
        }
        size = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_and_nonsense_is_not() {
        let root = passwd_by_uid(Uid::ROOT).expect("uid 0 exists");
        assert_eq!((root.name.as_str(), root.gid), ("root", Gid(0)));
        assert_eq!(passwd_by_name("root"), Some(root.clone()));
        assert_eq!(passwd_by_name("ro\0ot"), None);
        assert_eq!(passwd_by_name("no-such-user-elevate-test"), None);
        assert_eq!(group_gid("root"), Some(Gid(0)));
        assert_eq!(group_name(Gid(0)).as_deref(), Some("root"));
        assert_eq!(gids_for(&root).first(), Some(&Gid(0)));
    }
}
