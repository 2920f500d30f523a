//! `koopstream simulate --measure pmu` and `koopstream truth --measure pmu` end to end: the
//! real binary's CSV columns and values, the truth document's PMU mode shapes, and clear
//! errors for bad bus and quantity lists.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_koopstream")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Header and numeric rows of a CSV text.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_owned).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    (header, rows)
}

#[test]
fn simulate_writes_the_default_pmu_columns() {
    let (ok, stdout, stderr) =
        run(&["simulate", "--system", "ieee68", "--measure", "pmu", "--duration", "1", "--pmu-noise", "off"]);
    assert!(ok, "{stderr}");
    let (header, rows) = parse_csv(&stdout);
    let buses = [1, 2, 8, 9, 27, 29, 36, 40, 41, 42, 50, 52];
    let mut expected = vec!["t".to_string()];
    for bus in buses {
        expected.extend(["vm", "va", "f"].iter().map(|q| format!("b{bus}_{q}")));
    }
    assert_eq!(header, expected);
    assert_eq!(rows.len(), 61);
    // Steady state before the fault at 1 s: power-flow values (bus 29: 1.05089016 pu at
    // 13.97003904 degrees from bus 65) and 60 Hz.
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!((rows[0][column("b29_vm")] - 1.050_890_16).abs() < 1e-6);
    assert!((rows[0][column("b29_va")] - 13.970_039_04).abs() < 1e-6);
    assert!(rows[..60].iter().all(|r| (r[column("b29_f")] - 60.0).abs() < 1e-9));
}

#[test]
fn simulate_with_errors_noise_and_rocof_on_an_ambient_record() {
    let args = [
        "simulate",
        "--system",
        "ieee68",
        "--scenario",
        "ambient",
        "--measure",
        "pmu",
        "--buses",
        "65,41",
        "--quantities",
        "va,vm,rocof",
        "--duration",
        "2",
        "--tve",
        "0.02",
        "--snr",
        "40",
        "--dropout",
        "0.01",
        "--seed",
        "3",
    ];
    let (ok, first, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let (header, rows) = parse_csv(&first);
    // The reference bus (65) has no angle column.
    assert_eq!(header, ["t", "b65_vm", "b65_rocof", "b41_va", "b41_vm", "b41_rocof"]);
    assert_eq!(rows.len(), 121);
    let (_, again, _) = run(&args);
    assert_eq!(first, again, "seeded");
}

#[test]
fn bad_pmu_options_are_refused_with_the_reason() {
    let cases: [(&[&str], &str); 6] = [
        (&["--measure", "pmu", "--buses", "1,99"], "bus 99 does not exist"),
        (&["--measure", "pmu", "--buses", "1,1"], "bus 1 is listed twice"),
        (&["--measure", "pmu", "--quantities", "vm,power"], "`power`"),
        (&["--buses", "1,2"], "--buses needs --measure pmu"),
        (&["--measure", "pmu", "--tve=-1"], "invalid parameter `tve`"),
        (&["--measure", "pmu", "--pmu-noise", "off", "--fe", "0.01"], "cannot be used with"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["simulate", "--system", "ieee68", "--duration", "0.5"];
        args.extend_from_slice(extra);
        let (ok, _, stderr) = run(&args);
        assert!(!ok && stderr.contains(message), "{extra:?}: {stderr}");
    }
    let (ok, _, stderr) = run(&["simulate", "--system", "vdp", "--measure", "pmu"]);
    assert!(!ok && stderr.contains("needs --system ieee68"), "{stderr}");
}

#[test]
fn truth_adds_pmu_shapes_only_when_asked() {
    let (ok, plain, stderr) = run(&["truth", "--system", "ieee68"]);
    assert!(ok, "{stderr}");
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    let plain = &plain["modes"];
    assert!(plain[0].get("pmu_shape").is_none(), "unchanged without --measure pmu");

    let (ok, text, stderr) =
        run(&["truth", "--system", "ieee68", "--measure", "pmu", "--buses", "2,41", "--quantities", "va,f"]);
    assert!(ok, "{stderr}");
    let truth: serde_json::Value = serde_json::from_str(&text).unwrap();
    let modes = truth["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 15);
    assert_eq!(modes[0]["frequency_hz"], plain[0]["frequency_hz"]);
    let shape = modes[0]["pmu_shape"].as_array().unwrap();
    let channels: Vec<&str> = shape.iter().map(|e| e["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["b2_va", "b2_f", "b41_va", "b41_f"]);
    for entry in shape {
        let (re, im, magnitude) =
            (entry["re"].as_f64().unwrap(), entry["im"].as_f64().unwrap(), entry["magnitude"].as_f64().unwrap());
        assert!((re.hypot(im) - magnitude).abs() < 1e-12 * (1.0 + magnitude));
    }
    let (ok, _, stderr) = run(&["truth", "--system", "vdp", "--measure", "pmu"]);
    assert!(!ok && stderr.contains("needs --system ieee68"), "{stderr}");
}
