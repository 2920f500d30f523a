//! Stream definitions: the JSON body, then the domain's checks and memory estimate.
#![no_main]

use domain::definition::StreamDefinition;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<wire::streams::CreateStream>(data)
        && let Ok(definition) = StreamDefinition::from_request(request.into(), 300, || "g".to_owned())
    {
        let _ = definition.estimator_config().validate();
    }
});
