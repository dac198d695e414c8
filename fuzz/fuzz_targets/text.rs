//! Free text one user typed, shown to another (a reason on an admin's terminal): whatever it
//! holds, what is shown has no character a terminal would act on, escaping it again changes
//! nothing, and the cut version stays within its length.
#![no_main]
use elevate_base::text::{escape, first_hidden, shown};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let e = escape(&s);
    assert_eq!(first_hidden(&e), None, "escaped text still hides something");
    assert_eq!(escape(&e), e, "escaping twice changed it");
    for max in [0, 1, 2, 7, 40, 1024] {
        let cut = shown(&s, max);
        assert_eq!(first_hidden(&cut), None);
        assert!(cut.chars().count() <= max.max(1), "{} > {max}", cut.chars().count());
    }
});
