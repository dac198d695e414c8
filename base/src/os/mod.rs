//! The system calls that more than one crate needs, each wrapped once. Every `unsafe` block
//! of this crate is here (this file and [`nss`]), each with its `// SAFETY:` reasoning.

pub mod nss;

pub mod clock;
pub mod process;

use std::io;

/// Return values of libc calls that signal failure with -1 and set `errno`.
pub trait MinusOne: Copy + PartialEq {
    const MINUS_ONE: Self;
}

macro_rules! minus_one {
    ($($t:ty)*) => {$(impl MinusOne for $t { const MINUS_ONE: Self = -1; })*};
}
minus_one!(i8 i16 i32 i64 isize);

/// The errno helper under every libc call: `-1` becomes the `errno` it set, anything else is
/// the call's result. (`cerr` after sudo-rs's name for the same idea.)
pub fn cerr<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cerr`], retrying while the call was interrupted by a signal (`EINTR`).
pub fn cerr_retry<T: MinusOne>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cerr(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_is_errno_and_the_rest_passes() {
        assert_eq!(cerr(5i32).ok(), Some(5));
        assert_eq!(cerr(0isize).ok(), Some(0));
        // SAFETY: close(-1) touches no descriptor; it only sets errno to EBADF.
        let e = cerr(unsafe { libc::close(-1) }).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        let mut tries = 0;
        let r = cerr_retry(|| {
            tries += 1;
            if tries < 3 {
                // SAFETY: writing errno through the thread-local pointer glibc provides.
                unsafe { *libc::__errno_location() = libc::EINTR };
                -1i32
            } else {
                7
            }
        });
        assert_eq!((r.ok(), tries), (Some(7), 3));
    }
}
