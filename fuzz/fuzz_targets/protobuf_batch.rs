//! Protobuf sample batches (HTTP bodies and WebSocket binary frames share the decoder).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wire::batch::parse_protobuf(data, "f", common::shape());
});
