//! An audit log an attacker edited: the verifier must report, never panic.
#![no_main]
use elevate_audit::Verifier;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let mut v = Verifier::new(None);
    let _ = v.verify_reader(data, Path::new("fuzz.jsonl"));
    let _ = v.finish();
});
