//! Names and values a policy or a caller gives for the command's environment: the verdicts
//! never panic and never contradict each other (a name known to run code is never inert, and
//! an invalid name is always refused).
#![no_main]
use elevate_policy::env::{inert_value_ok, is_inert, keep_verdict, refusal_reason, KeepVerdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (name, value) = s.split_once('=').unwrap_or((&s, ""));
    let valid = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    match keep_verdict(name) {
        KeepVerdict::Refused(_) => {}
        KeepVerdict::Inert => assert!(valid && refusal_reason(name).is_none() && is_inert(name)),
        KeepVerdict::Unknown => assert!(valid && refusal_reason(name).is_none() && !is_inert(name)),
    }
    let _ = inert_value_ok(name, value);
});
