//! The first hour of a new user, through the real binary: the ground truth in the
//! service's field names, errors that say their cause once, every default in `--help`,
//! `fit` taking the sample time from `t`, and numbers printed with the digits they carry.

use std::path::PathBuf;
use std::process::{Command, Output};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koopstream"));
    // The test decides whether a backtrace is asked for.
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    command
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch file unique to this test process.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("koopstream-first-hour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn truth(system: &str) -> serde_json::Value {
    let out = run(&["truth", "--system", system]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn truth_prints_the_modes_of_every_system_in_the_service_s_fields() {
    let ieee68 = truth("ieee68");
    assert_eq!(ieee68["system"], "ieee68");
    let modes = ieee68["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 15);
    for mode in modes {
        assert!(mode["frequency_hz"].is_f64() && mode["damping_ratio"].is_f64(), "{mode}");
        let im = mode["continuous"]["im"].as_f64().unwrap();
        assert!((im / std::f64::consts::TAU - mode["frequency_hz"].as_f64().unwrap()).abs() < 1e-12);
    }
    let inter_area: Vec<f64> =
        modes.iter().filter(|m| m["kind"] == "inter-area").map(|m| m["frequency_hz"].as_f64().unwrap()).collect();
    assert_eq!(inter_area.len(), 4, "{inter_area:?}");
    // The shared data's ground truth (modes_classical.csv, case A).
    for (f, expected) in inter_area.iter().zip([0.37960, 0.48909, 0.62580, 0.78098]) {
        assert!((f - expected).abs() < 1e-4, "{inter_area:?}");
    }
    assert!(modes.iter().all(|m| m["kind"] == "inter-area" || m["kind"] == "local"));

    let vdp = truth("vdp");
    let cycle = &vdp["limit_cycle"];
    let (period, f) = (cycle["period_s"].as_f64().unwrap(), cycle["frequency_hz"].as_f64().unwrap());
    assert!((period - 6.663287).abs() < 1e-5 && (f * period - 1.0).abs() < 1e-12, "{cycle}");
    assert_eq!(vdp["modes"][0]["frequency_hz"], cycle["frequency_hz"]);
    assert_eq!(vdp["modes"][0]["damping_ratio"], 0.0);
    assert_eq!(vdp["modes"][0]["kind"], "limit-cycle");

    let henon = truth("henon");
    assert_eq!(henon["modes"].as_array().map(Vec::len), Some(0));
    assert!((henon["attractor"]["jacobian_determinant"].as_f64().unwrap() + 0.3).abs() < 1e-12);
}

#[test]
fn truth_refuses_the_options_of_another_system() {
    let cases = [
        (["--system", "ieee68", "--mu", "2"], "--mu applies to --system vdp only"),
        (["--system", "vdp", "--network", "post"], "--network applies to --system ieee68 only"),
        (["--system", "henon", "--damping-scale", "0.1"], "--damping-scale applies to --system ieee68 only"),
    ];
    for (args, expected) in cases {
        let out =
            binary().arg("truth").args(args).env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE").output();
        let out = out.unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim(), format!("error: {expected}"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing is printed");
    }
    // Their own options still apply, with the defaults documented in --help.
    let vdp = run(&["truth", "--system", "vdp", "--mu", "2"]);
    assert!(vdp.status.success(), "{}", text(&vdp.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&vdp.stdout).unwrap();
    assert_eq!(doc["limit_cycle"]["mu"], 2.0, "{doc}");
}

#[test]
fn truth_help_lists_exactly_the_systems_it_accepts() {
    let help = text(&run(&["truth", "--help"]).stdout);
    let system = help.rsplit("--system <SYSTEM>").next().unwrap();
    let system = &system[..system.find("\n      --").unwrap()];
    let listed: Vec<&str> = system
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(listed, ["vdp", "henon", "ieee68"], "{system}");
    for name in &listed {
        assert!(run(&["truth", "--system", name]).status.success(), "{name}");
    }
    let out = run(&["truth", "--system", "vdp-ring"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("possible values: vdp, henon, ieee68"), "{}", text(&out.stderr));
}

#[test]
fn an_error_says_its_cause_once_without_a_backtrace() {
    let out = run(&["fit", "--input", "no/such/file.csv", "--dt", "0.1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot open no/such/file.csv"), "{stderr}");
    assert!(!stderr.contains("Caused by") && !stderr.contains("backtrace"), "{stderr}");

    // The same failure with a backtrace asked for shows one.
    let out = binary().args(["fit", "--input", "no/such/file.csv", "--dt", "0.1"]).env("RUST_BACKTRACE", "1").output();
    let stderr = text(&out.unwrap().stderr);
    assert!(stderr.contains("backtrace:"), "{stderr}");

    let bad = scratch("letters.csv", "t,x\n0,1\n0.1,zz\n");
    let out = run(&["fit", "--input", bad.to_str().unwrap(), "--dt", "0.1"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.matches("`zz` is not a number").count(), 1, "{stderr}");
}

/// The options of a subcommand's `--help` that take a value, each with its help text.
fn value_options(help: &str) -> Vec<(String, String)> {
    let mut options: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 0 && !trimmed.is_empty() {
            // A section heading ends the option before it.
            options.push((String::new(), String::new()));
        } else if indent <= 6 && trimmed.starts_with('-') {
            let name = trimmed.split([' ', '=']).find(|w| w.starts_with("--")).unwrap_or(trimmed);
            let takes_value = trimmed.contains('<');
            options.push((if takes_value { name.to_owned() } else { String::new() }, trimmed.to_owned()));
        } else if let Some((_, text)) = options.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    options.retain(|(name, _)| !name.is_empty());
    options
}

#[test]
fn every_default_is_shown_in_help() {
    // Options without a default: required ones, and files that are only read when given.
    let no_default = ["--system", "--input", "--tls-cert", "--tls-key", "--tls-client-ca"];
    let subcommands =
        ["serve", "fit", "simulate", "truth", "experiment", "demo", "loadgen", "bench-online", "token", "pmu-serve"];
    for subcommand in subcommands {
        let out = run(&[subcommand, "--help"]);
        assert!(out.status.success(), "{subcommand}");
        let help = text(&out.stdout);
        let options = value_options(&help);
        assert!(!options.is_empty(), "{subcommand}: {help}");
        for (name, doc) in options {
            if no_default.contains(&name.as_str()) {
                continue;
            }
            assert!(doc.to_lowercase().contains("default"), "{subcommand} {name} shows no default: {doc}");
        }
    }
    // Spot checks of the main ones, with their values.
    let spots: [(&str, &str); 9] = [
        ("simulate", "30 s for vdp and vdp-ring, 20 s for ieee68"),
        ("simulate", "10 Hz for vdp and vdp-ring, 60 Hz for ieee68"),
        ("simulate", "[default: 0]"),
        ("fit", "default 200"),
        ("fit", "the median step of the `t` column"),
        ("demo", "[default: 20]"),
        ("pmu-serve", "[default: 600]"),
        ("loadgen", "[default: 30]"),
        ("serve", "default 127.0.0.1:8080"),
    ];
    for (subcommand, expected) in spots {
        let help = text(&run(&[subcommand, "--help"]).stdout).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains(expected), "{subcommand}: {expected}");
    }
}

#[test]
fn fit_takes_the_sample_time_from_the_t_column() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vdp_noisy.csv");
    let input = example.to_str().unwrap();
    let out = run(&["fit", "--input", input]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ts"], 0.1);
    assert_eq!(doc["state_channels"], serde_json::json!(["x1", "x2"]), "`t` is not a channel");
    assert!(stderr.contains("dt = 0.1 s, the median step of column `t`"), "{stderr}");
    let given = run(&["fit", "--input", input, "--dt", "0.1"]);
    assert_eq!(given.stdout, out.stdout, "the same model as with --dt");

    let refused = [
        ("no_t.csv", "x\n1\n2\n3\n", "has no `t` column"),
        ("backwards.csv", "t,x\n0,1\n0.1,2\n0.05,3\n", "`t` does not increase at line 4"),
        ("irregular.csv", "t,x\n0,1\n0.1,2\n0.2,3\n0.33,4\n0.43,5\n", "the step to line 5 is 0.13"),
    ];
    for (name, contents, expected) in refused {
        let path = scratch(name, contents);
        let out = run(&["fit", "--input", path.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{name}");
        assert!(stderr.contains(expected) && stderr.contains("give it with --dt"), "{name}: {stderr}");
    }
}

#[test]
fn numbers_carry_their_digits_and_no_zero_exponent() {
    let out = run(&["simulate", "--system", "vdp", "--duration", "2", "--rate", "10"]);
    assert!(out.status.success());
    let csv = text(&out.stdout);
    let stamps: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(
        stamps,
        ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]
            .iter()
            .chain(&["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "2"])
            .copied()
            .collect::<Vec<_>>()
    );
    let out = run(&["simulate", "--system", "ieee68", "--duration", "1", "--rate", "30"]);
    let csv = text(&out.stdout);
    let stamp = |k: usize| csv.lines().nth(k + 1).unwrap().split(',').next().unwrap().to_owned();
    assert_eq!((stamp(3), stamp(1)), ("0.1".to_owned(), "0.03333333333".to_owned()), "k / 30 at 1e-9 of a period");
    for printed in [csv, text(&run(&["truth", "--system", "ieee68"]).stdout)] {
        assert!(!printed.contains("e0,") && !printed.contains("e0\n") && !printed.contains("e0\"\n"));
    }
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vdp_noisy.csv");
    let out = run(&["fit", "--input", example.to_str().unwrap(), "--mu", "0.01"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("mu = 0.01"), "{stderr}");
}
