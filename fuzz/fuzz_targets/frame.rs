//! Whatever a local user writes to the socket: the frame splitter and request decoder must
//! return errors, never panic or allocate beyond the frame limit.
#![no_main]
use elevate_proto::frame::{decode, FrameBuf};
use elevate_proto::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fb = FrameBuf::default();
    for chunk in data.chunks(7) {
        fb.push(chunk);
        while let Ok(Some(payload)) = fb.next_message() {
            let _ = decode::<Request>(&payload);
        }
    }
    let _ = decode::<Request>(data);
});
