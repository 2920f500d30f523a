//! Prediction requests, JSON and protobuf.
#![no_main]

use prost::Message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<wire::documents::PredictRequest>(data);
    if let Ok(message) = wire::pb::PredictRequest::decode(data) {
        let _ = wire::documents::PredictRequest::try_from(&message);
    }
});
