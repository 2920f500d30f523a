//! NDJSON sample batches.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wire::batch::parse_ndjson(data, 1, common::shape());
});
