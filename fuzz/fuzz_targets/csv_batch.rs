//! CSV sample batches, with unknown columns refused and allowed.
#![no_main]

mod common;

use std::sync::OnceLock;

use domain::definition::StreamDefinition;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static DEFINITION: OnceLock<StreamDefinition> = OnceLock::new();
    let definition = DEFINITION.get_or_init(common::definition);
    let allow_unknown = data.first().is_some_and(|b| b & 1 == 1);
    let _ = wire::csv::parse_batch_with(data, 1, definition, common::MAX_SAMPLES, allow_unknown);
});
