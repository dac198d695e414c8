//! Whatever an admin (or a broken config tool) writes after `pam_elevate.so` in /etc/pam.d:
//! the argument parser returns an error, never panics.
#![no_main]
use elevate_pam::Args;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Args::parse(s.split(' '));
        let _ = Args::parse(s.split('\0'));
    }
});
