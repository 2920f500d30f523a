//! schemathesis 4 (a property-based API tester nobody here wrote) against the live server
//! and its own `/openapi.json`: every check, a fixed seed and a time budget, with a token
//! that holds every scope (so `ignored_auth` checks that each route refuses a request
//! without it). The exceptions that JSON Schema cannot express are listed, with reasons,
//! in tests/schemathesis/schemathesis.toml.
//!
//! Needs schemathesis, so it is ignored by a plain `cargo test` (listed as ignored, never
//! passed silently); `.ci/run` installs it with tests/schemathesis/setup-venv.sh, names
//! its `st` in SCHEMATHESIS and runs this test with `--ignored`.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestServer;
use koopstream::access::TokenConfig;
use koopstream::config::{AuthConfig, ServiceConfig};

const TOKEN: &str = "schemathesis-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis: SCHEMATHESIS=$(bash tests/schemathesis/setup-venv.sh)"]
async fn schemathesis_finds_no_failure() {
    let st = std::env::var("SCHEMATHESIS").expect("SCHEMATHESIS names schemathesis's `st` command");
    let budget = std::env::var("SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "90".to_owned());
    let token = TokenConfig::for_secret("schemathesis", TOKEN, &["read", "ingest", "admin", "metrics"]);
    let config =
        ServiceConfig { auth: AuthConfig { tokens: vec![token], ..AuthConfig::default() }, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let reports = common::scratch_dir("schemathesis");
    let schema = server.url("/openapi.json");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .current_dir(&reports)
            .args(["--no-color", "--config-file"])
            .arg(here.join("schemathesis.toml"))
            .args(["run", &schema, "--checks", "all", "--seed", "20261204", "--workers", "1"])
            .args(["--max-time", &budget, "--generation-database", "none", "--request-timeout", "30"])
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}\n{}", String::from_utf8_lossy(&output.stderr));
    // Still up, and answering.
    assert_eq!(server.get_json("/healthz").await.0, 200);
    server.stop().await;
    assert!(output.status.success(), "schemathesis reported failures (above)");
    assert!(report.contains("No issues found") || report.contains("passed"), "an unexpected report (above)");
}
