//! What the fuzz targets share: the stream the batches are parsed for (two states, one
//! input), built through the same create path as the API. Each target uses part of it.
#![allow(dead_code)]

use domain::batch::Shape;
use domain::definition::StreamDefinition;

/// The largest batch the targets allow (small, so that a valid batch is found often).
pub const MAX_SAMPLES: usize = 4096;

/// A stream with channels `a`, `b` and input `u`.
pub fn definition() -> StreamDefinition {
    let request: wire::streams::CreateStream = serde_json::from_str(
        r#"{"id": "f", "channels": [{"name": "a"}, {"name": "b"}], "inputs": [{"name": "u"}], "ts": 0.02}"#,
    )
    .expect("the fuzz stream parses");
    StreamDefinition::from_request(request.into(), 300, || "f".to_owned()).expect("the fuzz stream is valid")
}

/// Its shape.
pub fn shape() -> Shape {
    Shape { n: 2, m: 1, max_samples: MAX_SAMPLES }
}
