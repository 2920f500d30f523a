//! The binary as an operator runs it: configuration layers and errors that name the key,
//! a clean exit on SIGTERM, and the demo against an in-process server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koopstream"));
    // Only what each test sets: the environment of the test runner must not leak in.
    for (key, _) in std::env::vars() {
        if key.starts_with("KOOPSTREAM_") {
            command.env_remove(key);
        }
    }
    command
}

fn scratch(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("koopstream-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let file = scratch("bad.toml", "[limits]\nqueue_capacity = 0\n");
    let out = binary().args(["serve", "--config", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limits.queue_capacity"), "{stderr}");

    let out = binary().arg("serve").env("KOOPSTREAM_LIMITS__MAX_STREAMS", "lots").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("limits.max_streams"), "{stderr}");

    let out = binary().args(["serve", "--config", "no/such/file.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn serve_listens_where_configured_and_stops_cleanly_on_sigterm() {
    // The flag beats the environment, which beats the file: port 0 from the flag.
    let file = scratch("listen.toml", "listen = \"127.0.0.1:1\"\nlog_format = \"json\"\n");
    let data = std::env::temp_dir().join(format!("koopstream-serve-{}-data", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut child = binary()
        .args([
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env("KOOPSTREAM_LISTEN", "127.0.0.1:2")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = common::child::listening_address(&mut lines);
    assert!(address.starts_with("127.0.0.1:") && !address.ends_with(":1") && !address.ends_with(":2"), "{address}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health =
        runtime.block_on(async { reqwest::get(format!("http://{address}/healthz")).await.unwrap().status().as_u16() });
    assert_eq!(health, 200);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    assert!(data.join("koopstream.redb").is_file(), "the store lives in --data-dir");
}

#[test]
fn the_demo_identifies_van_der_pol_against_the_truth() {
    let out = binary().args(["demo", "--system", "vdp", "--speed", "0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fields = final_row(&stdout, "0.1501");
    let identified: f64 = fields[F].parse().unwrap();
    // 0.5 % of the limit-cycle frequency is out of reach with sigma = 0.05 noise on 1200
    // samples (measured 1.2 %); 3 % is what the demo reliably shows.
    assert!((identified / 0.150_076 - 1.0).abs() < 0.03, "{fields:?}");

    // One table: the legend once, the server's dashboard, then every line from the header to
    // the last row with the header's columns, from the first eigen refresh on.
    assert_eq!(stdout.matches("dzeta (pt)  damping error").count(), 1, "{stdout}");
    assert!(stdout.contains("(dashboard: http://127.0.0.1:"), "{stdout}");
    let rows = table_rows(&stdout);
    assert!(rows[0].ends_with("| warming up"), "{}", rows[0]);
    assert!(
        rows[1].ends_with("| new") || rows[1].ends_with("| tracked"),
        "modes from the first refresh on: {}",
        rows[1]
    );
}

/// The demo's rows after its header, each checked to have the header's columns.
fn table_rows(stdout: &str) -> Vec<&str> {
    let header = stdout.lines().find(|l| l.ends_with("dzeta (pt) | status")).expect("the header");
    let bars: Vec<usize> = header.match_indices('|').map(|(i, _)| i).collect();
    let rows: Vec<&str> = stdout.lines().skip_while(|l| *l != header).skip(1).filter(|l| l.contains('|')).collect();
    assert!(rows.len() > 3, "{stdout}");
    for row in &rows {
        assert_eq!(row.match_indices('|').map(|(i, _)| i).collect::<Vec<_>>(), bars, "{row}\n{header}");
    }
    rows
}

/// Columns of a demo row split on whitespace: identified frequency, true frequency, df,
/// dzeta and the status.
const F: usize = 2;
const TRUE_F: usize = 8;
const DF: usize = 10;
const DZETA: usize = 11;

/// The final row of the demo's output for the true mode whose frequency starts with `truth`.
fn final_row(stdout: &str, truth: &str) -> Vec<String> {
    let table = stdout.split("Identified modes against the truth").nth(1).expect("final table");
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|f| f.len() > TRUE_F && f[TRUE_F].starts_with(truth) && f.last().is_some_and(|s| s == "final"))
        .unwrap_or_else(|| panic!("no final row for {truth}: {table}"))
}

#[test]
fn damping_scale_drives_the_ieee68_simulation_and_its_truth() {
    let out = binary().args(["truth", "--system", "ieee68", "--damping-scale", "0.1"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &truth["modes"][0];
    assert!((first["frequency_hz"].as_f64().unwrap() - 0.383).abs() < 0.01, "{first}");
    let zeta = first["damping_ratio"].as_f64().unwrap();
    assert!((0.008..0.016).contains(&zeta), "a tenth of the damping: {zeta}");

    let args = ["simulate", "--system", "ieee68", "--scenario", "ambient", "--duration", "2", "--rate", "30"];
    let out = binary().args(args).args(["--damping-scale", "0.1", "--damping-change-at", "1"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("t,"), "{}", &csv[..40]);
    assert_eq!(csv.lines().count(), 1 + 61);

    let out = binary().args(["simulate", "--system", "vdp", "--damping-scale", "0.5"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only the ieee68 system has machine damping"));
    let out = binary().args(["simulate", "--system", "ieee68", "--damping-change-at", "5"]).output().unwrap();
    assert!(!out.status.success(), "a change time needs a scale");
}

#[test]
fn the_demo_runs_the_chain_from_simulated_pmus_over_c37118() {
    let out = binary().args(["demo", "--system", "ieee68", "--via", "c37118", "--speed", "20"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("pmu-serve: 901 frames of 12 PMUs"), "{stdout}");
    // Times count from the first frame, not from 1970: the columns stay as wide as the header's.
    table_rows(&stdout);
    // The two modes above 1 % of the ring-down's energy (EXPERIMENTS.md), within the ring-down
    // bar of 2 % and 2 points: the chain over C37.118.2 keeps what the preset finds.
    for truth in ["0.3738", "0.5950"] {
        let fields = final_row(&stdout, truth);
        let (df, dzeta): (f64, f64) = (fields[DF].parse().unwrap(), fields[DZETA].parse().unwrap());
        assert!(df.abs() < 2.0 && dzeta.abs() < 2.0, "{fields:?}");
    }

    let out = binary().args(["demo", "--system", "vdp", "--via", "c37118"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--via c37118"));
}
