//! `serve --cluster` end to end: a real `nats-server -js` on a loopback port and three
//! koopstream node processes (the built binary), each killed by its own PID. They need the
//! `nats-server` binary (src/cluster/tests/setup-nats.sh installs Debian's package), so they
//! are ignored by a plain `cargo test`: `cargo test --test cluster_nodes -- --ignored`. Only
//! the start-up refusals (bad settings, NATS unreachable) need no server and always run.
//!
//! The nodes run with a lease TTL of 3 s (the shortest allowed), so a stream whose owner is
//! killed moves within TTL plus `FAILOVER_SLACK`: the server's expiry timer, one ownership
//! tick (at most 1 s), restoring the snapshot and replaying the log after it.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{NodeId, rendezvous};
use serde_json::{Value, json};

use common::child::LoggedProcess;
use common::{TestServer, batch, van_der_pol, vdp_definition};

const LEASE_TTL_S: u64 = 3;
/// What a failover may take beyond the lease TTL (see the module's documentation).
const FAILOVER_SLACK: Duration = Duration::from_secs(12);
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const TS: f64 = 0.1;
const ROWS: usize = 20;

/// Polls `check` every 100 ms until it yields a value; panics naming `what` after `limit`.
async fn eventually<T>(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `nats-server -js` with its own store directory; killed by its PID on drop.
struct Nats {
    child: Child,
    port: u16,
    store_dir: PathBuf,
}

impl Nats {
    fn start() -> Nats {
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let store_dir = std::env::temp_dir().join(format!(
            "koopstream-cluster-nodes-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&store_dir);
        std::fs::create_dir_all(&store_dir).unwrap();
        let port = free_port();
        let child = Self::spawn(port, &store_dir);
        Nats { child, port, store_dir }
    }

    /// Starts the server on `port` with `store_dir` and waits until it listens.
    fn spawn(port: u16, store_dir: &Path) -> Child {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (run src/cluster/tests/setup-nats.sh)");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// SIGKILL, by PID: the server stops without a goodbye; its store stays.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the killed server again on its port with its store.
    fn restart(&mut self) {
        self.child = Self::spawn(self.port, &self.store_dir);
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}

/// One koopstream node process; SIGKILLed by its PID on drop (or by `kill`).
struct Node {
    id: String,
    process: LoggedProcess,
}

impl Node {
    fn start(nats: &Nats, id: &str, snapshot_every_batches: u64) -> Node {
        Self::start_with(nats, id, snapshot_every_batches, &[])
    }

    /// As `start`, with more settings in the environment.
    fn start_with(nats: &Nats, id: &str, snapshot_every_batches: u64, settings: &[(&str, String)]) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_koopstream"));
        for (key, _) in std::env::vars() {
            if key.starts_with("KOOPSTREAM_") {
                command.env_remove(key);
            }
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--cluster", &nats.url()])
            .args(["--node-id", id])
            .env("KOOPSTREAM_CLUSTER__LEASE_TTL_S", LEASE_TTL_S.to_string())
            .env("KOOPSTREAM_CLUSTER__SNAPSHOT_EVERY_BATCHES", snapshot_every_batches.to_string())
            .env("KOOPSTREAM_CLUSTER__COMPACT_EVERY_S", "1")
            .env("KOOPSTREAM_LOG_LEVEL", "info")
            .envs(settings.iter().map(|(key, value)| (*key, value.as_str())))
            .stdout(Stdio::null());
        match LoggedProcess::spawn(&mut command) {
            Ok(process) => Node { id: id.to_owned(), process },
            Err(log) => panic!("node {id} did not start:\n{log}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.base)
    }

    /// SIGTERM, by PID: the node hands its streams off and exits.
    fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.process.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.process.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "node {} did not stop within 30 s of SIGTERM", self.id);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, by PID.
    fn kill(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
    }

    fn logged(&self, text: &str) -> Vec<String> {
        self.process.logged(text)
    }

    fn ws_url(&self, stream: &str) -> String {
        format!("{}/v1/streams/{stream}/ws", self.process.base.replacen("http", "ws", 1))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// The model of a single node (no cluster) fed `batches` over HTTP: what a clustered
/// stream's model must equal, bit for bit.
async fn single_node_model(stream: &str, batches: &[Value]) -> Value {
    let single = TestServer::start().await;
    single.create(vdp_definition(stream)).await;
    for body in batches {
        single.ingest(stream, body).await;
    }
    let model = common::model(&single, stream).await;
    single.stop().await;
    model
}

fn three_nodes(nats: &Nats, snapshot_every_batches: u64) -> Vec<Node> {
    NODES.iter().map(|id| Node::start(nats, id, snapshot_every_batches)).collect()
}

/// The node rendezvous hashing prefers for a stream among the three.
fn preferred(stream: &str) -> &'static str {
    preferred_among(stream, &NODES)
}

/// The node rendezvous hashing prefers for a stream among `live`.
fn preferred_among(stream: &str, live: &[&'static str]) -> &'static str {
    let nodes: Vec<NodeId> = live.iter().map(|id| NodeId::new(*id).unwrap()).collect();
    let owner = rendezvous::owner(stream, &nodes).unwrap().as_str().to_owned();
    live.iter().copied().find(|id| *id == owner).unwrap()
}

/// Waits until every stream is served, from every node, by `owners[i]` with `samples`
/// applied.
async fn served_by_owners(http: &reqwest::Client, nodes: &[Node], streams: &[String], owners: &[&str], samples: usize) {
    for (stream, owner) in streams.iter().zip(owners) {
        for node in nodes {
            eventually(Duration::from_secs(20), "each stream is served by its preferred owner, applied", async || {
                let (served_by, status) = status(http, node, stream).await?;
                (served_by == *owner && status["samples_accepted"] == samples).then_some(())
            })
            .await;
        }
    }
}

/// Sends one batch of each stream through the nodes in turn; each must be acknowledged.
async fn ingest_each(http: &reqwest::Client, nodes: &[Node], streams: &[String], seq: u64) {
    let rows = van_der_pol(ROWS, TS);
    for (i, stream) in streams.iter().enumerate() {
        let gateway = &nodes[i % nodes.len()];
        let body = batch(seq, (seq as usize - 1) * ROWS, &rows, TS);
        let ack = eventually(Duration::from_secs(15), "the stream is defined on the gateway", async || {
            let url = gateway.url(&format!("/v1/streams/{stream}/samples"));
            let response = http.post(url).json(&body).send().await.ok()?;
            (response.status() == 200).then_some(response)
        })
        .await;
        let ack: Value = ack.json().await.unwrap();
        assert_eq!(ack["accepted"], ROWS, "{ack}");
    }
}

async fn create(http: &reqwest::Client, node: &Node, definition: &Value) -> u16 {
    http.post(node.url("/v1/streams")).json(definition).send().await.unwrap().status().as_u16()
}

async fn listed(http: &reqwest::Client, node: &Node) -> Vec<String> {
    let Ok(response) = http.get(node.url("/v1/streams")).send().await else { return Vec::new() };
    let body: Value = response.json().await.unwrap_or_default();
    let items = body.as_array().cloned().unwrap_or_default();
    items.iter().filter_map(|s| s["definition"]["id"].as_str().map(str::to_owned)).collect()
}

/// A stream's status (`GET /v1/streams/{id}`'s `status`) as some node answers it, with the
/// node that served it.
async fn status(http: &reqwest::Client, node: &Node, stream: &str) -> Option<(String, Value)> {
    status_from(http, node, stream).await.map(|(served_by, _, status)| (served_by, status))
}

/// As `status`, with `koopstream-served-from` (`owner`: the live state; `copy`: a node's
/// idle copy, while no node holds the lease).
async fn status_from(http: &reqwest::Client, node: &Node, stream: &str) -> Option<(String, String, Value)> {
    let response = http.get(node.url(&format!("/v1/streams/{stream}"))).send().await.ok()?;
    if response.status() != 200 {
        return None;
    }
    let served_by = response.headers().get("koopstream-served-by")?.to_str().ok()?.to_owned();
    let served_from = response.headers().get("koopstream-served-from")?.to_str().ok()?.to_owned();
    let view: Value = response.json().await.ok()?;
    Some((served_by, served_from, view["status"].clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn streams_created_on_one_node_are_listed_on_all() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats, 256);
    let http = http();
    for id in ["shared-a", "shared-b", "shared.c"] {
        assert_eq!(create(&http, &nodes[0], &vdp_definition(id)).await, 201);
    }
    for node in &nodes[1..] {
        eventually(Duration::from_secs(15), "the streams are listed on every node", async || {
            let ids = listed(&http, node).await;
            ["shared-a", "shared-b", "shared.c"].iter().all(|id| ids.iter().any(|i| i == id)).then_some(())
        })
        .await;
        let response = http.get(node.url("/v1/streams/shared.c")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", node.id);
    }
    // The same id again, anywhere: the same definition is the existing stream, a
    // different one the conflict of a single node.
    assert_eq!(create(&http, &nodes[2], &vdp_definition("shared-a")).await, 200);
    let mut different = vdp_definition("shared-a");
    different["warmup"] = json!(150);
    let response = http.post(nodes[1].url("/v1/streams")).json(&different).send().await.unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // A deletion on one node removes the stream from all.
    let deleted = http.delete(nodes[1].url("/v1/streams/shared-b")).send().await.unwrap().status().as_u16();
    assert_eq!(deleted, 204);
    for node in &nodes {
        eventually(Duration::from_secs(15), "the deletion reaches every node", async || {
            (!listed(&http, node).await.iter().any(|id| id == "shared-b")).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn nine_streams_spread_over_three_owners_and_ingest_anywhere() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats, 256);
    let http = http();
    let streams: Vec<String> = (0..9).map(|i| format!("spread-{i}")).collect();
    let expected: Vec<&str> = streams.iter().map(|s| preferred(s)).collect();
    for node in NODES {
        assert!(expected.contains(&node), "the test's ids give {node} no stream: {expected:?}");
    }
    for stream in &streams {
        assert_eq!(create(&http, &nodes[0], &vdp_definition(stream)).await, 201);
    }
    ingest_each(&http, &nodes, &streams, 1).await;
    served_by_owners(&http, &nodes, &streams, &expected, ROWS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_joining_node_takes_only_its_share_with_its_state() {
    let nats = Nats::start();
    let mut nodes: Vec<Node> = NODES[..2].iter().map(|id| Node::start(&nats, id, 256)).collect();
    let http = http();
    let streams: Vec<String> = (0..9).map(|i| format!("join-{i}")).collect();
    let before: Vec<&str> = streams.iter().map(|s| preferred_among(s, &NODES[..2])).collect();
    let after: Vec<&str> = streams.iter().map(|s| preferred(s)).collect();
    let moving = after.iter().filter(|owner| **owner == "n3").count();
    assert!(moving > 0, "the test's ids give the joining node nothing: {after:?}");
    for stream in &streams {
        assert_eq!(create(&http, &nodes[0], &vdp_definition(stream)).await, 201);
    }
    ingest_each(&http, &nodes, &streams, 1).await;
    served_by_owners(&http, &nodes, &streams, &before, ROWS).await;
    let hand_offs =
        |nodes: &[Node]| -> usize { nodes[..2].iter().map(|node| node.logged("stream handed off").len()).sum() };
    let handed_off_before = hand_offs(&nodes);
    nodes.push(Node::start(&nats, "n3", 256));
    ingest_each(&http, &nodes, &streams, 2).await;
    served_by_owners(&http, &nodes, &streams, &after, 2 * ROWS).await;
    // Only the joining node's share moved: one hand-off per stream it now owns.
    assert_eq!(hand_offs(&nodes) - handed_off_before, moving, "hand-offs of the old nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_killed_owner_loses_no_acknowledged_batch_and_the_model_is_the_single_node_model() {
    failover(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_client_of_the_killed_owner_retries_elsewhere_and_the_model_is_the_single_node_model() {
    failover(true).await;
}

/// Ingests 60 batches, SIGKILLs the stream's owner at the 26th, and checks that every
/// acknowledged batch is applied by the next owner, from its predecessor's snapshot, with
/// the single node's model. `through_owner`: the client sends to the owner itself, and
/// after the kill (connection refused) sends the same batch to another node.
async fn failover(through_owner: bool) {
    const BATCHES: usize = 60;
    const KILL_AT: usize = 25;
    let nats = Nats::start();
    let mut nodes = three_nodes(&nats, 10);
    let http = http();
    let stream = "failover";
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let gateway = (owner + 1) % 3;
    let survivor = (owner + 2) % 3;
    assert_eq!(create(&http, &nodes[gateway], &vdp_definition(stream)).await, 201);
    let batches = stream_batches(0, BATCHES);
    // The owner must have taken the stream before it is killed, or there is nothing to move.
    eventually(Duration::from_secs(20), "the preferred owner serves the stream", async || {
        let (served_by, _) = status(&http, &nodes[gateway], stream).await?;
        (served_by == nodes[owner].id).then_some(())
    })
    .await;
    let first_choice = if through_owner { owner } else { gateway };
    let mut log_sequences = Vec::with_capacity(BATCHES);
    let killed_at = {
        let mut killed_at = None;
        for (b, body) in batches.iter().enumerate() {
            if b == KILL_AT {
                nodes[owner].kill();
                killed_at = Some(Instant::now());
            }
            let mut ack = None;
            for node in [first_choice, gateway] {
                let url = nodes[node].url(&format!("/v1/streams/{stream}/samples"));
                if let Ok(response) = http.post(url).json(body).send().await
                    && response.status() == 200
                {
                    ack = Some(response.json::<Value>().await.unwrap());
                    break;
                }
            }
            let ack = ack.unwrap_or_else(|| panic!("batch {b} was acknowledged by no node"));
            log_sequences.push(ack["version"].clone());
        }
        killed_at.unwrap()
    };
    // A client that missed the acknowledgement of a batch sent before the kill sends it
    // again to another node: the log holds it once (the acknowledgement names the same
    // log sequence), and it is applied once.
    let retried = KILL_AT - 1;
    let url = nodes[survivor].url(&format!("/v1/streams/{stream}/samples"));
    let again: Value = http.post(url).json(&batches[retried]).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["version"], log_sequences[retried], "{again}");
    let dead = nodes[owner].id.clone();
    let mut copies = 0;
    let (served_by, final_status) = eventually(
        Duration::from_secs(LEASE_TTL_S) + FAILOVER_SLACK,
        "another node owns the stream and has applied every acknowledged batch",
        async || {
            let (served_by, from, status) = status_from(&http, &nodes[survivor], stream).await?;
            // While no node holds the lease, the survivor answers from its idle copy, and
            // says so: a client can tell an empty copy from the stream's state.
            if from == "copy" {
                assert_eq!((served_by.as_str(), &status["batches"]), (nodes[survivor].id.as_str(), &json!(0)));
                copies += 1;
                return None;
            }
            assert_eq!(from, "owner", "{served_by}: {status}");
            (served_by != dead && status["batches"] == BATCHES).then_some((served_by, status))
        },
    )
    .await;
    eprintln!("answers from the survivor's idle copy during the failover: {copies}");
    eprintln!("the stream moved to {served_by} {:?} after the kill", killed_at.elapsed());
    assert_eq!(final_status["samples_accepted"], BATCHES * ROWS);
    // The new owner started from a snapshot its predecessor wrote, not from the log's start.
    let new_owner = nodes.iter().find(|n| n.id == served_by).unwrap();
    let took_over = new_owner.logged("owning the stream");
    assert!(
        took_over.iter().any(|line| !line.contains("\"from_sequence\":0")),
        "the new owner replayed the whole log: {took_over:?}"
    );
    let clustered: Value = model_at(&http, &nodes[survivor], stream).await;

    let alone = single_node_model(stream, &batches).await;
    // Not a comparison of two empty answers: a model of every pair of the samples.
    assert!(clustered["pairs"].as_u64().is_some_and(|pairs| pairs > 1000), "{clustered}");
    assert!(clustered["a"]["data"].as_array().is_some_and(|data| !data.is_empty()), "{clustered}");
    assert_eq!(clustered, alone, "the model after a failover differs from the single node's");
    // The nodes compact the log every second behind the snapshots (every 10 batches): it
    // keeps the batches after the snapshot the current one replaced, not all of them.
    let held = eventually(Duration::from_secs(10), "the log is compacted", async || {
        let held = logged_batches(&nats, stream).await;
        (1..=20).contains(&held).then_some(held)
    })
    .await;
    eprintln!("the log holds {held} of {BATCHES} batches");
    // One node compacts: the survivors' rendezvous choice for the compactor's key (which
    // takes over if the killed node was the compactor); the other's gauge stays at 0.
    let survivors: Vec<&'static str> = NODES.iter().copied().filter(|id| *id != nodes[owner].id.as_str()).collect();
    let compactor = preferred_among(rendezvous::COMPACTOR_KEY, &survivors);
    for node in nodes.iter().filter(|node| node.id != dead) {
        let through = metric(&http, node, "koopstream_log_compacted_through").await.unwrap();
        if node.id == compactor {
            assert!(through > 0.0, "the compactor {compactor} has compacted nothing");
        } else {
            assert_eq!(through, 0.0, "{} compacts beside {compactor}", node.id);
        }
    }
}

/// How many batches the cluster's log holds for a stream (read by a client of its own,
/// which joins no membership).
async fn logged_batches(nats: &Nats, stream: &str) -> u64 {
    let config = cluster::ClusterConfig::new(nats.url(), "probe").unwrap();
    let probe = cluster::Cluster::connect(config).await.unwrap();
    probe.log().held(stream).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn without_nats_ingest_and_delete_get_503_and_change_nothing() {
    let mut nats = Nats::start();
    let node = Node::start(&nats, "alone", 256);
    let http = http();
    assert_eq!(create(&http, &node, &vdp_definition("orphan")).await, 201);
    let rows = van_der_pol(ROWS, TS);
    let url = node.url("/v1/streams/orphan/samples");
    let first = http.post(&url).json(&batch(1, 0, &rows, TS)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    nats.kill();
    let response = http.post(&url).json(&batch(2, ROWS, &rows, TS)).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["retry-after"], "1");
    // A delete that cannot reach the cluster changes nothing either.
    let deleted = http.delete(node.url("/v1/streams/orphan")).send().await.unwrap();
    assert_eq!(deleted.status(), 503);
    assert!(listed(&http, &node).await.contains(&"orphan".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_stopping_owner_hands_off_with_a_final_snapshot_before_its_lease_expires() {
    let nats = Nats::start();
    let mut nodes = three_nodes(&nats, 1000);
    let http = http();
    let stream = "graceful";
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let other = (owner + 1) % 3;
    assert_eq!(create(&http, &nodes[other], &vdp_definition(stream)).await, 201);
    for body in stream_batches(0, 30).iter() {
        let url = nodes[other].url(&format!("/v1/streams/{stream}/samples"));
        assert_eq!(http.post(url).json(body).send().await.unwrap().status(), 200);
    }
    let owner_id = nodes[owner].id.clone();
    eventually(Duration::from_secs(20), "the owner has applied every batch", async || {
        let (served_by, status) = status(&http, &nodes[other], stream).await?;
        (served_by == owner_id && status["batches"] == 30).then_some(())
    })
    .await;
    let stopped = Instant::now();
    nodes[owner].terminate();
    let served_by = eventually(Duration::from_secs(LEASE_TTL_S), "another node owns the stream", async || {
        let (served_by, status) = status(&http, &nodes[other], stream).await?;
        (served_by != owner_id && status["batches"] == 30).then_some(served_by)
    })
    .await;
    eprintln!("the stream moved to {served_by} {:?} after SIGTERM", stopped.elapsed());
    // The final snapshot covered every batch (none was due before: one every 1000), so the
    // new owner replayed nothing: it started after the last sequence.
    let new_owner = nodes.iter().find(|n| n.id == served_by).unwrap();
    let took_over = new_owner.logged("owning the stream");
    assert!(took_over.iter().any(|line| line.contains("\"from_sequence\":30")), "{took_over:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_reset_on_any_node_is_applied_in_order_with_the_batches() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats, 256);
    let http = http();
    let stream = "resetting";
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let gateway = &nodes[(owner + 1) % 3];
    assert_eq!(create(&http, gateway, &vdp_definition(stream)).await, 201);
    let batches = stream_batches(0, 20);
    let samples_url = gateway.url(&format!("/v1/streams/{stream}/samples"));
    for body in &batches[..10] {
        assert_eq!(http.post(&samples_url).json(body).send().await.unwrap().status(), 200);
    }
    let reset = http.post(gateway.url(&format!("/v1/streams/{stream}/reset"))).send().await.unwrap();
    assert_eq!(reset.status(), 200, "{}", reset.text().await.unwrap_or_default());
    for body in &batches[10..] {
        assert_eq!(http.post(&samples_url).json(body).send().await.unwrap().status(), 200);
    }
    let owner_id = nodes[owner].id.clone();
    eventually(Duration::from_secs(20), "the owner has applied every batch", async || {
        let (served_by, status) = status(&http, gateway, stream).await?;
        (served_by == owner_id && status["last_seq"] == 20).then_some(())
    })
    .await;
    let clustered: Value = model_at(&http, gateway, stream).await;

    let single = TestServer::start().await;
    single.create(vdp_definition(stream)).await;
    for body in &batches[..10] {
        single.ingest(stream, body).await;
    }
    let reset = single.http.post(single.url(&format!("/v1/streams/{stream}/reset"))).send().await.unwrap();
    assert_eq!(reset.status(), 200);
    for body in &batches[10..] {
        single.ingest(stream, body).await;
    }
    let alone = common::model(&single, stream).await;
    single.stop().await;
    assert!(clustered["pairs"].as_u64().is_some_and(|pairs| pairs > 100), "{clustered}");
    assert_eq!(clustered, alone, "the model after a reset differs from the single node's");
}

/// Runs `serve` with `args` and expects it to refuse to start, saying `expected`.
fn refused(args: &[&str], expected: &str) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koopstream"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KOOPSTREAM_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {args:?} did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "serve {args:?} started");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(said.contains(expected), "serve {args:?} said: {said}");
}

/// Needs no NATS server: these nodes must not start.
#[test]
fn bad_cluster_settings_and_an_unreachable_nats_stop_the_node_at_start() {
    refused(&["--cluster", "http://127.0.0.1:4222"], "key `cluster`: the NATS URL `http://127.0.0.1:4222` must be");
    refused(&["--cluster", "nats://127.0.0.1:4222", "--node-id", "no spaces"], "key `cluster`: node id `no spaces`");
    let file = std::env::temp_dir().join(format!("koopstream-cluster-ttl-{}.toml", std::process::id()));
    std::fs::write(&file, "[cluster]\nurl = \"nats://127.0.0.1:4222\"\nlease_ttl_s = 1\n").unwrap();
    refused(&["--config", file.to_str().unwrap()], "key `cluster`: the lease TTL must be");
    let _ = std::fs::remove_file(&file);
    // Nothing listens on a port just freed: the node does not start alone.
    let port = free_port();
    refused(&["--cluster", &format!("nats://127.0.0.1:{port}")], "cannot join the cluster");
    // Serving HTTPS without the CA to verify its peers with, it could forward no read.
    let dir = std::env::temp_dir().join(format!("koopstream-cluster-tls-{}", std::process::id()));
    let files = TlsFiles::write(&dir);
    let config = dir.join("node.toml");
    let tls = format!("[tls]\ncert = {:?}\nkey = {:?}\n", files.node_cert, files.node_key);
    std::fs::write(&config, format!("{tls}[cluster]\nurl = \"nats://127.0.0.1:{port}\"\n")).unwrap();
    refused(&["--config", config.to_str().unwrap()], "key `cluster.peer_ca`: this node serves HTTPS");
    let half = format!(
        "{tls}[cluster]\nurl = \"nats://127.0.0.1:{port}\"\npeer_ca = {:?}\npeer_cert = {:?}\n",
        files.ca, files.node_cert
    );
    std::fs::write(&config, half).unwrap();
    refused(&["--config", config.to_str().unwrap()], "key `cluster.peer_key`: a certificate needs its private key");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Certificate files for nodes serving HTTPS: one CA, a node certificate that serves as
/// server and (to peers) as client, and a gateway's client certificate.
struct TlsFiles {
    ca: PathBuf,
    node_cert: PathBuf,
    node_key: PathBuf,
    gateway_cert: PathBuf,
    gateway_key: PathBuf,
}

impl TlsFiles {
    fn write(dir: &Path) -> TlsFiles {
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        std::fs::create_dir_all(dir).unwrap();
        let ca = common::certs::Authority::new("koopstream cluster CA");
        let node = ca.issue_for(&["localhost", "127.0.0.1"], vec![ServerAuth, ClientAuth]);
        let gateway = ca.issue(&["gateway-1"], ClientAuth);
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            node_cert: dir.join("node.pem"),
            node_key: dir.join("node-key.pem"),
            gateway_cert: dir.join("gateway.pem"),
            gateway_key: dir.join("gateway-key.pem"),
        };
        for (path, text) in [
            (&files.ca, ca.pem()),
            (&files.node_cert, node.pem),
            (&files.node_key, node.key_pem),
            (&files.gateway_cert, gateway.pem),
            (&files.gateway_key, gateway.key_pem),
        ] {
            std::fs::write(path, text).unwrap();
        }
        files
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn websocket_ingest_with_batches_in_flight_is_logged_in_order() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const BATCHES: usize = 80;
    const WINDOW: usize = 16;
    let nats = Nats::start();
    let nodes = three_nodes(&nats, 25);
    let http = http();
    let stream = "websocket";
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let gateway = &nodes[(owner + 1) % 3];
    assert_eq!(create(&http, gateway, &vdp_definition(stream)).await, 201);
    let batches = stream_batches(0, BATCHES);
    let url = gateway.ws_url(stream);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut sent, mut acked, mut sequences) = (0, 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked < BATCHES {
        assert!(Instant::now() < deadline, "{acked} of {BATCHES} acknowledged within 30 s");
        while sent < BATCHES && sent - acked < WINDOW {
            socket.send(Message::text(batches[sent].to_string())).await.unwrap();
            sent += 1;
        }
        let Some(Ok(Message::Text(text))) = socket.next().await else { continue };
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_ne!(reply["type"], "error", "{reply}");
        if reply["type"] == "ack" {
            assert_eq!(reply["seq"], batches[acked]["seq"], "acknowledgements come in order");
            sequences.push(reply["version"].as_u64().unwrap());
            acked += 1;
        }
    }
    // Sent in order from one connection, logged in that order.
    assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]), "{sequences:?}");
    // The gateway counts what it logged, by the transport it came on.
    let logged = metric(&http, gateway, "koopstream_batches_logged_total{transport=\"ws\"}").await;
    assert_eq!(logged, Some(BATCHES as f64));
    let samples = metric(&http, gateway, "koopstream_samples_logged_total{transport=\"ws\"}").await;
    assert_eq!(samples, Some((BATCHES * ROWS) as f64));
    let owner_id = nodes[owner].id.clone();
    eventually(Duration::from_secs(20), "the owner has applied every batch", async || {
        let (served_by, status) = status(&http, gateway, stream).await?;
        (served_by == owner_id && status["batches"] == BATCHES).then_some(())
    })
    .await;
    let clustered: Value = model_at(&http, gateway, stream).await;
    let alone = single_node_model(stream, &batches).await;
    assert_eq!(clustered, alone, "the model of a WebSocket feed differs from the single node's");
}

/// A WebSocket connected to a stream's preferred owner before that node has taken the
/// stream: when the node swaps its idle copy for the live one, the connection follows it
/// (every batch acknowledged, none refused, the connection open) and the model is the
/// single node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_websocket_connection_follows_its_node_taking_the_stream() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const BATCHES: usize = 40;
    let nats = Nats::start();
    let nodes = three_nodes(&nats, 25);
    let http = http();
    let stream = "follows";
    let owner = &nodes[nodes.iter().position(|n| n.id == preferred(stream)).unwrap()];
    assert_eq!(create(&http, owner, &vdp_definition(stream)).await, 201);
    let batches = stream_batches(0, BATCHES);
    // Connected at once: the node takes the lease at its next ownership tick (at most 1 s),
    // while the batches below go out one at a time over 2 s.
    let url = owner.ws_url(stream);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for body in batches.iter() {
        socket.send(Message::text(body.to_string())).await.unwrap();
        let ack = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let reply: Value = serde_json::from_str(&text).unwrap();
                        if reply["type"] != "summary" {
                            break reply;
                        }
                    }
                    other => panic!("the connection ended at seq {}: {other:?}", body["seq"]),
                }
            }
        })
        .await
        .expect("an answer within 10 s");
        assert_eq!((&ack["type"], &ack["seq"]), (&json!("ack"), &body["seq"]), "{ack}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let owner_id = owner.id.clone();
    eventually(Duration::from_secs(20), "the owner has applied every batch", async || {
        let (served_by, status) = status(&http, owner, stream).await?;
        (served_by == owner_id && status["batches"] == BATCHES).then_some(())
    })
    .await;
    let clustered: Value = model_at(&http, owner, stream).await;
    assert_eq!(clustered, single_node_model(stream, &batches).await);
}

/// What one feeder saw of one request: when it went out, when it was answered, and how.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    sent: Instant,
    answered: Instant,
    /// The HTTP status; 0 when no answer came (refused connection, reset, timeout).
    status: u16,
}

/// A gateway feeding one stream: batch after batch, each sent to the live nodes in turn
/// until one acknowledges it (a refused or failed request is sent again, elsewhere), until
/// `stop` is set or every batch is acknowledged. Returns how many batches were
/// acknowledged (a prefix of `batches`) and every attempt.
async fn feed(
    http: reqwest::Client,
    gateways: Arc<Mutex<Vec<String>>>,
    stream: String,
    batches: Arc<Vec<Value>>,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<Attempt>) {
    let mut attempts = Vec::new();
    let mut turn = 0usize;
    for (b, body) in batches.iter().enumerate() {
        loop {
            if stop.load(Ordering::Relaxed) {
                return (b, attempts);
            }
            let gateway = {
                let live = gateways.lock().unwrap();
                turn += 1;
                live[turn % live.len()].clone()
            };
            let sent = Instant::now();
            let response = http.post(format!("{gateway}/v1/streams/{stream}/samples")).json(body).send().await;
            let status = response.as_ref().map_or(0, |r| r.status().as_u16());
            attempts.push(Attempt { sent, answered: Instant::now(), status });
            match status {
                200 => break,
                // Not reachable, not (yet) knowing the stream, or not able to log: again.
                0 | 404 | 500..=599 => tokio::time::sleep(Duration::from_millis(50)).await,
                other => {
                    let body = response.unwrap().text().await.unwrap_or_default();
                    panic!("{stream}: batch {b} refused with {other}: {body}")
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    (batches.len(), attempts)
}

/// Gateways feeding streams through the nodes (`feed`), one task per stream.
struct Load {
    streams: Vec<String>,
    batches: Vec<Arc<Vec<Value>>>,
    /// The nodes the gateways send to (a test changes it as nodes stop and start).
    gateways: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    feeders: Vec<tokio::task::JoinHandle<(usize, Vec<Attempt>)>>,
}

impl Load {
    /// Creates `count` streams named `prefix-N` on the first node and starts feeding each
    /// with up to `batches` batches through all `nodes`.
    async fn start(http: &reqwest::Client, nodes: &[Node], prefix: &str, count: usize, batches: usize) -> Load {
        let streams: Vec<String> = (0..count).map(|s| format!("{prefix}-{s}")).collect();
        for stream in &streams {
            assert_eq!(create(http, &nodes[0], &vdp_definition(stream)).await, 201);
        }
        let gateways = Arc::new(Mutex::new(nodes.iter().map(|n| n.process.base.clone()).collect::<Vec<_>>()));
        let stop = Arc::new(AtomicBool::new(false));
        let batches: Vec<Arc<Vec<Value>>> = (0..count).map(|s| stream_batches(s, batches)).collect();
        let feeders = streams
            .iter()
            .zip(&batches)
            .map(|(stream, batches)| {
                let feeding = feed(http.clone(), gateways.clone(), stream.clone(), batches.clone(), stop.clone());
                tokio::spawn(feeding)
            })
            .collect();
        Load { streams, batches, gateways, stop, feeders }
    }

    /// Stops the gateways; per stream: its id, its batches, how many were acknowledged,
    /// and every attempt.
    async fn finish(self) -> Vec<(String, Arc<Vec<Value>>, usize, Vec<Attempt>)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for ((stream, batches), feeder) in self.streams.into_iter().zip(self.batches).zip(self.feeders) {
            let (acked, attempts) = feeder.await.unwrap();
            outcomes.push((stream, batches, acked, attempts));
        }
        outcomes
    }
}

/// The batches of stream number `s` (seq 1, 2, ...): a Van der Pol trajectory from its own
/// start, so streams differ; stream 0 starts at the trajectory's beginning.
fn stream_batches(s: usize, count: usize) -> Arc<Vec<Value>> {
    let samples = van_der_pol((count + 3 * s) * ROWS, TS);
    let samples = &samples[3 * s * ROWS..];
    Arc::new((0..count).map(|b| batch(b as u64 + 1, b * ROWS, &samples[b * ROWS..(b + 1) * ROWS], TS)).collect())
}

/// Waits until `stream` has applied exactly its `acked` batches, then checks its model
/// (read through `gateway`) against a single node fed the same batches.
async fn applied_as_alone(http: &reqwest::Client, gateway: &Node, stream: &str, batches: &[Value], acked: usize) {
    let mut last = None;
    let status = eventually(Duration::from_secs(30), "every acknowledged batch is applied", async || {
        let (served_by, status) = status(http, gateway, stream).await?;
        if status["batches"] == acked {
            return Some(status);
        }
        if last.as_ref() != Some(&(served_by.clone(), status["batches"].clone())) {
            eprintln!("{stream}: {} of {acked} batches applied by {served_by}", status["batches"]);
            last = Some((served_by, status["batches"].clone()));
        }
        None
    })
    .await;
    assert_eq!(status["samples_accepted"], acked * ROWS, "{stream}: {status}");
    let url = gateway.url(&format!("/v1/streams/{stream}/model"));
    let clustered: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(clustered, single_node_model(stream, &batches[..acked]).await, "{stream}: the model differs");
}

/// Every node stopped (SIGTERM) and started again, one after the other, while six
/// gateways keep feeding their streams through whichever nodes are up: every batch a node
/// acknowledged is applied once, in order, and each model is the single node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_rolling_restart_of_every_node_under_load_loses_nothing() {
    const STREAMS: usize = 6;
    const BATCHES: usize = 400;
    let nats = Nats::start();
    let mut nodes = three_nodes(&nats, 10);
    let http = http();
    let load = Load::start(&http, &nodes, "rolling", STREAMS, BATCHES).await;
    let (streams, gateways) = (load.streams.clone(), load.gateways.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..nodes.len() {
        let id = nodes[i].id.clone();
        // Gateways keep choosing the node while it stops (no load balancer drains it): what
        // it refuses or leaves unanswered is sent again to another node.
        nodes[i].terminate();
        gateways.lock().unwrap().retain(|base| *base != nodes[i].process.base);
        tokio::time::sleep(Duration::from_millis(500)).await;
        nodes[i] = Node::start(&nats, &id, 10);
        gateways.lock().unwrap().push(nodes[i].process.base.clone());
        // The restarted node takes back its share before the next one goes.
        let mine: Vec<&String> = streams.iter().filter(|s| preferred(s) == id).collect();
        for stream in mine {
            eventually(Duration::from_secs(20), "the restarted node owns its streams again", async || {
                let (served_by, _) = status(&http, &nodes[i], stream).await?;
                (served_by == id).then_some(())
            })
            .await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut retried = 0;
    for (stream, batches, acked, attempts) in load.finish().await {
        assert!(acked > 20, "{stream}: only {acked} batches acknowledged");
        retried += attempts.len() - acked;
        eprintln!("{stream}: {acked} batches acknowledged");
        applied_as_alone(&http, &nodes[0], &stream, &batches, acked).await;
    }
    eprintln!("requests sent again after a failure: {retried}");
}

/// NATS killed (SIGKILL) for 6 s, longer than the lease TTL, while gateways feed two
/// streams: no request sent while it is down is acknowledged (every one gets an error),
/// ingest resumes after it is back, and every acknowledged batch is applied as alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn nats_restarted_under_load_gives_errors_not_acknowledgements_and_ingest_resumes() {
    const STREAMS: usize = 2;
    const BATCHES: usize = 400;
    const DOWN: Duration = Duration::from_secs(6);
    let mut nats = Nats::start();
    let nodes: Vec<Node> = NODES[..2].iter().map(|id| Node::start(&nats, id, 10)).collect();
    let http = http();
    let load = Load::start(&http, &nodes, "outage", STREAMS, BATCHES).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    nats.kill();
    tokio::time::sleep(DOWN).await;
    let restarted = Instant::now();
    nats.restart();
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (stream, batches, acked, attempts) in load.finish().await {
        // Sent after the kill and answered before the restart: NATS never saw it, so an
        // acknowledgement would be false.
        let while_down: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.sent > killed + Duration::from_millis(200) && a.answered < restarted)
            .collect();
        let relative: Vec<_> = attempts
            .iter()
            .filter(|a| a.answered > killed)
            .take(12)
            .map(|a| (a.sent.saturating_duration_since(killed), a.answered - killed, a.status))
            .collect();
        assert!(while_down.len() >= 10, "{stream}: {} requests while NATS was down: {relative:?}", while_down.len());
        let acknowledged: Vec<_> = while_down.iter().filter(|a| a.status == 200).collect();
        assert!(acknowledged.is_empty(), "{stream}: acknowledged while NATS was down: {acknowledged:?}");
        assert!(while_down.iter().all(|a| a.status == 503), "{stream}: {while_down:?}");
        let resumed = attempts.iter().find(|a| a.sent > restarted && a.status == 200);
        let resumed = resumed.unwrap_or_else(|| panic!("{stream}: no acknowledgement after NATS came back"));
        eprintln!("{stream}: acknowledged again {:?} after the restart", resumed.answered - restarted);
        let after = attempts.iter().filter(|a| a.sent > restarted && a.status == 200).count();
        assert!(after >= 20, "{stream}: only {after} batches acknowledged after NATS came back");
        applied_as_alone(&http, &nodes[1], &stream, &batches, acked).await;
    }
    // The nodes follow the cluster's definitions again: a stream created on one after the
    // outage is listed on the other.
    assert_eq!(create(&http, &nodes[0], &vdp_definition("after-outage")).await, 201);
    eventually(Duration::from_secs(15), "a stream created after the outage is listed on every node", async || {
        listed(&http, &nodes[1]).await.iter().any(|id| id == "after-outage").then_some(())
    })
    .await;
}

/// The `summary` messages of a WebSocket, collected by a task of its own, in order.
fn collect_summaries(
    mut socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> (Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    use futures_util::StreamExt;
    let summaries = Arc::new(Mutex::new(Vec::new()));
    let collected = summaries.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "summary" {
                    collected.lock().unwrap().push(message);
                }
            }
        }
    });
    (summaries, task)
}

/// The server-sent events read so far from a response, as (event, data) pairs.
async fn read_events(response: &mut reqwest::Response, text: &mut String, events: &mut Vec<(String, Value)>) {
    if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(2), response.chunk()).await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    while let Some(end) = text.find("\n\n") {
        let block: String = text.drain(..end + 2).collect();
        let field =
            |name: &str| block.lines().find_map(|line| line.strip_prefix(name)).map(str::trim).map(str::to_owned);
        if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
            events.push((event, serde_json::from_str(&data).unwrap()));
        }
    }
}

/// Watchers connected to a node that does not own the stream get the owner's pushes: a
/// WebSocket there receives every summary the owner's own WebSocket receives, the same
/// documents in the same order, and `/events` there is the owner's event stream (its
/// status, not the idle copy's). When the owner stops and the watching node takes the
/// stream, the WebSocket keeps receiving, now from the node's own refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn watchers_on_every_node_get_the_owners_summaries_and_events() {
    const BATCHES: usize = 30;
    const EIGEN_EVERY: usize = 2 * ROWS;
    let nats = Nats::start();
    let mut nodes = three_nodes(&nats, 25);
    let http = http();
    let stream = "watched";
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let others: Vec<&'static str> = NODES.iter().copied().filter(|id| *id != nodes[owner].id).collect();
    // The node that takes the stream when its owner stops: the watching one.
    let watcher = nodes.iter().position(|n| n.id == preferred_among(stream, &others)).unwrap();
    let mut definition = vdp_definition(stream);
    definition["eigen_every"] = json!(EIGEN_EVERY);
    assert_eq!(create(&http, &nodes[owner], &definition).await, 201);
    let owner_id = nodes[owner].id.clone();
    eventually(Duration::from_secs(15), "the owner holds the stream", async || {
        let (served_by, from, _) = status_from(&http, &nodes[watcher], stream).await?;
        (served_by == owner_id && from == "owner").then_some(())
    })
    .await;

    let connect = async |node: &Node| tokio_tungstenite::connect_async(node.ws_url(stream)).await.unwrap().0;
    let (at_owner, owner_task) = collect_summaries(connect(&nodes[owner]).await);
    let (at_watcher, watcher_task) = collect_summaries(connect(&nodes[watcher]).await);
    let unbounded = reqwest::Client::new();
    let mut events = unbounded.get(nodes[watcher].url(&format!("/v1/streams/{stream}/events"))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert_eq!(
        (&events.headers()["koopstream-served-by"], &events.headers()["koopstream-served-from"]),
        (
            &reqwest::header::HeaderValue::from_str(&owner_id).unwrap(),
            &reqwest::header::HeaderValue::from_static("owner")
        )
    );

    let batches = stream_batches(0, BATCHES + 10);
    for body in &batches[..BATCHES] {
        let response = http.post(nodes[owner].url(&format!("/v1/streams/{stream}/samples"))).json(body).send().await;
        assert_eq!(response.unwrap().status(), 200);
    }
    // Every batch applied and its refreshes pushed (a refresh of this small model takes
    // well under a millisecond), then both lists are complete.
    eventually(Duration::from_secs(20), "the owner has applied every batch", async || {
        let (_, status) = status(&http, &nodes[owner], stream).await?;
        (status["batches"] == BATCHES).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let owned = at_owner.lock().unwrap().clone();
    eventually(Duration::from_secs(10), "the watching node's WebSocket has every summary", async || {
        (*at_watcher.lock().unwrap() == owned).then_some(())
    })
    .await;
    // Refreshes come after the warm-up, then every EIGEN_EVERY samples (later when the
    // worker is still busy with the previous one).
    let warmup = definition["warmup"].as_u64().unwrap() as usize;
    let fed = BATCHES * ROWS;
    assert!(owned.len() >= (fed - warmup) / EIGEN_EVERY / 2, "{} summaries for {fed} samples", owned.len());
    owner_task.abort();

    // The event stream through the watching node: the owner's status and summaries.
    let (mut text, mut seen) = (String::new(), Vec::new());
    eventually(Duration::from_secs(20), "a status with every batch and the last summary", async || {
        read_events(&mut events, &mut text, &mut seen).await;
        let status = seen.iter().any(|(event, data)| event == "status" && data["status"]["batches"] == BATCHES);
        let summary = seen.iter().any(|(event, data)| event == "summary" && Some(data) == owned.last());
        (status && summary).then_some(())
    })
    .await;
    let summaries: Vec<&Value> = seen.iter().filter(|(event, _)| event == "summary").map(|(_, data)| data).collect();
    assert!(summaries.iter().all(|s| owned.contains(s)), "an event-stream summary the owner did not push");

    // The owner stops; the watching node takes the stream, and its WebSocket, connected
    // to the idle copy before, now gets the live copy's summaries.
    nodes[owner].terminate();
    let watcher_id = nodes[watcher].id.clone();
    eventually(Duration::from_secs(15), "the watching node holds the stream", async || {
        let (served_by, from, _) = status_from(&http, &nodes[watcher], stream).await?;
        (served_by == watcher_id && from == "owner").then_some(())
    })
    .await;
    for body in &batches[BATCHES..] {
        let response = http.post(nodes[watcher].url(&format!("/v1/streams/{stream}/samples"))).json(body).send().await;
        assert_eq!(response.unwrap().status(), 200);
    }
    // Pushed by the new owner: summaries of more than the old owner applied.
    eventually(Duration::from_secs(20), "summaries of the new owner's refreshes", async || {
        let after: Vec<u64> =
            at_watcher.lock().unwrap()[owned.len()..].iter().map(|s| s["samples_accepted"].as_u64().unwrap()).collect();
        let fresh = after.first().is_some_and(|first| *first > fed as u64);
        (fresh && after.len() >= 3 && after.windows(2).all(|w| w[0] < w[1])).then_some(())
    })
    .await;
    watcher_task.abort();
}

/// Each node's memory budget has room for two streams of 32 channels in full; the three
/// nodes hold six, two owned by each, because a node counts only a small idle copy for a
/// stream another node owns (counting every stream of the cluster in full, the third
/// create would be refused and adding nodes would add no room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn three_nodes_hold_more_streams_than_one_nodes_memory_budget() {
    let nats = Nats::start();
    // About 5.5 MiB each in full (the 422 below names the figure if that changes).
    let budget = [
        ("KOOPSTREAM_LIMITS__STREAM_MEMORY_BYTES", (8u64 << 20).to_string()),
        ("KOOPSTREAM_LIMITS__TOTAL_MEMORY_BYTES", (12u64 << 20).to_string()),
    ];
    let nodes: Vec<Node> = NODES.iter().map(|id| Node::start_with(&nats, id, 25, &budget)).collect();
    let http = http();
    // Two streams preferred by each node.
    let mut ids: Vec<String> = Vec::new();
    for node in NODES {
        let mine = (0..).map(|i| format!("wide-{i}")).filter(|id| preferred(id) == node).take(2);
        ids.extend(mine);
    }
    let channels: Vec<Value> = (0..32).map(|k| json!({"name": format!("v{k}"), "unit": "pu"})).collect();
    for id in &ids {
        let definition =
            json!({"id": id, "channels": channels, "ts": 1.0 / 30.0, "dictionary": "state,delay:4", "warmup": 300});
        let response = http.post(nodes[0].url("/v1/streams")).json(&definition).send().await.unwrap();
        let status = response.status();
        assert_eq!(status, 201, "{id}: {}", response.text().await.unwrap());
    }
    for id in &ids {
        let owner = preferred(id);
        eventually(Duration::from_secs(15), "each stream is held by its preferred node", async || {
            let (served_by, from, _) = status_from(&http, &nodes[0], id).await?;
            (served_by == owner && from == "owner").then_some(())
        })
        .await;
    }
}

/// A stream's model document as `node` answers it (forwarded to the owner if need be).
async fn model_at(http: &reqwest::Client, node: &Node, stream: &str) -> Value {
    let url = node.url(&format!("/v1/streams/{stream}/model"));
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// One sample of a node's metrics (`name` with its labels, as exposed), if present.
async fn metric(http: &reqwest::Client, node: &Node, name: &str) -> Option<f64> {
    let text = http.get(node.url("/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A stream's view as one node holds it (not forwarded to the owner).
async fn local_view(http: &reqwest::Client, node: &Node, stream: &str) -> Option<Value> {
    let url = node.url(&format!("/v1/streams/{stream}"));
    let response = http.get(url).header("koopstream-forwarded-by", "test").send().await.ok()?;
    (response.status() == 200).then_some(())?;
    response.json().await.ok()
}

/// A stream fed by a C37.118.2 PMU (`pmu-serve`, paced at 30 frames/s, in this process):
/// only the owner's source client connects, its samples go through the log and show on
/// every node; when the owner is SIGKILLed, the node that takes the stream over connects
/// to the PMU and the stream goes on, no sample applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_pmu_source_is_read_by_the_owner_only_and_moves_with_the_stream() {
    use clap::Parser;
    use koopstream::cmd::{Cli, Command as Subcommand};
    let line = ["koopstream", "pmu-serve", "--system", "vdp", "--rate", "30", "--duration", "300"];
    let Some(Subcommand::PmuServe(args)) = Cli::try_parse_from(line).unwrap().command else { unreachable!() };
    let config = args.serve_config().unwrap();
    let frames = config.source.config().clone();
    let pmu_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pmu_address = pmu_listener.local_addr().unwrap().to_string();
    let (stop_pmu, pmu_stopped) = tokio::sync::oneshot::channel::<()>();
    let pmu = tokio::spawn(koopstream::pmu_serve::run(pmu_listener, None, config, async move {
        let _ = pmu_stopped.await;
    }));

    let nats = Nats::start();
    let mut nodes = three_nodes(&nats, 10);
    let http = http();
    let stream = "pmu-fed";
    let station = frames.pmus[0].station.clone();
    let analogs: Vec<String> = frames.pmus[0].analogs.iter().map(|a| a.name.clone()).collect();
    let definition = json!({"id": stream, "channels": [{"name": "x1"}, {"name": "x2"}], "ts": 1.0 / 30.0,
        "dictionary": "state,const,poly:3", "mu": 1e-3, "warmup": 100,
        "source": {"c37118": {"address": pmu_address, "idcode": frames.idcode, "channels": [
            {"pmu": station, "quantity": format!("analog:{}", analogs[0]), "name": "x1"},
            {"pmu": station, "quantity": format!("analog:{}", analogs[1]), "name": "x2"}]}}});
    assert_eq!(create(&http, &nodes[1], &definition).await, 201);
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let owner_id = nodes[owner].id.clone();
    let gateway = (owner + 1) % 3;
    let before_kill = eventually(Duration::from_secs(30), "the owner applies the PMU's samples", async || {
        let (served_by, status) = status(&http, &nodes[gateway], stream).await?;
        let accepted = status["samples_accepted"].as_u64()?;
        (served_by == owner_id && accepted >= 150).then_some(accepted)
    })
    .await;
    // The owner's client is connected; the idle copies have none.
    for (i, node) in nodes.iter().enumerate() {
        let view = local_view(&http, node, stream).await.expect("every node has the stream");
        let connects = view["source"]["connects"].as_u64().unwrap_or(0);
        assert_eq!(
            (view["source"]["connected"] == true, connects > 0),
            (i == owner, i == owner),
            "{}: {view}",
            node.id
        );
    }

    nodes[owner].kill();
    let dead = owner_id.clone();
    let (new_owner, after) = eventually(
        Duration::from_secs(LEASE_TTL_S) + FAILOVER_SLACK,
        "another node owns the stream and reads the PMU",
        async || {
            let (served_by, from, status) = status_from(&http, &nodes[gateway], stream).await?;
            let accepted = status["samples_accepted"].as_u64()?;
            (from == "owner" && served_by != dead && accepted >= before_kill + 150).then_some((served_by, status))
        },
    )
    .await;
    let taker = nodes.iter().find(|n| n.id == new_owner).unwrap();
    let view = local_view(&http, taker, stream).await.unwrap();
    assert_eq!(view["source"]["connected"], true, "{view}");
    // Live frames only: nothing the old owner logged came again, nothing arrived out of
    // order (the frames sent while no node read the PMU are missing, as for any PDC).
    let rejected = &after["samples_rejected"];
    assert_eq!((&rejected["duplicate"], &rejected["out_of_order"]), (&json!(0), &json!(0)), "{after}");
    let _ = stop_pmu.send(());
    let _ = pmu.await;
}

/// Three nodes serving HTTPS and requiring client certificates, all issued by one CA: a
/// read asked of a node that does not own the stream is forwarded over TLS (the node
/// presents its peer certificate) and answered by the owner, and the model read through
/// it is the owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn reads_are_forwarded_over_tls_between_nodes_serving_https() {
    use axum::http::{HeaderMap, Method, header};
    let nats = Nats::start();
    let dir = std::env::temp_dir().join(format!("koopstream-cluster-https-{}", std::process::id()));
    let files = TlsFiles::write(&dir);
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let settings = [
        ("KOOPSTREAM_TLS__CERT", path(&files.node_cert)),
        ("KOOPSTREAM_TLS__KEY", path(&files.node_key)),
        ("KOOPSTREAM_TLS__CLIENT_CA", path(&files.ca)),
        ("KOOPSTREAM_CLUSTER__PEER_CA", path(&files.ca)),
        ("KOOPSTREAM_CLUSTER__PEER_CERT", path(&files.node_cert)),
        ("KOOPSTREAM_CLUSTER__PEER_KEY", path(&files.node_key)),
    ];
    let nodes: Vec<Node> = NODES.iter().map(|id| Node::start_with(&nats, id, 25, &settings)).collect();
    // The gateway's HTTPS client: the same TLS client the nodes use for each other.
    let client = koopstream::cluster_node::PeerClient::with_tls(
        &files.ca,
        Some((files.gateway_cert.as_path(), files.gateway_key.as_path())),
    )
    .unwrap();
    let https = |node: &Node, path: &str| node.url(path).replacen("http://", "https://", 1);
    let call = async |method: Method, url: String, body: Option<&Value>| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let body = body.map_or_else(bytes::Bytes::new, |b| bytes::Bytes::from(b.to_string()));
        let answer = client.send(method, &url, headers, body, Duration::from_secs(10)).await.ok()?;
        let (parts, body) = answer.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.ok()?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Some((parts.status.as_u16(), parts.headers, value))
    };

    let stream = "over-tls";
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let other = (owner + 1) % 3;
    let definition = vdp_definition(stream);
    eventually(Duration::from_secs(20), "the stream is created over HTTPS", async || {
        let (status, _, _) = call(Method::POST, https(&nodes[other], "/v1/streams"), Some(&definition)).await?;
        (status == 201).then_some(())
    })
    .await;
    let batches = stream_batches(0, 10);
    for body in batches.iter() {
        let url = https(&nodes[other], &format!("/v1/streams/{stream}/samples"));
        let ack = eventually(Duration::from_secs(15), "a batch is acknowledged", async || {
            let (status, _, ack) = call(Method::POST, url.clone(), Some(body)).await?;
            (status == 200).then_some(ack)
        })
        .await;
        assert_eq!(ack["accepted"], ROWS, "{ack}");
    }
    let owner_id = nodes[owner].id.clone();
    eventually(Duration::from_secs(20), "the owner's status, forwarded over TLS", async || {
        let (status, headers, view) =
            call(Method::GET, https(&nodes[other], &format!("/v1/streams/{stream}")), None).await?;
        let served_by = headers.get("koopstream-served-by")?.to_str().ok()?.to_owned();
        let served_from = headers.get("koopstream-served-from")?.to_str().ok()?.to_owned();
        (status == 200 && served_by == owner_id && served_from == "owner" && view["status"]["batches"] == 10)
            .then_some(())
    })
    .await;
    let model_path = format!("/v1/streams/{stream}/model");
    let (_, _, forwarded) = call(Method::GET, https(&nodes[other], &model_path), None).await.unwrap();
    let (_, _, at_owner) = call(Method::GET, https(&nodes[owner], &model_path), None).await.unwrap();
    assert!(forwarded["pairs"].as_u64().is_some_and(|pairs| pairs > 100), "{forwarded}");
    assert_eq!(forwarded, at_owner);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream that got a few batches, fewer than `snapshot_every_batches`, and then none: it
/// is snapshotted after `snapshot_every_s` anyway, its head settled, and the log compacted
/// past all its batches, so it holds nobody's compaction back; and its state is intact:
/// after its owner's SIGKILL the next owner restores every batch from the snapshot alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_stream_that_stops_receiving_holds_no_compaction_back() {
    const BATCHES: usize = 5;
    let nats = Nats::start();
    let settings = [("KOOPSTREAM_CLUSTER__SNAPSHOT_EVERY_S", "1".to_owned())];
    let mut nodes: Vec<Node> = NODES.iter().map(|id| Node::start_with(&nats, id, 1000, &settings)).collect();
    let http = http();
    let stream = "quiet";
    assert_eq!(create(&http, &nodes[0], &vdp_definition(stream)).await, 201);
    let batches = stream_batches(0, BATCHES);
    for body in batches.iter() {
        let url = nodes[0].url(&format!("/v1/streams/{stream}/samples"));
        let ack = eventually(Duration::from_secs(15), "a batch is acknowledged", async || {
            let response = http.post(url.clone()).json(body).send().await.ok()?;
            (response.status() == 200).then_some(())
        });
        ack.await;
    }
    eventually(Duration::from_secs(20), "the log holds none of the stream's batches", async || {
        (logged_batches(&nats, stream).await == 0).then_some(())
    })
    .await;
    let owner = nodes.iter().position(|n| n.id == preferred(stream)).unwrap();
    let owner_id = nodes[owner].id.clone();
    nodes[owner].kill();
    let survivor = (owner + 1) % 3;
    let (served_by, status) =
        eventually(Duration::from_secs(LEASE_TTL_S) + FAILOVER_SLACK, "another node restores the stream", async || {
            let (served_by, from, status) = status_from(&http, &nodes[survivor], stream).await?;
            (from == "owner" && served_by != owner_id).then_some((served_by, status))
        })
        .await;
    assert_eq!(status["batches"], BATCHES, "{served_by}: {status}");
    let clustered: Value = model_at(&http, &nodes[survivor], stream).await;
    assert_eq!(clustered, single_node_model(stream, &batches).await);
}
