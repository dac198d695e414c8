//! Step-up authentication: elevated as a PAM application (service `elevate`). Blocking; run
//! on a blocking thread. The conversation is a callback the caller wires to the requester's
//! terminal through the socket. All of the daemon's libpam calls are in this file.

use elevate_proto::{PromptStyle, MAX_PROMPT_REPLY};
use pam_sys::{PamConversation, PamHandle, PamItemType, PamMessage, PamResponse, PamReturnCode};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The PAM service the daemon authenticates with (`/etc/pam.d/elevate`).
pub const SERVICE: &str = "elevate";
/// [`SERVICE`], as libpam takes it.
const SERVICE_C: &CStr = c"elevate";

/// Why step-up authentication did not succeed. `Display` is the text for the audit record
/// and the requester's denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The user name holds a NUL byte.
    NulInUser,
    /// `pam_start` failed with this code.
    Start(c_int),
    /// Authentication or the account check failed: libpam's message for the code.
    Failed(String),
    /// As `Failed`, for a code libpam has no message for.
    Code(c_int),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NulInUser => f.write_str("user name contains NUL"),
            AuthError::Start(rc) => write!(f, "pam_start failed ({rc})"),
            AuthError::Failed(message) => f.write_str(message),
            AuthError::Code(rc) => write!(f, "PAM error {rc}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// One conversation turn: show `text` in `style`; for prompts, the answer (`None`: none).
pub type Converse<'a> = dyn FnMut(PromptStyle, &str) -> Option<String> + 'a;

struct ConvState<'a, 'b> {
    converse: &'a mut Converse<'b>,
}

fn style_of(s: c_int) -> Option<PromptStyle> {
    match s {
        1 => Some(PromptStyle::Secret),
        2 => Some(PromptStyle::Echo),
        3 => Some(PromptStyle::Error),
        4 => Some(PromptStyle::Info),
        _ => None,
    }
}

/// The conversation function libpam calls. Answers are malloc'd as PAM requires (it frees
/// them); a panic or any malformed input is PAM_CONV_ERR, never an unwind into C.
extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *mut PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if num_msg <= 0 || num_msg > 32 || msg.is_null() || resp.is_null() || appdata.is_null() {
            return PamReturnCode::CONV_ERR as c_int;
        }
        // SAFETY: appdata is the &mut ConvState `authenticate` passed to pam_start; it lives
        // for the whole pam_start..pam_end span on this thread.
        let state = unsafe { &mut *(appdata as *mut ConvState) };
        let n = num_msg as usize;
        // SAFETY: calloc of n zeroed responses; null is checked.
        let out =
            unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
        if out.is_null() {
            return PamReturnCode::BUF_ERR as c_int;
        }
        for i in 0..n {
            // SAFETY: Linux-PAM passes an array of num_msg message pointers.
            let m = unsafe { *msg.add(i) };
            let (style, text) = if m.is_null() {
                (None, String::new())
            } else {
                // SAFETY: m points at a pam_message whose msg is a C string (or null).
                let m = unsafe { &*m };
                let text = if m.msg.is_null() {
                    String::new()
                } else {
                    // SAFETY: as above.
                    unsafe { CStr::from_ptr(m.msg) }
                        .to_string_lossy()
                        .into_owned()
                };
                (style_of(m.msg_style), text)
            };
            let Some(style) = style else {
                free_responses(out, n);
                return PamReturnCode::CONV_ERR as c_int;
            };
            let answer = (state.converse)(style, &text);
            if style.wants_reply() {
                let Some(a) = answer.filter(|a| a.len() <= MAX_PROMPT_REPLY) else {
                    free_responses(out, n);
                    return PamReturnCode::CONV_ERR as c_int;
                };
                let Ok(c) = CString::new(a) else {
                    free_responses(out, n);
                    return PamReturnCode::CONV_ERR as c_int;
                };
                // SAFETY: strdup copies into malloc'd memory libpam will free; `out` has n slots.
                unsafe { (*out.add(i)).resp = libc::strdup(c.as_ptr()) };
            }
        }
        // SAFETY: resp is a valid out-pointer given by libpam.
        unsafe { *resp = out };
        PamReturnCode::SUCCESS as c_int
    }));
    r.unwrap_or(PamReturnCode::CONV_ERR as c_int)
}

/// Free a partly filled response array (on a conversation error, libpam frees nothing).
fn free_responses(out: *mut PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: `out` has n calloc'd slots; each resp is null or strdup'd. Secrets are
        // wiped before the memory goes back.
        unsafe {
            let p = (*out.add(i)).resp;
            if !p.is_null() {
                let len = libc::strlen(p);
                std::ptr::write_bytes(p, 0, len);
                libc::free(p as *mut c_void);
            }
        }
    }
    // SAFETY: allocated with calloc above.
    unsafe { libc::free(out as *mut c_void) };
}

/// Authenticate `user` (and check the account) through the `elevate` service. `tty` and
/// `ruser` are set as PAM items for modules that look at them. `Err` carries libpam's
/// message for the audit record.
pub fn authenticate(
    user: &str,
    tty: Option<&str>,
    converse: &mut Converse,
) -> Result<(), AuthError> {
    let cuser = CString::new(user).map_err(|_| AuthError::NulInUser)?;
    let mut state = ConvState { converse };
    let conv = PamConversation {
        conv: Some(conversation),
        data_ptr: &mut state as *mut ConvState as *mut c_void,
    };
    let mut h0: *const PamHandle = std::ptr::null();
    // SAFETY: valid C strings, a conversation struct that outlives the handle (pam_end is
    // called below before `conv` and `state` go out of scope), a valid out-pointer.
    let rc = unsafe { pam_sys::raw::pam_start(SERVICE_C.as_ptr(), cuser.as_ptr(), &conv, &mut h0) };
    let h = h0 as *mut PamHandle;
    if rc != PamReturnCode::SUCCESS as c_int || h.is_null() {
        return Err(AuthError::Start(rc));
    }
    let set = |item: PamItemType, v: &str| {
        if let Ok(c) = CString::new(v) {
            // SAFETY: valid handle; libpam copies the string.
            unsafe { pam_sys::raw::pam_set_item(h, item as c_int, c.as_ptr() as *const c_void) };
        }
    };
    if let Some(t) = tty {
        set(PamItemType::TTY, t);
    }
    set(PamItemType::RUSER, user);
    // SAFETY: valid handle from pam_start.
    let mut rc = unsafe { pam_sys::raw::pam_authenticate(h, 0) };
    if rc == PamReturnCode::SUCCESS as c_int {
        // SAFETY: as above.
        rc = unsafe { pam_sys::raw::pam_acct_mgmt(h, 0) };
    }
    let outcome = if rc == PamReturnCode::SUCCESS as c_int {
        Ok(())
    } else {
        // SAFETY: pam_strerror returns a static string for any code.
        let s = unsafe { pam_sys::raw::pam_strerror(h, rc) };
        Err(if s.is_null() {
            AuthError::Code(rc)
        } else {
            // SAFETY: a NUL-terminated static string.
            let message = unsafe { CStr::from_ptr(s as *const c_char) };
            AuthError::Failed(message.to_string_lossy().into_owned())
        })
    };
    // SAFETY: valid handle; ends the transaction and frees libpam's state.
    unsafe { pam_sys::raw::pam_end(h, rc) };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_agree_and_errors_read_as_before() {
        assert_eq!(SERVICE_C.to_str(), Ok(SERVICE));
        assert_eq!(AuthError::NulInUser.to_string(), "user name contains NUL");
        assert_eq!(AuthError::Start(4).to_string(), "pam_start failed (4)");
        assert_eq!(AuthError::Code(31).to_string(), "PAM error 31");
        let failed = AuthError::Failed("Authentication failure".into());
        assert_eq!(failed.to_string(), "Authentication failure");
    }
}
