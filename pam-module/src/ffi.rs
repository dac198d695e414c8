//! The C side of the module: the `pam_sm_*` symbols libpam calls, and every call into libpam
//! and libc the module makes, each behind a small safe wrapper. Nothing outside this file is
//! `unsafe`.

use elevate_pam::Phase;
use pam_sys::{PamConversation, PamHandle, PamItemType, PamMessage, PamMessageStyle, PamResponse};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;

/// One exported `pam_sm_*` symbol: libpam's arguments as a [`Call`], then
/// [`crate::entry`] for its phase.
macro_rules! entry_point {
    ($name:ident, $phase:expr) => {
        /// # Safety
        /// Called by libpam with a valid handle and argument vector.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            pamh: *mut PamHandle,
            _flags: c_int,
            argc: c_int,
            argv: *const *const c_char,
        ) -> c_int {
            // SAFETY: these are the arguments libpam gave this call, as this function's own
            // contract (above) requires of its caller.
            let call = unsafe { Call::new(pamh, argc, argv) };
            crate::entry(&call, $phase)
        }
    };
}

entry_point!(pam_sm_acct_mgmt, Phase::Account);
entry_point!(pam_sm_open_session, Phase::OpenSession);
entry_point!(pam_sm_close_session, Phase::CloseSession);

/// What libpam passed to one `pam_sm_*` call, not yet read. Only the exported functions make
/// one, from their own arguments: holding a `Call` is the promise the pointers are valid.
pub struct Call {
    pamh: *mut PamHandle,
    argc: c_int,
    argv: *const *const c_char,
}

impl Call {
    /// # Safety
    /// `pamh` is null or the handle libpam passed for this call; `argv` is null or holds
    /// `argc` pointers, each null or a NUL-terminated string; all valid while the `Call` is.
    unsafe fn new(pamh: *mut PamHandle, argc: c_int, argv: *const *const c_char) -> Call {
        Call { pamh, argc, argv }
    }

    /// The PAM handle, unless libpam passed none.
    pub fn handle(&self) -> Option<Handle> {
        (!self.pamh.is_null()).then_some(Handle(self.pamh))
    }

    /// The module arguments (argc/argv of the pam_sm_* call), or an error for a null or
    /// non-UTF-8 argument.
    pub fn args(&self) -> Result<Vec<&str>, ArgvError> {
        let (argc, argv) = (self.argc, self.argv);
        if argc <= 0 {
            return Ok(Vec::new());
        }
        if argv.is_null() || argc > 256 {
            return Err(ArgvError::Invalid);
        }
        let mut out = Vec::with_capacity(argc as usize);
        for i in 0..argc as usize {
            // SAFETY: `argv` is not null and holds `argc` pointers (`Call::new`'s contract).
            let p = unsafe { *argv.add(i) };
            if p.is_null() {
                return Err(ArgvError::NullArgument);
            }
            // SAFETY: a non-null argument is a NUL-terminated string libpam owns for the call.
            let s = unsafe { CStr::from_ptr(p) };
            out.push(s.to_str().map_err(|_| ArgvError::NotUtf8)?);
        }
        Ok(out)
    }
}

/// A PAM handle checked for null; made only from a [`Call`].
pub struct Handle(*mut PamHandle);

impl Handle {
    /// A string item (service, tty, rhost…); `None` if unset, unreadable or not UTF-8.
    pub fn item(&self, which: PamItemType) -> Option<String> {
        let mut p: *const c_void = std::ptr::null();
        // SAFETY: self.0 is a non-null handle given to us by libpam for this call; `p` is a
        // valid out-pointer. String items are NUL-terminated strings owned by libpam.
        let rc = unsafe { pam_sys::raw::pam_get_item(self.0, which as c_int, &mut p) };
        if rc != 0 || p.is_null() {
            return None;
        }
        // SAFETY: see above; the string lives as long as the item is unchanged, and we copy it.
        let s = unsafe { CStr::from_ptr(p as *const c_char) };
        s.to_str().ok().map(str::to_owned)
    }

    /// The user name (PAM_USER, prompting through the application if it is unset).
    pub fn user(&self) -> Option<String> {
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: valid handle and out-pointer; a null prompt means libpam's default.
        let rc = unsafe { pam_sys::raw::pam_get_user(self.0, &mut p, std::ptr::null()) };
        if rc != 0 || p.is_null() {
            return None;
        }
        // SAFETY: libpam returns a NUL-terminated string it owns; we copy it.
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str().ok().filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// Show `text` to the user as an error message through the application's conversation
    /// function. Best effort: a non-interactive application may have none.
    pub fn tell(&self, text: &str) {
        let Ok(msg) = CString::new(text.replace('\0', " ")) else {
            return;
        };
        let mut conv: *const c_void = std::ptr::null();
        // SAFETY: valid handle and out-pointer.
        let rc =
            unsafe { pam_sys::raw::pam_get_item(self.0, PamItemType::CONV as c_int, &mut conv) };
        if rc != 0 || conv.is_null() {
            return;
        }
        // SAFETY: PAM_CONV is a `struct pam_conv` owned by libpam for the handle's lifetime.
        let conv = unsafe { &*(conv as *const PamConversation) };
        let Some(f) = conv.conv else {
            return;
        };
        let message = PamMessage {
            msg_style: PamMessageStyle::ERROR_MSG as c_int,
            msg: msg.as_ptr(),
        };
        let mut list = [&message as *const PamMessage as *mut PamMessage];
        let mut resp: *mut PamResponse = std::ptr::null_mut();
        // SAFETY: one message whose text outlives the call; `resp` receives an array the
        // application allocated with malloc (or null), which we free below as PAM requires.
        unsafe {
            f(1, list.as_mut_ptr(), &mut resp, conv.data_ptr);
            if !resp.is_null() {
                if !(*resp).resp.is_null() {
                    libc::free((*resp).resp as *mut c_void);
                }
                libc::free(resp as *mut c_void);
            }
        }
    }

    /// Remember the session id between open_session and close_session (same handle).
    pub fn set_session_id(&self, id: u64) -> bool {
        let boxed = Box::into_raw(Box::new(id)) as *mut c_void;
        // SAFETY: valid handle; the name is a static C string; `boxed` is freed by
        // `free_session_id` when libpam drops the data (pam_end or a later set).
        let rc = unsafe {
            pam_sys::raw::pam_set_data(self.0, SESSION_KEY.as_ptr(), boxed, Some(free_session_id))
        };
        if rc != 0 {
            // SAFETY: libpam did not take ownership; reclaim the box we just made.
            drop(unsafe { Box::from_raw(boxed as *mut u64) });
        }
        rc == 0
    }

    pub fn session_id(&self) -> Option<u64> {
        let mut p: *const c_void = std::ptr::null();
        // SAFETY: valid handle, static name, valid out-pointer.
        let rc = unsafe { pam_sys::raw::pam_get_data(self.0, SESSION_KEY.as_ptr(), &mut p) };
        if rc != 0 || p.is_null() {
            return None;
        }
        // SAFETY: only set_session_id stores data under this name, always a Box<u64>.
        Some(unsafe { *(p as *const u64) })
    }
}

const SESSION_KEY: &CStr = c"elevate_session_id";

extern "C" fn free_session_id(_h: *mut PamHandle, data: *mut c_void, _status: c_int) {
    if !data.is_null() {
        // SAFETY: `data` is the Box<u64> set_session_id leaked; libpam calls this once.
        drop(unsafe { Box::from_raw(data as *mut u64) });
    }
}

/// Why libpam's argument vector could not be read. `Display` is what syslog gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgvError {
    /// A null vector, or more than 256 arguments.
    Invalid,
    NullArgument,
    NotUtf8,
}

impl fmt::Display for ArgvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgvError::Invalid => "invalid argument vector",
            ArgvError::NullArgument => "null module argument",
            ArgvError::NotUtf8 => "module argument is not UTF-8",
        })
    }
}

/// One syslog(3) call at LOG_AUTHPRIV. `%s` keeps the message from being a format string;
/// openlog is never called, so the host program's ident is left alone.
pub fn syslog(error: bool, text: &str) {
    let Ok(c) = CString::new(format!("pam_elevate: {}", text.replace('\0', " "))) else {
        return;
    };
    let prio = libc::LOG_AUTHPRIV | if error { libc::LOG_ERR } else { libc::LOG_INFO };
    // SAFETY: constant format string with one %s argument, a valid C string.
    unsafe { libc::syslog(prio, c"%s".as_ptr(), c.as_ptr()) };
}

/// Whether `user` is a member (primary or supplementary) of `group`, from NSS.
pub fn in_group(user: &str, group: &str) -> bool {
    let (Ok(u), Ok(g)) = (CString::new(user), CString::new(group)) else {
        return false;
    };
    let mut buf = vec![0u8; 16384];
    let mut gr: libc::group = zeroed_group();
    let mut res: *mut libc::group = std::ptr::null_mut();
    // SAFETY: getgrnam_r with a valid name, a result struct, and a buffer of the given size.
    let rc = unsafe {
        libc::getgrnam_r(
            g.as_ptr(),
            &mut gr,
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            &mut res,
        )
    };
    if rc != 0 || res.is_null() {
        return false;
    }
    let gid = gr.gr_gid;
    let mut pw: libc::passwd = zeroed_passwd();
    let mut pres: *mut libc::passwd = std::ptr::null_mut();
    let mut pbuf = vec![0u8; 16384];
    // SAFETY: as above, for getpwnam_r.
    let rc = unsafe {
        libc::getpwnam_r(
            u.as_ptr(),
            &mut pw,
            pbuf.as_mut_ptr() as *mut c_char,
            pbuf.len(),
            &mut pres,
        )
    };
    if rc != 0 || pres.is_null() {
        return false;
    }
    // getgrouplist says how many it needs when the buffer is short: grow once or twice (a
    // user in more than 1024 groups must not fall out of the exempt group).
    let mut len: c_int = 1024;
    for _ in 0..4 {
        let mut groups = vec![0 as libc::gid_t; len.max(1) as usize];
        let mut n = groups.len() as c_int;
        // SAFETY: getgrouplist writes at most `n` gids into `groups` and updates `n`.
        let rc = unsafe { libc::getgrouplist(u.as_ptr(), pw.pw_gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return groups.contains(&gid);
        }
        if n <= len || n > 1 << 20 {
            return false;
        }
        len = n;
    }
    false
}

fn zeroed_group() -> libc::group {
    // SAFETY: `struct group` is plain data (integers and pointers); all-zero is valid.
    unsafe { std::mem::zeroed() }
}

fn zeroed_passwd() -> libc::passwd {
    // SAFETY: `struct passwd` is plain data; all-zero is valid.
    unsafe { std::mem::zeroed() }
}
