//! Policy text: the parser, validator and linter must report, never panic.
#![no_main]
use elevate_policy::{parse_str, FakeSystem};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let sys = FakeSystem::new();
        let _ = parse_str(Path::new("fuzz.toml"), text, &sys);
    }
});
