//! The deployment under deploy/: every file parses and has the structure its tool expects
//! (compose, Kubernetes, Prometheus, Grafana, systemd, Dockerfile); the flags and
//! `KOOPSTREAM_*` variables it gives are ones the binary accepts; every metric that the
//! dashboard and the alert rules name is one the server exports (checked against a live
//! /metrics after real traffic); and (ignored unless run with `--ignored`, as `.ci/run`
//! does) promtool checks the Prometheus configuration, the rules and their unit tests.

mod common;

#[path = "deploy_files/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use common::{TestServer, batch, van_der_pol, vdp_definition};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use futures_util::{SinkExt, StreamExt};
use koopstream::cmd::Cli;
use koopstream::config::ServiceConfig;
use parse_dockerfile::{
    Command as DockerCommand, CopyInstruction, HealthcheckArguments, Instruction, JsonOrStringArray, Source, Stage,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use yaml_rust2::{Yaml, YamlLoader};

const DATA_DIR: &str = "/var/lib/koopstream";

/// The alerts the issues ask for.
const ALERTS: [&str; 8] = [
    "KoopstreamDown",
    "KoopstreamIngestStalled",
    "KoopstreamRejectsRising",
    "KoopstreamUpdateLatencyHigh",
    "KoopstreamSnapshotTooOld",
    "KoopstreamModeDampingLow",
    "KoopstreamModeDampingCritical",
    "KoopstreamSourceDown",
];

// ------------------------------------------------------------------------------ helpers

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn yaml_documents(relative: &str) -> Vec<Yaml> {
    let docs =
        YamlLoader::load_from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"));
    assert!(!docs.is_empty(), "{relative} has no YAML document");
    docs
}

fn yaml(relative: &str) -> Yaml {
    let mut docs = yaml_documents(relative);
    assert_eq!(docs.len(), 1, "{relative} has one YAML document");
    docs.remove(0)
}

fn text<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str().unwrap_or_else(|| panic!("{what} is a string, got {y:?}"))
}

fn list<'a>(y: &'a Yaml, what: &str) -> &'a [Yaml] {
    y.as_vec().unwrap_or_else(|| panic!("{what} is a list, got {y:?}"))
}

fn strings(y: &Yaml, what: &str) -> Vec<String> {
    list(y, what).iter().map(|v| text(v, what).to_owned()).collect()
}

fn keys(y: &Yaml, what: &str) -> BTreeSet<String> {
    y.as_hash()
        .unwrap_or_else(|| panic!("{what} is a mapping, got {y:?}"))
        .keys()
        .map(|k| text(k, what).to_owned())
        .collect()
}

/// A scalar as the string a program would see (compose and Kubernetes values are strings).
fn scalar(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// Identifiers starting with `koopstream_` in `text` (not inside a longer identifier).
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("koopstream_") {
        let start = from + found;
        let mut end = start;
        while end < bytes.len() && ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !ident(bytes[start - 1]) {
            names.insert(text[start..end].to_owned());
        }
        from = end.max(start + 1);
    }
    names
}

/// Checks `KOOPSTREAM_*` variables against the real configuration: each becomes the key it
/// configures (`KOOPSTREAM_METRICS__PER_STREAM_LABELS` -> `metrics.per_stream_labels`),
/// read as figment reads the environment, and the result must load and validate.
fn config_from_env(source: &str, vars: &BTreeMap<String, String>) -> ServiceConfig {
    let mut toml = String::new();
    for (name, value) in vars {
        let Some(key) = name.strip_prefix("KOOPSTREAM_") else { continue };
        let key = key.to_ascii_lowercase().replace("__", ".");
        let literal =
            if value.parse::<i64>().is_ok() || value.parse::<f64>().is_ok() || value == "true" || value == "false" {
                value.clone()
            } else {
                format!("{value:?}")
            };
        toml.push_str(&format!("{key} = {literal}\n"));
    }
    config_from_toml(source, &toml)
}

fn config_from_toml(source: &str, toml: &str) -> ServiceConfig {
    let config: ServiceConfig = Figment::from(Serialized::defaults(ServiceConfig::default()))
        .merge(Toml::string(toml))
        .extract()
        .unwrap_or_else(|e| panic!("{source}: the configuration does not load: {e}\n{toml}"));
    config.validate().unwrap_or_else(|e| panic!("{source}: {e}"));
    config
}

/// Parses a `koopstream` command line with the binary's own parser.
fn parse_command_line(source: &str, args: &[String]) -> Cli {
    let argv = std::iter::once("koopstream".to_owned()).chain(args.iter().cloned());
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{source}: `koopstream {}` is refused:\n{e}", args.join(" ")))
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
}

// ------------------------------------------------------------------------------ Dockerfile

/// `KEY=value` pairs of a stage's ENV instructions (the `ENV KEY value` form too).
fn dockerfile_env(stage: &Stage<'_, '_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for instruction in stage.instructions {
        let Instruction::Env(e) = instruction else { continue };
        let arguments = e.arguments.value.as_ref();
        if arguments.contains('=') {
            for pair in arguments.split_whitespace() {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("ENV pair `{pair}`"));
                env.insert(k.to_owned(), v.trim_matches('"').to_owned());
            }
        } else if let Some((k, v)) = arguments.split_once(' ') {
            env.insert(k.to_owned(), v.trim().trim_matches('"').to_owned());
        }
    }
    env
}

fn command_words(command: &DockerCommand<'_>) -> Vec<String> {
    match command {
        DockerCommand::Exec(words) => words.value.iter().map(|w| w.value.to_string()).collect(),
        DockerCommand::Shell(line) => line.value.split_whitespace().map(str::to_owned).collect(),
        other => panic!("an unknown form of command: {other:?}"),
    }
}

fn copy_sources(copy: &CopyInstruction<'_>) -> Vec<String> {
    copy.src
        .iter()
        .filter_map(|s| match s {
            Source::Path(p) => Some(p.value.to_string()),
            _ => None,
        })
        .collect()
}

/// `cargo metadata --no-deps` of the workspace at `dir`: (package, target kind, target name)
/// of every library, binary, benchmark and build script.
fn workspace_targets(dir: &Path) -> BTreeSet<(String, String, String)> {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--offline", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo refuses the workspace at {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let mut targets = BTreeSet::new();
    for package in metadata["packages"].as_array().expect("packages") {
        for target in package["targets"].as_array().expect("targets") {
            for kind in target["kind"].as_array().expect("kinds") {
                let kind = kind.as_str().unwrap();
                if matches!(kind, "lib" | "bin" | "bench" | "custom-build") {
                    let name = target["name"].as_str().unwrap().to_owned();
                    targets.insert((package["name"].as_str().unwrap().to_owned(), kind.to_owned(), name));
                }
            }
        }
    }
    targets
}

/// Replays the builder's dependency layer in a scratch directory: the files it copies, then
/// its RUN command up to `cargo build`. Cargo must accept the result (a declared target
/// without its stub makes it refuse the manifest) and find the same libraries, binaries,
/// benchmarks and build scripts as in the repository (a build script without its stub would
/// leave the build-dependencies out of the cached layer).
fn check_dependency_layer(layer: &[Instruction<'_>]) {
    /// Removes the scratch directory however the check ends.
    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let scratch = Scratch(std::env::temp_dir().join(format!("koopstream-docker-layer-{}", std::process::id())));
    let scratch = &scratch.0;
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let mut stubbed = false;
    for instruction in layer {
        match instruction {
            Instruction::Copy(copy) => {
                let dest = copy.dest.value.as_ref();
                for source in copy_sources(copy) {
                    let target = if dest.ends_with('/') {
                        scratch.join(dest).join(Path::new(&source).file_name().unwrap())
                    } else {
                        scratch.join(dest)
                    };
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    std::fs::copy(repo().join(&source), &target)
                        .unwrap_or_else(|e| panic!("COPY {source} {dest}: {e}"));
                }
            }
            Instruction::Run(run) => {
                let DockerCommand::Shell(line) = &run.arguments else { continue };
                let Some((steps, _)) = line.value.split_once("cargo build") else { continue };
                let steps = steps.trim_end().trim_end_matches("&&").replace("\\\n", " ");
                let status = std::process::Command::new("sh")
                    .args(["-ec", &steps])
                    .current_dir(scratch)
                    .status()
                    .expect("sh runs");
                assert!(status.success(), "the dependency layer's stub steps fail: {steps}");
                stubbed = true;
            }
            _ => {}
        }
    }
    assert!(stubbed, "the dependency layer's RUN creates stubs and runs cargo build");
    let in_layer = workspace_targets(scratch);
    let in_repository = workspace_targets(&repo());
    let missing: Vec<_> = in_repository.difference(&in_layer).collect();
    assert!(missing.is_empty(), "targets the dependency layer has no stub for: {missing:?}");
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_volume_healthcheck_and_cached_dependencies() {
    let text = read("deploy/Dockerfile");
    let dockerfile = parse_dockerfile::parse(&text).unwrap_or_else(|e| panic!("deploy/Dockerfile does not parse: {e}"));
    let stages: Vec<Stage<'_, '_>> = dockerfile.stages().collect();
    assert!(stages.len() >= 2, "multi-stage: at least two FROM, got {}", stages.len());
    let (build_stage, runtime) = (&stages[0], stages.last().unwrap());
    assert!(
        build_stage.from.image.value.starts_with("rust:"),
        "the builder runs on the official Rust image: {}",
        build_stage.from.image.value
    );
    let builder = build_stage.from.as_.as_ref().map(|(_, name)| name.value.to_string()).expect("a named builder stage");
    let copies_binary = runtime.instructions.iter().any(|i| {
        matches!(i, Instruction::Copy(c) if c.options.iter().any(|f| f.name.value == "from"
            && f.value.as_ref().is_some_and(|v| v.value == builder.as_str())))
    });
    assert!(copies_binary, "the runtime stage copies the binary from `{builder}`");
    let runtime_image = &runtime.from.image.value;
    assert!(
        runtime_image.contains("slim") || runtime_image.contains("distroless"),
        "a small runtime image: {runtime_image}"
    );

    // Dependency caching: the manifests and the lock file are copied and built before the
    // sources, with a stub for every target cargo must find.
    let first_source_copy = build_stage
        .instructions
        .iter()
        .position(|i| matches!(i, Instruction::Copy(c) if copy_sources(c).iter().any(|s| s == "." || s == "src")))
        .expect("a COPY of the sources");
    let layer = &build_stage.instructions[..first_source_copy];
    let copied: BTreeSet<String> = layer
        .iter()
        .filter_map(|i| if let Instruction::Copy(c) = i { Some(copy_sources(c)) } else { None })
        .flatten()
        .collect();
    assert!(copied.contains("Cargo.lock"), "Cargo.lock is copied before the sources");
    check_dependency_layer(layer);
    assert!(text.matches("--locked").count() >= 2, "both builds use --locked");

    let user = runtime
        .instructions
        .iter()
        .rev()
        .filter_map(|i| if let Instruction::User(u) = i { Some(u.arguments.value.to_string()) } else { None })
        .next()
        .expect("a USER instruction in the runtime stage");
    let name = user.split(':').next().unwrap();
    assert!(name != "root" && name != "0" && !name.is_empty(), "the runtime user is not root: {user}");
    let volumes: Vec<String> = runtime
        .instructions
        .iter()
        .filter_map(|i| if let Instruction::Volume(v) = i { Some(v) } else { None })
        .flat_map(|v| match &v.arguments {
            JsonOrStringArray::Json(list) => list.value.iter().map(|s| s.value.to_string()).collect::<Vec<_>>(),
            JsonOrStringArray::String(list) => list.iter().map(|s| s.value.to_string()).collect(),
        })
        .collect();
    assert!(volumes.iter().any(|v| v == DATA_DIR), "VOLUME {DATA_DIR}: {volumes:?}");
    let exposes_8080 = runtime.instructions.iter().any(|i| {
        matches!(i, Instruction::Expose(e) if e.arguments.iter().any(|p| p.value == "8080" || p.value == "8080/tcp"))
    });
    assert!(exposes_8080, "EXPOSE 8080");
    let probe = runtime
        .instructions
        .iter()
        .rev()
        .filter_map(|i| match i {
            Instruction::Healthcheck(h) => match &h.arguments {
                HealthcheckArguments::Cmd { arguments, .. } => Some(command_words(arguments)),
                _ => None,
            },
            _ => None,
        })
        .next()
        .expect("a HEALTHCHECK with a command");
    assert!(probe.iter().any(|w| w.contains("/healthz")), "HEALTHCHECK probes /healthz: {probe:?}");
    // The probe's program must exist in the runtime image.
    let installs_probe = runtime.instructions.iter().any(|i| {
        matches!(i, Instruction::Run(r) if {
            let words = command_words(&r.arguments);
            words.iter().any(|w| w == "install") && words.contains(&probe[0])
        })
    });
    assert!(installs_probe, "the runtime stage installs `{}`, the health check's probe", probe[0]);

    let env = dockerfile_env(runtime);
    assert_eq!(
        env.get("KOOPSTREAM_LISTEN").map(String::as_str),
        Some("0.0.0.0:8080"),
        "the image listens on all interfaces"
    );
    assert_eq!(env.get("KOOPSTREAM_DATA_DIR").map(String::as_str), Some(DATA_DIR), "the store lives in the volume");
    let config = config_from_env("deploy/Dockerfile ENV", &env);
    assert_eq!(config.data_dir, Path::new(DATA_DIR));
    let cmd = runtime
        .instructions
        .iter()
        .rev()
        .filter_map(|i| if let Instruction::Cmd(c) = i { Some(command_words(&c.arguments)) } else { None })
        .next()
        .expect("a CMD");
    assert!(
        matches!(
            runtime.instructions.iter().rev().find(|i| matches!(i, Instruction::Cmd(_))),
            Some(Instruction::Cmd(c)) if matches!(c.arguments, DockerCommand::Exec(_))
        ),
        "CMD in exec form"
    );
    parse_command_line("deploy/Dockerfile CMD", &cmd);

    // Docker reads .dockerignore at the root of the context (the repository root here).
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(lines.iter().any(|l| l.contains("target")), ".dockerignore keeps target/ out of the context");
    if lines.contains(&"*") {
        for needed in ["Cargo.toml", "Cargo.lock", "src", "build.rs", "proto"] {
            if repo().join(needed).exists() {
                let allowed = format!("!{needed}");
                assert!(
                    lines.contains(&allowed.as_str()),
                    ".dockerignore is an allow-list that must let in `{needed}`"
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------ compose

fn compose_env(service: &Yaml, what: &str) -> BTreeMap<String, String> {
    let env = &service["environment"];
    match env {
        Yaml::Hash(h) => h.iter().map(|(k, v)| (text(k, what).to_owned(), scalar(v))).collect(),
        Yaml::Array(items) => items
            .iter()
            .map(|i| {
                let (k, v) = text(i, what).split_once('=').unwrap_or_else(|| panic!("{what}: `{i:?}`"));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Yaml::BadValue => BTreeMap::new(),
        other => panic!("{what}: environment is {other:?}"),
    }
}

/// (source, target) of a service's short-syntax volumes.
fn compose_volumes(service: &Yaml, what: &str) -> Vec<(String, String)> {
    if service["volumes"].is_badvalue() {
        return Vec::new();
    }
    list(&service["volumes"], what)
        .iter()
        .map(|v| {
            let v = text(v, what);
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap_or_else(|| panic!("{what}: volume `{v}`")).to_owned(),
            )
        })
        .collect()
}

#[test]
fn compose_runs_koopstream_prometheus_grafana_and_the_ieee68_feeder() {
    let compose = yaml("deploy/compose.yaml");
    let services = &compose["services"];
    let names = keys(services, "services");
    for service in ["koopstream", "prometheus", "grafana", "feeder"] {
        assert!(names.contains(service), "compose has the service `{service}`: {names:?}");
    }
    let declared_volumes = keys(&compose["volumes"], "volumes");
    let deploy = repo().join("deploy");
    for service in &names {
        for (source, target) in compose_volumes(&services[service.as_str()], service) {
            if source.starts_with('.') || source.starts_with('/') {
                assert!(
                    deploy.join(&source).exists(),
                    "{service}: bind mount source {source} exists (relative to deploy/)"
                );
            } else {
                assert!(
                    declared_volumes.contains(&source),
                    "{service}: the named volume {source} (at {target}) is declared"
                );
            }
        }
    }

    let koopstream = &services["koopstream"];
    assert_eq!(text(&koopstream["build"]["dockerfile"], "build.dockerfile"), "deploy/Dockerfile");
    let context = text(&koopstream["build"]["context"], "build.context");
    assert!(deploy.join(context).join("Cargo.lock").is_file(), "the build context {context} is the repository root");
    let volumes = compose_volumes(koopstream, "koopstream");
    assert!(
        volumes.iter().any(|(s, t)| t == DATA_DIR && declared_volumes.contains(s)),
        "the data directory is a named volume: {volumes:?}"
    );
    let env = compose_env(koopstream, "koopstream.environment");
    let config = config_from_env("deploy/compose.yaml koopstream.environment", &env);
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.data_dir, Path::new(DATA_DIR));
    assert!(config.metrics.per_stream_labels > 0, "the demo needs per-stream series (mode panels, damping alert)");
    assert!(list(&koopstream["ports"], "ports").iter().any(|p| scalar(p).ends_with(":8080")), "port 8080 is published");
    // Without tokens the server refuses 0.0.0.0 unless told; the demo then publishes the
    // port on the host's loopback only.
    if config.auth.tokens.is_empty() && config.auth.tokens_file.is_none() {
        assert!(config.auth.insecure_no_auth, "no tokens on 0.0.0.0 needs KOOPSTREAM_AUTH__INSECURE_NO_AUTH");
        let published = list(&koopstream["ports"], "ports").iter().map(scalar).collect::<Vec<_>>();
        assert!(published.iter().all(|p| p.starts_with("127.0.0.1:")), "published beyond loopback: {published:?}");
    }
    assert!(!koopstream["stop_grace_period"].is_badvalue(), "a stop grace period for the graceful shutdown");
    assert!(!koopstream["healthcheck"].is_badvalue(), "a health check (the feeder waits for it)");

    // The feeder: the same image, looping the IEEE 68-bus demo against the koopstream service.
    let feeder = &services["feeder"];
    assert_eq!(feeder["image"], koopstream["image"], "the feeder runs the koopstream image");
    assert_eq!(text(&feeder["depends_on"]["koopstream"]["condition"], "feeder.depends_on"), "service_healthy");
    let script: String = match &feeder["command"] {
        Yaml::Array(parts) => parts.iter().map(|p| format!("{} ", scalar(p))).collect(),
        other => scalar(other),
    };
    assert!(script.contains("while true"), "the feeder loops: {script}");
    let demo_line = script
        .lines()
        .find(|l| l.contains("koopstream demo"))
        .unwrap_or_else(|| panic!("the feeder runs `koopstream demo`: {script}"));
    let demo_command = demo_line.split("||").next().unwrap();
    let args: Vec<String> = demo_command
        .split_whitespace()
        .skip_while(|w| *w != "koopstream")
        .skip(1)
        .map(|w| if w.contains('$') { "1".to_owned() } else { w.trim_matches('"').to_owned() })
        .collect();
    parse_command_line("deploy/compose.yaml feeder", &args);
    assert_eq!(flag_value(&args, "--system"), Some("ieee68"));
    assert_eq!(flag_value(&args, "--server"), Some("http://koopstream:8080"));

    // Prometheus gets its folder (config + rules); Grafana its provisioning and dashboards.
    let prometheus = &services["prometheus"];
    let prom_mounts = compose_volumes(prometheus, "prometheus");
    let (_, config_dir) = prom_mounts
        .iter()
        .find(|(s, _)| s.trim_end_matches('/') == "./prometheus")
        .expect("deploy/prometheus is mounted");
    let command = strings(&prometheus["command"], "prometheus.command");
    assert!(
        command.contains(&format!("--config.file={config_dir}/prometheus.yml")),
        "prometheus reads the mounted configuration: {command:?}"
    );
    let grafana_mounts = compose_volumes(&services["grafana"], "grafana");
    assert!(
        grafana_mounts.iter().any(|(s, t)| s == "./grafana/provisioning" && t == "/etc/grafana/provisioning"),
        "provisioning mounted: {grafana_mounts:?}"
    );
    let provider = yaml("deploy/grafana/provisioning/dashboards/koopstream.yaml");
    let dashboards_path =
        text(&list(&provider["providers"], "providers")[0]["options"]["path"], "providers[0].options.path");
    assert!(
        grafana_mounts.iter().any(|(s, t)| s == "./grafana/dashboards" && t == dashboards_path),
        "the dashboards are mounted where the provider reads them ({dashboards_path})"
    );
}

// ------------------------------------------------------------------------------ Prometheus

#[test]
fn prometheus_scrapes_koopstream_and_every_alert_rule_is_complete_and_unit_tested() {
    let config = yaml("deploy/prometheus/prometheus.yml");
    for rule_file in strings(&config["rule_files"], "rule_files") {
        assert!(
            repo().join("deploy/prometheus").join(&rule_file).is_file(),
            "rule file {rule_file} exists next to prometheus.yml"
        );
    }
    assert!(strings(&config["rule_files"], "rule_files").contains(&"alerts.yml".to_owned()));
    let jobs = list(&config["scrape_configs"], "scrape_configs");
    let job = jobs
        .iter()
        .find(|j| j["job_name"].as_str() == Some("koopstream"))
        .expect("a scrape job named koopstream (KoopstreamDown selects it)");
    let targets: Vec<String> =
        list(&job["static_configs"], "static_configs").iter().flat_map(|c| strings(&c["targets"], "targets")).collect();
    assert!(targets.contains(&"koopstream:8080".to_owned()), "scrapes the compose service: {targets:?}");
    assert!(job["metrics_path"].is_badvalue() || job["metrics_path"].as_str() == Some("/metrics"));

    let rules = yaml("deploy/prometheus/alerts.yml");
    let mut alerts = BTreeMap::new();
    for group in list(&rules["groups"], "groups") {
        for rule in list(&group["rules"], "rules") {
            let name = text(&rule["alert"], "alert").to_owned();
            let what = format!("alert {name}");
            assert!(!text(&rule["expr"], &what).trim().is_empty());
            assert!(rule["for"].as_str().is_some_and(|f| f.ends_with('m') || f.ends_with('s')), "{what} has `for:`");
            let severity = text(&rule["labels"]["severity"], &what);
            assert!(["critical", "warning", "info"].contains(&severity), "{what}: severity {severity}");
            assert!(!text(&rule["annotations"]["summary"], &what).is_empty(), "{what} has a summary");
            assert!(
                text(&rule["annotations"]["description"], &what).contains("$value"),
                "{what}: the description gives the value"
            );
            assert!(
                alerts.insert(name.clone(), text(&rule["expr"], &what).to_owned()).is_none(),
                "{what} is defined once"
            );
        }
    }
    assert_eq!(
        alerts.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        ALERTS.into_iter().collect(),
        "the alert rules"
    );
    assert!(alerts["KoopstreamDown"].contains("up{") && alerts["KoopstreamDown"].contains("== 0"));
    assert!(
        alerts["KoopstreamUpdateLatencyHigh"].contains("histogram_quantile(0.99")
            && alerts["KoopstreamUpdateLatencyHigh"].contains("koopstream_update_seconds_bucket")
    );
    // Damping alerts follow the mode meter's alarms (its interval, hold and margin), not a
    // raw threshold on a noisy point estimate.
    for (alert, severity) in [("KoopstreamModeDampingLow", "warning"), ("KoopstreamModeDampingCritical", "critical")] {
        assert!(
            alerts[alert].contains("koopstream_alarms_active") && alerts[alert].contains(&format!("\"{severity}\"")),
            "{alert}: {}",
            alerts[alert]
        );
    }
    assert!(alerts["KoopstreamSnapshotTooOld"].contains("koopstream_snapshot_age_seconds"));
    assert!(alerts["KoopstreamSourceDown"].contains("koopstream_source_connected"));

    // Each alert has a promtool unit test that fires it, and one where it must not fire.
    let tests = yaml("deploy/prometheus/alerts_test.yml");
    assert!(strings(&tests["rule_files"], "rule_files").contains(&"alerts.yml".to_owned()));
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for test in list(&tests["tests"], "tests") {
        assert!(!list(&test["input_series"], "input_series").is_empty());
        for case in list(&test["alert_rule_test"], "alert_rule_test") {
            let name = text(&case["alertname"], "alertname").to_owned();
            assert!(alerts.contains_key(&name), "the test names a real alert: {name}");
            if list(&case["exp_alerts"], "exp_alerts").is_empty() {
                silent.insert(name);
            } else {
                for expected in list(&case["exp_alerts"], "exp_alerts") {
                    assert!(
                        !expected["exp_labels"]["severity"].is_badvalue()
                            && !expected["exp_annotations"]["description"].is_badvalue(),
                        "{name}: the test checks labels and annotations"
                    );
                }
                fires.insert(name);
            }
        }
    }
    for alert in ALERTS {
        assert!(fires.contains(alert), "{alert} has a unit test that fires it");
        assert!(silent.contains(alert), "{alert} has a unit test where it does not fire");
    }
}

// ------------------------------------------------------------------------------ Grafana

/// Every string under the keys that hold PromQL (targets' `expr`, variables' `query` and
/// `definition`) in the dashboard.
fn dashboard_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/dashboards/koopstream.json")).expect("the dashboard is valid JSON")
}

#[test]
fn grafana_is_provisioned_with_prometheus_and_a_complete_dashboard() {
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yaml");
    assert_eq!(datasources["apiVersion"].as_i64(), Some(1));
    let sources = list(&datasources["datasources"], "datasources");
    let prometheus =
        sources.iter().find(|d| d["type"].as_str() == Some("prometheus")).expect("a Prometheus data source");
    assert_eq!(text(&prometheus["url"], "url"), "http://prometheus:9090", "the compose Prometheus");
    let uid = text(&prometheus["uid"], "uid");

    let provider = yaml("deploy/grafana/provisioning/dashboards/koopstream.yaml");
    assert_eq!(provider["apiVersion"].as_i64(), Some(1));
    let providers = list(&provider["providers"], "providers");
    assert_eq!(text(&providers[0]["type"], "type"), "file");

    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "koopstream");
    assert!(dashboard["title"].is_string() && dashboard["schemaVersion"].is_u64());
    let variables = dashboard["templating"]["list"].as_array().expect("template variables");
    assert!(
        variables.iter().any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().expect("panel id")), "panel ids are unique");
        let grid = &panel["gridPos"];
        assert!(["h", "w", "x", "y"].iter().all(|k| grid[k].is_u64()), "gridPos of {}", panel["title"]);
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{} fits the 24-column grid",
            panel["title"]
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{} has targets", panel["title"]));
        assert!(
            !targets.is_empty() && targets.iter().all(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty())),
            "{} queries Prometheus",
            panel["title"]
        );
        let datasource = &panel["datasource"]["uid"];
        assert!(datasource == "${datasource}" || datasource == uid, "{}: data source {datasource}", panel["title"]);
    }

    // What the issue asks the dashboard to show.
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    let all = queries.join("\n");
    for needed in [
        "koopstream_samples_accepted_total",
        "by (transport)",
        "koopstream_samples_rejected_total",
        "by (reason",
        "histogram_quantile(0.5, sum by (le) (rate(koopstream_update_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(koopstream_update_seconds_bucket",
        "koopstream_ingest_queue_depth",
        "koopstream_residual_rms_bucket",
        "koopstream_stream_residual_rms",
        "koopstream_snapshot_age_seconds",
        "koopstream_eigen_seconds_bucket",
        "koopstream_streams",
        "koopstream_websocket_connections",
        "koopstream_mode_damping_ratio",
        "koopstream_mode_frequency_hz",
    ] {
        assert!(all.contains(needed), "the dashboard shows `{needed}`");
    }
}

// ------------------------------------------------------------------------------ Kubernetes

#[test]
fn kubernetes_statefulset_services_and_config_fit_together() {
    let dir = repo().join("deploy/k8s");
    let mut resources: Vec<(String, Yaml)> = Vec::new();
    let mut kustomization = None;
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    for file in files.iter().filter(|f| f.ends_with(".yaml") || f.ends_with(".yml")) {
        for doc in yaml_documents(&format!("deploy/k8s/{file}")) {
            if doc.is_null() {
                continue;
            }
            let kind = text(&doc["kind"], "kind").to_owned();
            assert!(doc["apiVersion"].as_str().is_some(), "{file}: {kind} has an apiVersion");
            if kind == "Kustomization" {
                kustomization = Some(doc);
            } else {
                assert!(doc["metadata"]["name"].as_str().is_some(), "{file}: {kind} has a name");
                resources.push((file.clone(), doc));
            }
        }
    }
    if let Some(k) = kustomization {
        let listed: BTreeSet<String> = strings(&k["resources"], "resources").into_iter().collect();
        let manifests: BTreeSet<String> = resources.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(listed, manifests, "kustomization.yaml lists every manifest");
    }
    let of_kind =
        |kind: &str| resources.iter().map(|(_, d)| d).filter(|d| d["kind"].as_str() == Some(kind)).collect::<Vec<_>>();
    let statefulsets = of_kind("StatefulSet");
    assert_eq!(statefulsets.len(), 1, "one StatefulSet");
    let sts = statefulsets[0];
    let spec = &sts["spec"];
    assert_eq!(spec["replicas"].as_i64(), Some(1), "one replica: the store is embedded");
    let template = &spec["template"];
    let pod_labels = &template["metadata"]["labels"];
    let selects_pod =
        |selector: &Yaml| keys(selector, "selector").iter().all(|k| pod_labels[k.as_str()] == selector[k.as_str()]);
    assert!(selects_pod(&spec["selector"]["matchLabels"]), "the StatefulSet's selector matches its pod labels");

    let services = of_kind("Service");
    let headless =
        services.iter().find(|s| s["spec"]["clusterIP"].as_str() == Some("None")).expect("a headless Service");
    assert_eq!(spec["serviceName"], headless["metadata"]["name"], "serviceName is the headless Service");
    assert!(services.iter().any(|s| s["spec"]["clusterIP"].as_str() != Some("None")), "a client-facing Service");
    for service in &services {
        assert!(selects_pod(&service["spec"]["selector"]), "Service {:?} selects the pod", service["metadata"]["name"]);
    }

    let pod = &template["spec"];
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().is_some_and(|s| s >= 30),
        "a grace period for the graceful shutdown"
    );
    // A Service named koopstream makes Kubernetes inject KOOPSTREAM_SERVICE_HOST etc., which
    // the configuration loader would refuse as unknown keys.
    assert_eq!(pod["enableServiceLinks"].as_bool(), Some(false), "service links are off (KOOPSTREAM_* variables)");
    let containers = list(&pod["containers"], "containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let non_root = |sc: &Yaml| sc["runAsNonRoot"].as_bool() == Some(true);
    assert!(non_root(&pod["securityContext"]) || non_root(&container["securityContext"]), "runAsNonRoot");
    assert!(pod["securityContext"]["runAsUser"].as_i64().is_none_or(|u| u != 0));
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"].as_bool(), Some(false));
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(!container["resources"][kind][resource].is_badvalue(), "resources.{kind}.{resource}");
        }
    }
    let ports = list(&container["ports"], "ports");
    let probe_port_ok = |port: &Yaml| ports.iter().any(|p| &p["name"] == port || &p["containerPort"] == port);
    assert!(ports.iter().any(|p| p["containerPort"].as_i64() == Some(8080)));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe} on {path}");
        assert!(probe_port_ok(&get["port"]), "{probe} targets a container port");
    }

    // Arguments: parsed by the binary's own parser; the config file is the ConfigMap's key,
    // mounted where --config points; the data directory is the volume claim's mount.
    let args = strings(&container["args"], "args");
    parse_command_line("deploy/k8s StatefulSet args", &args);
    assert_eq!(flag_value(&args, "--data-dir"), Some(DATA_DIR));
    let config_path = Path::new(flag_value(&args, "--config").expect("--config"));
    let mounts = list(&container["volumeMounts"], "volumeMounts");
    let mount_of = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(path))
            .map(|m| text(&m["name"], "volumeMounts.name").to_owned())
    };
    let claims = list(&spec["volumeClaimTemplates"], "volumeClaimTemplates");
    let data_volume = mount_of(DATA_DIR).expect("the data directory is mounted");
    let claim = claims
        .iter()
        .find(|c| c["metadata"]["name"].as_str() == Some(&data_volume))
        .expect("the data directory is a volumeClaimTemplate");
    assert!(!claim["spec"]["resources"]["requests"]["storage"].is_badvalue(), "the claim requests storage");
    let config_volume =
        mount_of(config_path.parent().unwrap().to_str().unwrap()).expect("--config's directory is mounted");
    let volume = list(&pod["volumes"], "volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some(&config_volume))
        .expect("the config volume");
    let configmap_name = text(&volume["configMap"]["name"], "configMap.name");
    let configmap = of_kind("ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"].as_str() == Some(configmap_name))
        .expect("the ConfigMap the pod mounts");
    let file_name = config_path.file_name().unwrap().to_str().unwrap();
    let toml = text(&configmap["data"][file_name], "the ConfigMap's config file");
    config_from_toml("deploy/k8s ConfigMap", toml);
    let env: BTreeMap<String, String> = if container["env"].is_badvalue() {
        BTreeMap::new()
    } else {
        list(&container["env"], "env")
            .iter()
            .map(|e| (text(&e["name"], "env.name").to_owned(), scalar(&e["value"])))
            .collect()
    };
    let config = config_from_env("deploy/k8s StatefulSet env", &env);
    // Listening on every interface: bearer tokens from a mounted Secret.
    let tokens = config.auth.tokens_file.expect("the StatefulSet configures a tokens file");
    let tokens_volume = mount_of(tokens.parent().unwrap().to_str().unwrap()).expect("the tokens file is mounted");
    let volume = list(&pod["volumes"], "volumes").iter().find(|v| v["name"].as_str() == Some(&tokens_volume)).unwrap();
    assert!(!volume["secret"]["secretName"].is_badvalue(), "the tokens come from a Secret");
}

// ------------------------------------------------------------------------------ systemd

#[test]
fn systemd_unit_is_hardened_and_runs_serve_with_the_state_directory() {
    let unit = read("deploy/systemd/koopstream.service");
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for line in unit.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';')) {
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_owned();
            sections.entry(section.clone()).or_default();
        } else {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("unit line `{line}`"));
            assert!(!section.is_empty(), "`{line}` is inside a section");
            sections.get_mut(&section).unwrap().push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    for name in ["Unit", "Service", "Install"] {
        assert!(sections.contains_key(name), "the unit has [{name}]");
    }
    let service = &sections["Service"];
    let get = |key: &str| service.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let one = |key: &str| *get(key).last().unwrap_or_else(|| panic!("[Service] sets {key}="));
    assert_eq!(one("User"), "koopstream");
    assert_eq!(one("StateDirectory"), "koopstream", "/var/lib/koopstream");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("KillSignal"), "SIGTERM");
    assert!(!one("TimeoutStopSec").is_empty());
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    for key in [
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "RestrictAddressFamilies",
        "SystemCallFilter",
        "CapabilityBoundingSet",
    ] {
        assert!(!get(key).is_empty(), "[Service] sets {key}=");
    }
    let exec: Vec<String> = one("ExecStart").split_whitespace().map(str::to_owned).collect();
    assert!(
        exec[0].starts_with('/') && exec[0].ends_with("/koopstream"),
        "ExecStart runs the koopstream binary by absolute path"
    );
    parse_command_line("deploy/systemd ExecStart", &exec[1..]);
    assert_eq!(flag_value(&exec, "--data-dir"), Some(DATA_DIR));
    assert!(flag_value(&exec, "--listen").is_some());
    let env: BTreeMap<String, String> = get("Environment")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let config = config_from_env("deploy/systemd Environment", &env);
    // Listening on every interface: bearer tokens handed over as a credential.
    let tokens = config.auth.tokens_file.expect("the unit configures a tokens file");
    assert!(tokens.starts_with("%d/"), "the tokens file is a systemd credential: {}", tokens.display());
    assert!(get("LoadCredential").iter().any(|c| c.starts_with("tokens.toml:")), "LoadCredential=tokens.toml:...");
    assert!(sections["Install"].iter().any(|(k, _)| k == "WantedBy"));
}

// ------------------------------------------------------------------------------ live metrics

/// Sample names present in an OpenMetrics exposition, and the sample names each declared
/// family may have (`# TYPE koopstream_samples_accepted counter` is sampled as `..._total`).
fn exposition_names(exposition: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut present = BTreeSet::new();
    let mut allowed = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("TYPE line `{line}`"));
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
                "summary" => &["", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            for suffix in suffixes {
                allowed.insert(format!("{family}{suffix}"), format!("{family} ({kind})"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            present.insert(line[..end].to_owned());
        }
    }
    (present, allowed)
}

/// Every name must be a sample name of a declared family that has samples.
fn check_names(
    source: &str,
    names: &BTreeSet<String>,
    present: &BTreeSet<String>,
    allowed: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for name in names {
        if allowed.contains_key(name) && present.contains(name) {
            continue;
        }
        problems.push(match allowed.get(name) {
            Some(family) => format!("{source}: {name} (of {family}) has no sample in /metrics"),
            None => format!("{source}: {name} is not a sample name the server exports"),
        });
    }
    problems
}

async fn scrape(server: &TestServer) -> String {
    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_name_is_exported() {
    const TS: f64 = 0.1;
    let mut config = ServiceConfig::default();
    config.metrics.per_stream_labels = 10;
    let server = TestServer::start_with(config).await;
    let mut definition = vdp_definition("deploy");
    definition["warmup"] = json!(30);
    definition["eigen_every"] = json!(20);
    server.create(definition).await;
    let samples = van_der_pol(300, TS);
    for (seq, chunk) in samples[..200].chunks(40).enumerate() {
        let ack = server.ingest("deploy", &batch(seq as u64 + 1, seq * 40, chunk, TS)).await;
        assert_eq!(ack["accepted"], 40);
    }
    // A retry (counted as duplicate) and an invalid batch, so that rejects have series.
    server.ingest("deploy", &batch(1, 0, &samples[..40], TS)).await;
    let bad = server.post_json("/v1/streams/deploy/samples", &json!({"seq": 99, "x": [[1.0]]})).await;
    assert_eq!(bad.status().as_u16(), 422);
    // One batch over the WebSocket.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("deploy")).await.unwrap();
    socket.send(Message::text(batch(6, 200, &samples[200..300], TS).to_string())).await.unwrap();
    let acked = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(frame) = message {
                let reply: Value = serde_json::from_str(&frame).unwrap();
                if reply["type"] == "ack" {
                    return reply["accepted"].as_u64();
                }
            }
        }
        None
    })
    .await
    .expect("a WebSocket acknowledgement in time");
    assert_eq!(acked, Some(100));
    // A stream whose C37.118.2 source is unreachable (a loopback port nothing listens on),
    // so that the source's connection gauge has a series.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut sourced = vdp_definition("deploy-source");
    sourced["source"] = json!({"c37118": {"address": closed.to_string(), "idcode": 7, "channels": [
        {"pmu": 1, "quantity": "analog:X1", "name": "x1"}, {"pmu": 1, "quantity": "analog:X2", "name": "x2"}]}});
    server.create(sourced).await;

    // The eigen-decomposition runs at the stream's cadence; wait for the mode gauges.
    let mut exposition = scrape(&server).await;
    for _ in 0..100 {
        if exposition.contains("koopstream_mode_damping_ratio{")
            && exposition.contains("koopstream_stream_residual_rms{")
            && exposition.contains("koopstream_source_connected{")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        exposition = scrape(&server).await;
    }
    let (present, allowed) = exposition_names(&exposition);
    assert!(present.contains("koopstream_mode_damping_ratio"), "per-stream mode gauges appeared:\n{exposition}");

    let mut problems = Vec::new();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard(), &mut queries);
    let dashboard_names: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    assert!(dashboard_names.len() >= 20, "the dashboard names the service's metrics: {dashboard_names:?}");
    problems.extend(check_names("deploy/grafana/dashboards/koopstream.json", &dashboard_names, &present, &allowed));

    let rules = yaml("deploy/prometheus/alerts.yml");
    let mut rule_names = BTreeSet::new();
    for group in list(&rules["groups"], "groups") {
        for rule in list(&group["rules"], "rules") {
            rule_names.extend(metric_names(text(&rule["expr"], "expr")));
            for (_, annotation) in rule["annotations"].as_hash().into_iter().flatten() {
                rule_names.extend(metric_names(text(annotation, "annotation")));
            }
        }
    }
    assert!(rule_names.len() >= 6, "the rules name the service's metrics: {rule_names:?}");
    problems.extend(check_names("deploy/prometheus/alerts.yml", &rule_names, &present, &allowed));
    assert!(
        problems.is_empty(),
        "metrics named by the deployment but not exported:\n{}\n\nexported:\n{exposition}",
        problems.join("\n")
    );

    socket.close(None).await.unwrap();
    server.stop().await;
}

// ------------------------------------------------------------------------------ promtool

/// deploy/check.sh (promtool check config, check rules, test rules; it installs promtool
/// when it can), and the dashboard's PromQL through promtool's parser. `.ci/run` runs it
/// with `--ignored`.
#[test]
#[ignore = "needs promtool (deploy/check.sh installs Debian's prometheus package)"]
fn promtool_checks_the_rules_the_alert_tests_and_the_dashboard_queries() {
    // Run from elsewhere: the script finds the repository itself.
    let output = std::process::Command::new("bash")
        .arg(repo().join("deploy/check.sh"))
        .current_dir(std::env::temp_dir())
        .output()
        .expect("bash runs deploy/check.sh");
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("{log}");
    assert!(output.status.success(), "deploy/check.sh failed:\n{log}");
    assert!(log.contains("all 3 promtool checks passed"), "{log}");

    // The dashboard's queries as recording rules, with Grafana's variables filled in.
    let mut queries = Vec::new();
    dashboard_queries(&dashboard(), &mut queries);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().filter(|q| !q.starts_with("label_values(") && *q != "prometheus").enumerate() {
        let expr = query.replace("$__rate_interval", "1m").replace("$instance", ".*").replace("$stream", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = std::env::temp_dir().join(format!("koopstream-deploy-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dashboard_rules.yml");
    std::fs::write(&path, rules).unwrap();
    let output = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool is installed by check.sh");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "the dashboard's PromQL does not parse:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
