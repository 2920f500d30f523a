//! JSON sample batches (HTTP bodies and WebSocket text frames share the parser).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wire::batch::parse_json_frame(data, common::shape());
});
