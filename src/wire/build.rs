//! Build script of the `wire` crate: compiles the wire schemas in the repository's `proto/`
//! into Rust types with protox (a pure-Rust protobuf compiler, so no system `protoc` is
//! needed) and prost-build. The generated file lands in OUT_DIR and is included once, by
//! `src/wire/src/lib.rs`.

use std::path::Path;

/// The schema files, relative to the include root `proto/`.
const SCHEMAS: [&str; 4] = [
    "koopstream/v1/common.proto",
    "koopstream/v1/ingest.proto",
    "koopstream/v1/model.proto",
    "koopstream/v1/predict.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = Path::new(&manifest).join("../../proto");
    let root = root.as_path();
    // Any schema edit (or a new file in the directory) regenerates the types.
    println!("cargo::rerun-if-changed=proto");
    for schema in SCHEMAS {
        println!("cargo::rerun-if-changed={}", root.join(schema).display());
    }
    let descriptors = protox::compile(SCHEMAS, [root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
