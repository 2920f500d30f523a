//! `koopstream fit` end to end: the real binary on a small bundled CSV, its model document,
//! and clear errors for bad files.

use std::path::PathBuf;
use std::process::Command;

use koopman::{Estimator, EstimatorConfig, Regularisation};
use koopstream::wire::model_doc::{MODEL_FORMAT, ModelDoc};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_koopstream"))
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vdp_noisy.csv")
}

/// A scratch file unique to this test process.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("koopstream-fit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn fit(args: &[&str]) -> (bool, String, String) {
    let out = binary().arg("fit").args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn fit_writes_the_model_document_of_the_online_estimator() {
    let input = example();
    let (ok, stdout, stderr) =
        fit(&["--input", input.to_str().unwrap(), "--dt", "0.1", "--dictionary", "state,const,poly:3", "--mu", "0.01"]);
    assert!(ok, "{stderr}");
    let doc: ModelDoc = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc.format, MODEL_FORMAT);
    assert_eq!(doc.ts, 0.1);
    assert_eq!(doc.state_channels, ["x1", "x2"]);
    assert_eq!(doc.dictionary.observables.len(), 10);
    assert_eq!((doc.a.rows, doc.a.cols, doc.b.cols, doc.c.rows), (10, 10, 0, 2));
    assert_eq!(doc.eigenvalues.len(), 10);
    assert_eq!(doc.pairs, 2000);
    assert!(stderr.contains("2001 rows, 2000 pairs"), "{stderr}");

    // The same samples pushed into the library estimator give the same matrices, bit for bit.
    let text = std::fs::read_to_string(&input).unwrap();
    let mut config = EstimatorConfig::new(vec!["x1".into(), "x2".into()], "state,const,poly:3".parse().unwrap());
    config.regularisation = Regularisation::Mu(0.01);
    let mut estimator = Estimator::new(config).unwrap();
    for line in text.lines().skip(1) {
        let v: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        estimator.push(&v[1..], &[]).unwrap();
    }
    let model = estimator.linear_model().unwrap();
    for i in 0..10 {
        for j in 0..10 {
            assert_eq!(doc.a.get(i, j), model.a[(i, j)]);
        }
    }
    // The read-out undoes the standardisation: C holds the scales, c_offset the means.
    let st = doc.dictionary.standardisation.unwrap();
    assert_eq!(doc.c.get(0, 0), st.scale[0]);
    assert_eq!(doc.c_offset, st.mean);
}

#[test]
fn fit_with_inputs_gaps_and_output_file() {
    let mut csv = String::from("t,x,u\n");
    let mut x: f64 = 1.0;
    for k in 0..400 {
        let u = ((k * 37) % 11) as f64 / 11.0 - 0.5;
        let t = if k >= 200 { k + 3 } else { k } as f64 * 0.5;
        if k == 100 {
            csv.push_str(&format!("{t},,{u}\n"));
        } else {
            csv.push_str(&format!("{t},{x},{u}\n"));
        }
        x = 0.8 * x + 0.5 * u;
    }
    let input = scratch("inputs.csv", &csv);
    let output = input.with_file_name("model.json");
    let (ok, stdout, stderr) = fit(&[
        "--input",
        input.to_str().unwrap(),
        "--dt",
        "0.5",
        "--inputs",
        "u",
        "--dictionary",
        "state",
        "--mu",
        "0",
        "--standardise",
        "false",
        "--warmup",
        "20",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("1 dropouts, 1 time gaps"), "{stderr}");
    let doc: ModelDoc = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(doc.input_channels, ["u"]);
    // x' = 0.8 x + 0.5 u exactly; the dropout and the time gap each removed a pair... and
    // the dropout's neighbour: 399 possible pairs - 2 around the dropout - 1 across the gap.
    assert!((doc.a.get(0, 0) - 0.8).abs() < 1e-12 && (doc.b.get(0, 0) - 0.5).abs() < 1e-12);
    assert_eq!(doc.pairs, 396);
}

#[test]
fn bad_files_stop_with_the_line_and_column() {
    let cases: [(&str, &str, &[&str], &str); 5] = [
        ("letters.csv", "t,x1,x2\n0,1,2\n0.1,1,zz\n", &[], "line 3, column `x2`: `zz` is not a number"),
        ("cells.csv", "x1,x2\n1,2\n1\n", &[], "line 3: 1 cells, the header has 2 columns"),
        ("missing.csv", "x1,x2\n1,2\n", &["--inputs", "u"], "no column named `u`"),
        ("short.csv", "x1,x2\n1,2\n2,3\n", &[], "too few rows: 2 data rows"),
        ("empty.csv", "", &[], "the file is empty"),
    ];
    for (name, contents, extra, expected) in cases {
        let path = scratch(name, contents);
        let mut args = vec!["--input", path.to_str().unwrap(), "--dt", "0.1"];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = fit(&args);
        assert!(!ok && stdout.is_empty(), "{name} should fail");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let (ok, _, stderr) = fit(&["--input", "no/such/file.csv", "--dt", "0.1"]);
    assert!(!ok && stderr.contains("cannot open no/such/file.csv"), "{stderr}");
    let (ok, _, stderr) = fit(&["--input", "x.csv", "--dt=-1"]);
    assert!(!ok && stderr.contains("not a positive number"), "{stderr}");
    let (ok, _, stderr) = fit(&["--input", "x.csv", "--dt", "1", "--dictionary", "poly:2"]);
    assert!(!ok && stderr.contains("must begin with `state`"), "{stderr}");
    let (ok, _, stderr) =
        fit(&["--input", example().to_str().unwrap(), "--dt", "1", "--forgetting", "0.9", "--window", "10"]);
    assert!(!ok && stderr.contains("cannot be combined"), "{stderr}");
}

#[test]
fn fit_takes_presets_and_estimators_under_the_stream_rules() {
    let input = example();
    let input = input.to_str().unwrap();
    let (ok, stdout, stderr) = fit(&["--input", input, "--dt", "0.1", "--preset", "pmu-ringdown", "--warmup", "100"]);
    assert!(ok, "{stderr}");
    let doc: ModelDoc = serde_json::from_str(&stdout).unwrap();
    assert_eq!((doc.dictionary.spec.as_str(), doc.mu, doc.forgetting), ("state,delay:2", 1e-6, 1.0));
    assert_eq!(serde_json::to_value(doc.estimator).unwrap(), "correlation");
    let (ok, stdout, stderr) =
        fit(&["--input", input, "--dt", "0.1", "--estimator", "correlation", "--lags", "30", "--dictionary", "state"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(r#""estimator": "correlation""#), "{stdout}");
    let refused: [(&[&str], &str); 4] = [
        (&["--lags", "30"], "--lags: only the `correlation` estimator takes it"),
        (&["--preset", "pmu-ambient", "--instrument-delay", "4"], "chosen by preset `pmu-ambient`"),
        (&["--preset", "nope"], "--preset: `nope` is not a preset"),
        (&["--estimator", "ols"], "the estimators are ridge, correlation, iv"),
    ];
    for (extra, expected) in refused {
        let mut args = vec!["--input", input, "--dt", "0.1"];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = fit(&args);
        assert!(!ok && stdout.is_empty(), "{extra:?} should fail");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}

#[test]
fn units_given_on_the_command_line_are_the_models_and_a_wrong_one_is_refused_before_the_fit() {
    let mut csv = String::from("t,x,u\n");
    let mut x: f64 = 1.0;
    for k in 0..300 {
        let u = ((k * 37) % 11) as f64 / 11.0 - 0.5;
        csv.push_str(&format!("{},{x},{u}\n", k as f64 * 0.5));
        x = 0.8 * x + 0.5 * u;
    }
    let input = scratch("units.csv", &csv);
    let input = input.to_str().unwrap();
    let common = ["--input", input, "--inputs", "u", "--dictionary", "state", "--warmup", "20"];
    let with = |extra: &[&str]| fit(&[&common[..], extra].concat());

    let (ok, stdout, stderr) = with(&["--units", "u=kW,x=m/s"]);
    assert!(ok, "{stderr}");
    let doc: ModelDoc = serde_json::from_str(&stdout).unwrap();
    assert_eq!((doc.state_units, doc.input_units), (vec!["m/s".to_owned()], vec!["kW".to_owned()]));
    let (ok, stdout, _) = with(&[]);
    assert!(ok);
    let doc: ModelDoc = serde_json::from_str(&stdout).unwrap();
    assert_eq!((doc.state_units, doc.input_units), (vec![String::new()], vec![String::new()]));

    for (units, cause) in [
        ("y=m", "--units names `y`, which is neither a state channel nor an input (they are: x, u)"),
        ("x=m,x=km", "--units gives `x` twice"),
        ("x", "`x` is not NAME=UNIT"),
        ("x=", "`x=` is not NAME=UNIT (both must be given)"),
        (&format!("x={}", "m".repeat(33)), "the unit of `x` is 33 bytes; at most 32"),
    ] {
        let (ok, stdout, stderr) = with(&["--units", units]);
        assert!(!ok && stdout.is_empty(), "{units}");
        assert!(stderr.contains(cause), "{units}: {stderr}");
        // Refused before any row was read: no fit summary.
        assert!(!stderr.contains("pairs"), "{units}: {stderr}");
    }
}
