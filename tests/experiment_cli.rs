//! `koopstream experiment --quick` end to end: the real binary writes report.md, one CSV per
//! table (parseable, with the expected rows) and the SVG plots; bad options fail clearly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_koopstream"))
}

/// A scratch directory unique to this test process and test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("koopstream-experiment-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Minimal CSV reader: commas, double-quoted fields with doubled quotes inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            let mut fields = Vec::new();
            let mut field = String::new();
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match (c, quoted) {
                    ('"', true) if chars.peek() == Some(&'"') => {
                        field.push('"');
                        chars.next();
                    }
                    ('"', _) => quoted = !quoted,
                    (',', false) => fields.push(std::mem::take(&mut field)),
                    _ => field.push(c),
                }
            }
            fields.push(field);
            fields
        })
        .collect()
}

/// The CSV file `name` in `dir`: header and rows, every row as wide as the header.
fn table(dir: &Path, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = parse_csv(&text);
    assert!(!rows.is_empty(), "{name} is empty");
    let header = rows.remove(0);
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{name}: {row:?}");
    }
    (header, rows)
}

fn column<'a>(header: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let j = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|r| r[j].as_str()).collect()
}

fn number(text: &str) -> f64 {
    text.parse().unwrap_or_else(|_| panic!("`{text}` is not a number"))
}

#[test]
fn quick_experiment_writes_the_report_tables_and_plots() {
    let dir = scratch("all");
    let out = binary().args(["experiment", "--quick", "--out"]).arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("report written to"), "{stderr}");

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.starts_with("# koopstream experiments"));
    assert!(report.contains("cargo run --release -- experiment"), "the report names its command");
    assert!(report.contains("Quick run"));
    for heading in [
        "## Summary",
        "## Van der Pol oscillator",
        "## Ring of 10 Van der Pol oscillators",
        "## Hénon map",
        "## IEEE 68-bus: fault ring-down",
        "## IEEE 68-bus: ambient operation",
        "## IEEE 68-bus: the mode meter",
        "## IEEE 68-bus ambient: estimators that noise does not bias",
        "## IEEE 68-bus ring-down from PMU measurements",
        "## IEEE 68-bus ambient from PMUs: how much the recipe matters",
        "## IEEE 68-bus ambient: the information floor of a record",
        "## Cost: online update against batch refit",
        "## Online equals batch",
    ] {
        assert!(report.contains(heading), "missing {heading}");
    }

    // Van der Pol: every noise level of the quick set, every method, numeric errors.
    let (header, rows) = table(&dir, "vdp_prediction.csv");
    assert_eq!(rows.len(), 2 * 7, "two noise levels x seven methods (one fixed mu in the quick set)");
    let methods = column(&header, &rows, "method");
    for method in ["batch EDMD (mu = 0)", "instrumental variables (online, delay 1)", "correlation (online, 2 lags)"] {
        assert!(methods.contains(&method), "{method} in {methods:?}");
    }
    assert!(methods.iter().any(|m| m.starts_with("ridge, fixed mu")), "quoted commas");
    for v in column(&header, &rows, "H=20 relift") {
        assert!(number(v) >= 0.0);
    }
    assert!(column(&header, &rows, "models").iter().all(|m| *m == "1/1"), "every quick fit gives a model");
    let (header, rows) = table(&dir, "vdp_robust_vs_edmd.csv");
    assert_eq!(rows.len(), 4);
    assert!(column(&header, &rows, "verdict").iter().all(|v| !v.is_empty()));
    // Each de-biased estimator against EDMD and against robust, at both noise levels and
    // both horizons, with a verdict naming the estimator (or a tie).
    let (header, rows) = table(&dir, "vdp_debiased_comparison.csv");
    assert_eq!(rows.len(), 2 * 2 * 2 * 2);
    for (estimator, v) in column(&header, &rows, "estimator").into_iter().zip(column(&header, &rows, "verdict")) {
        assert!(v.starts_with(estimator) || v.starts_with("tie") || v == "mixed", "{estimator}: {v}");
    }
    let (_, rows) = table(&dir, "vdp_correlation_lags.csv");
    assert_eq!(rows.len(), 2 * 2, "two noise levels x two lag counts");
    table(&dir, "vdp_data_size.csv");
    let (_, rows) = table(&dir, "vdp_spectrum.csv");
    assert_eq!(rows.len(), 2 * 4, "robust, EDMD, IV and correlation at both noise levels");

    // Ring and Hénon.
    let (_, rows) = table(&dir, "ring_prediction.csv");
    assert_eq!(rows.len(), 3);
    let (header, rows) = table(&dir, "henon.csv");
    assert_eq!(rows.len(), 4, "ridge, EDMD, online DMD, instrumental variables");
    let a: Vec<f64> = column(&header, &rows, "a (1.4)").into_iter().map(number).collect();
    assert!((a[1] - 1.4).abs() < 0.05, "EDMD recovers a at sigma = 0.01: {a:?}");

    // IEEE 68-bus: four inter-area modes per method.
    let (header, rows) = table(&dir, "ieee68_ringdown_modes.csv");
    assert_eq!(rows.len(), 3 * 4);
    let truth: Vec<f64> = column(&header, &rows, "true f (Hz)").into_iter().map(number).collect();
    assert!((truth[0] - 0.3738).abs() < 1e-3, "post-fault truth: {truth:?}");
    let (header, rows) = table(&dir, "ieee68_ambient_modes.csv");
    assert_eq!(rows.len(), 4 * 4, "three methods and the speeds-only variant");
    let truth: Vec<f64> = column(&header, &rows, "true f (Hz)").into_iter().map(number).collect();
    assert!((truth[0] - 0.3796).abs() < 1e-3, "pre-fault truth: {truth:?}");
    table(&dir, "ieee68_ringdown_prediction.csv");
    table(&dir, "ieee68_ambient_prediction.csv");
    let (_, rows) = table(&dir, "ieee68_ringdown_excitation.csv");
    assert_eq!(rows.len(), 4);

    // De-biased estimators: two channel sets x four SNRs x four methods x four modes; the
    // correlation estimator finds modes on the speeds alone.
    let (header, rows) = table(&dir, "ieee68_debiased_ambient.csv");
    assert_eq!(rows.len(), 2 * 4 * 4 * 4);
    let found: Vec<&str> = column(&header, &rows, "found");
    let methods: Vec<&str> = column(&header, &rows, "method");
    let channels: Vec<&str> = column(&header, &rows, "channels");
    let correlation_on_speeds = (0..rows.len())
        .filter(|&i| methods[i] == "correlation (online)" && channels[i] == "speeds" && found[i] == "1/1")
        .count();
    assert!(correlation_on_speeds >= 8, "found {correlation_on_speeds} of 16");

    // The PMU ring-down: five noise levels, nine recipes, four modes; the energy shares
    // name at least one mode the fits must find.
    let (header, rows) = table(&dir, "ieee68_pmu_ringdown.csv");
    assert_eq!(rows.len(), 5 * 9 * 4);
    assert!(column(&header, &rows, "found").contains(&"1/1"));
    let (header, rows) = table(&dir, "ieee68_pmu_ringdown_energy.csv");
    assert_eq!(rows.len(), 4);
    let shares: Vec<f64> = column(&header, &rows, "share of energy (%)").into_iter().map(number).collect();
    assert!(shares.iter().all(|s| (0.0..=100.0).contains(s)), "{shares:?}");
    assert!(column(&header, &rows, "must be found (share >= 1 %)").contains(&"yes"));

    // The recipe sensitivity: two noise levels, the two first recipes of the quick set, four
    // modes.
    let (header, rows) = table(&dir, "ieee68_pmu_sensitivity.csv");
    assert_eq!(rows.len(), 2 * 2 * 4);
    assert!(column(&header, &rows, "method").iter().all(|m| m.starts_with("delay:")));

    // The information floor: one row per inter-area mode, every fit oscillating.
    let (header, rows) = table(&dir, "ieee68_mode_floor.csv");
    assert_eq!(rows.len(), 4);
    assert!(column(&header, &rows, "fits").iter().all(|f| *f == "20/20"), "quick: 20 fits per mode");

    // The mode meter: two record lengths without forgetting and the end with two
    // forgetting factors, four modes each; an hour's ids; six detection recipes; two
    // ring-down recipes.
    let (header, rows) = table(&dir, "meter_coverage.csv");
    assert_eq!(rows.len(), 4 * 4);
    for coverage in column(&header, &rows, "zeta coverage (%)") {
        assert!((0.0..=100.0).contains(&number(coverage)), "{coverage}");
    }
    let (header, rows) = table(&dir, "meter_healthy.csv");
    assert_eq!(rows.len(), 4);
    assert_eq!(column(&header, &rows, "alarm events")[0], "0", "no alarm on the healthy record");
    let (_, rows) = table(&dir, "meter_detection.csv");
    assert_eq!(rows.len(), 6);
    let (_, rows) = table(&dir, "meter_ringdown.csv");
    assert_eq!(rows.len(), 2 * 4);

    // Cost: both systems at both data sizes.
    let (header, rows) = table(&dir, "cost.csv");
    assert_eq!(column(&header, &rows, "M (pairs)"), ["300", "1000", "300", "1000"]);
    assert!(column(&header, &rows, "batch refit (s)").into_iter().map(number).all(|t| t > 0.0));

    // Online equals batch for every online fit.
    let (header, rows) = table(&dir, "online_vs_batch.csv");
    assert!(rows.len() >= 6);
    let systems = column(&header, &rows, "system");
    for ((system, setting), d) in
        systems.iter().zip(column(&header, &rows, "setting")).zip(column(&header, &rows, "rel. difference"))
    {
        // IV on a ring-down with mu = 0 solves a nearly singular moment matrix (EXPERIMENTS.md
        // says why); its online and batch solves then agree only to the conditioning.
        let tolerance = if system.contains("ring-down, PMU") && setting.starts_with("IV") { 1e-5 } else { 1e-8 };
        assert!(number(d) < tolerance, "{system}, {setting}: {d}");
    }

    for svg in [
        "vdp_eigenvalues.svg",
        "vdp_prediction.svg",
        "ieee68_ringdown_eigenvalues.svg",
        "ieee68_ambient_eigenvalues.svg",
        "cost.svg",
    ] {
        let text = std::fs::read_to_string(dir.join(svg)).unwrap_or_else(|e| panic!("{svg}: {e}"));
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{svg}");
        assert!(text.contains("<text"), "{svg} has labels");
        assert!(text.contains("<circle") || text.contains("<polyline"), "{svg} has data");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_system_writes_only_its_tables() {
    let dir = scratch("henon");
    let out = binary().args(["experiment", "--quick", "--system", "henon", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    table(&dir, "henon.csv");
    assert!(!dir.join("vdp_prediction.csv").exists());
    assert!(!dir.join("cost.csv").exists(), "cost runs with vdp and vdp-ring only");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_options_fail_with_a_clear_message() {
    let out = binary().args(["experiment", "--system", "lorenz"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lorenz"));

    // An output "directory" that is a file fails at once, naming the path.
    let dir = scratch("file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = binary().args(["experiment", "--quick", "--out"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write") && stderr.contains("not-a-dir"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
