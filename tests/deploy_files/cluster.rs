//! The cluster deployment under deploy/cluster/: the compose file's three NATS servers
//! route to each other with JetStream on a volume each, and its three koopstream nodes
//! join them with configurations the binary accepts; the Kubernetes manifests fit together
//! the same way (Services, routes, node ids from the pod name).

use super::*;

/// The nodes of the compose file and of the StatefulSets.
const NODES: usize = 3;

#[test]
fn cluster_compose_runs_three_routed_nats_servers_and_three_koopstream_nodes() {
    let source = "deploy/cluster/compose.yaml";
    let compose = yaml(source);
    let services = &compose["services"];
    let declared = keys(&compose["volumes"], "volumes");
    let deploy = repo().join("deploy/cluster");
    let mut node_ids = BTreeSet::new();
    let mut published = BTreeSet::new();
    for k in 1..=NODES {
        let name = format!("nats-{k}");
        let nats = &services[name.as_str()];
        let args: Vec<String> = list(&nats["command"], &name).iter().map(scalar).collect();
        assert!(args.iter().any(|a| a == "--jetstream"), "{name}: JetStream on: {args:?}");
        assert_eq!(flag_value(&args, "--cluster_name"), Some("koopstream"), "{name}");
        assert_eq!(flag_value(&args, "--cluster"), Some("nats://0.0.0.0:6222"), "{name}");
        let routes: BTreeSet<String> =
            flag_value(&args, "--routes").unwrap_or_default().split(',').map(str::to_owned).collect();
        let others: BTreeSet<String> =
            (1..=NODES).filter(|&j| j != k).map(|j| format!("nats://nats-{j}:6222")).collect();
        assert_eq!(routes, others, "{name} routes to the other two servers");
        let store = flag_value(&args, "--store_dir").unwrap_or_else(|| panic!("{name}: --store_dir"));
        assert!(
            compose_volumes(nats, &name).iter().any(|(s, t)| t == store && declared.contains(s)),
            "{name}: JetStream's store directory {store} is a named volume"
        );

        let name = format!("koopstream-{k}");
        let node = &services[name.as_str()];
        let context = text(&node["build"]["context"], "build.context");
        assert!(deploy.join(context).join("Cargo.lock").is_file(), "{name}: the build context is the repository root");
        assert_eq!(text(&node["build"]["dockerfile"], "build.dockerfile"), "deploy/Dockerfile");
        let env = compose_env(node, &name);
        let config = config_from_env(&format!("{source} {name}.environment"), &env);
        // Beside its own NATS server, which it waits for.
        assert_eq!(
            env.get("KOOPSTREAM_CLUSTER__URL").map(String::as_str),
            Some(format!("nats://nats-{k}:4222").as_str())
        );
        assert_eq!(
            text(&node["depends_on"][format!("nats-{k}").as_str()]["condition"], "depends_on"),
            "service_healthy"
        );
        assert_eq!(env.get("KOOPSTREAM_CLUSTER__REPLICAS").map(String::as_str), Some("3"), "{name}: three replicas");
        // Other nodes forward reads to the advertised address: this service, its port.
        assert_eq!(
            env.get("KOOPSTREAM_CLUSTER__ADVERTISE").map(String::as_str),
            Some(format!("http://{name}:{}", config.listen.port()).as_str())
        );
        node_ids.insert(env.get("KOOPSTREAM_CLUSTER__NODE_ID").cloned().unwrap_or_else(|| panic!("{name}: a node id")));
        assert!(
            compose_volumes(node, &name).iter().any(|(s, t)| t == DATA_DIR && declared.contains(s)),
            "{name}: its data directory is a volume of its own"
        );
        for port in list(&node["ports"], "ports").iter().map(scalar) {
            assert!(port.starts_with("127.0.0.1:"), "{name}: published beyond loopback without tokens: {port}");
            published.insert(port);
        }
        assert!(!node["stop_grace_period"].is_badvalue(), "{name}: time to hand its streams off");
    }
    assert_eq!(node_ids.len(), NODES, "every node has an id of its own: {node_ids:?}");
    assert_eq!(published.len(), NODES, "every node on a port of its own: {published:?}");
}

/// The `value` of an environment entry of a container, `$(VAR)` references resolved from
/// `vars` as Kubernetes resolves them (only variables defined earlier in the list).
fn container_env(container: &Yaml, vars: &BTreeMap<&str, &str>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for entry in list(&container["env"], "env") {
        let name = text(&entry["name"], "env.name").to_owned();
        let value = if entry["value"].is_badvalue() {
            let field = text(&entry["valueFrom"]["fieldRef"]["fieldPath"], "fieldRef");
            (*vars.get(field).unwrap_or_else(|| panic!("{name}: no test value for {field}"))).to_owned()
        } else {
            let mut value = scalar(&entry["value"]);
            for (defined, resolved) in &env {
                value = value.replace(&format!("$({defined})"), resolved);
            }
            assert!(!value.contains("$("), "{name} refers to a variable not defined before it: {value}");
            value
        };
        env.insert(name, value);
    }
    env
}

#[test]
fn cluster_kubernetes_manifests_fit_together() {
    let documents: Vec<Yaml> = ["deploy/cluster/k8s/nats.yaml", "deploy/cluster/k8s/koopstream.yaml"]
        .iter()
        .flat_map(|f| yaml_documents(f))
        .collect();
    let kustomization = yaml("deploy/cluster/k8s/kustomization.yaml");
    let resources: BTreeSet<String> = strings(&kustomization["resources"], "resources").into_iter().collect();
    assert_eq!(resources, BTreeSet::from(["nats.yaml".to_owned(), "koopstream.yaml".to_owned()]));
    let named = |kind: &str, name: &str| {
        documents
            .iter()
            .find(|d| text(&d["kind"], "kind") == kind && text(&d["metadata"]["name"], "name") == name)
            .unwrap_or_else(|| panic!("a {kind} named {name}"))
    };

    // NATS: three servers routed through the headless Service, clients through `nats`.
    let nats = named("StatefulSet", "nats");
    assert_eq!(nats["spec"]["replicas"].as_i64(), Some(NODES as i64));
    let headless = text(&nats["spec"]["serviceName"], "serviceName");
    assert_eq!(named("Service", headless)["spec"]["clusterIP"].as_str(), Some("None"));
    let conf = text(&named("ConfigMap", "nats-config")["data"]["nats.conf"], "nats.conf");
    assert!(conf.contains("jetstream"), "JetStream on: {conf}");
    for k in 0..NODES {
        let route = format!("nats://nats-{k}.{headless}:6222");
        assert!(conf.contains(&route), "the route to every server ({route}): {conf}");
    }
    let client = named("Service", "nats");
    assert!(list(&client["spec"]["ports"], "ports").iter().any(|p| p["port"].as_i64() == Some(4222)));

    // koopstream: three nodes, each named after its pod, joined to `nats`.
    let sts = named("StatefulSet", "koopstream-cluster");
    assert_eq!(sts["spec"]["replicas"].as_i64(), Some(NODES as i64));
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["enableServiceLinks"].as_bool(), Some(false), "no injected KOOPSTREAM_* service variables");
    let container = &list(&pod["containers"], "containers")[0];
    let env = container_env(container, &BTreeMap::from([("metadata.name", "koopstream-cluster-1")]));
    assert_eq!(env.get("KOOPSTREAM_CLUSTER__URL").map(String::as_str), Some("nats://nats:4222"));
    assert_eq!(env.get("KOOPSTREAM_CLUSTER__NODE_ID").map(String::as_str), Some("koopstream-cluster-1"));
    let node_headless = text(&sts["spec"]["serviceName"], "serviceName");
    assert_eq!(named("Service", node_headless)["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(
        env.get("KOOPSTREAM_CLUSTER__ADVERTISE").map(String::as_str),
        Some(format!("http://koopstream-cluster-1.{node_headless}:8080").as_str())
    );
    let args: Vec<String> = strings(&container["args"], "args");
    parse_command_line("deploy/cluster/k8s/koopstream.yaml", &args);
    // POD_NAME is only the pod's own reference, not a configuration key.
    let configured: BTreeMap<String, String> = env.into_iter().filter(|(k, _)| k.starts_with("KOOPSTREAM_")).collect();
    config_from_env("deploy/cluster/k8s/koopstream.yaml", &configured);
}
