//! What the cluster's ingest log adds per batch: the round trip of one publish to a real
//! `nats-server -js` on loopback until JetStream's acknowledgement (the wait a gateway's
//! acknowledgement would gain), one at a time and with many in flight, and the CPU the
//! server and this client spend per batch. Run with `cargo bench -p cluster --bench publish`
//! (nats-server on PATH: `src/cluster/tests/setup-nats.sh`; without it the bench says so
//! and measures nothing).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{Cluster, ClusterConfig};

/// Payload of one batch: one sample of 32 channels in the service's JSON batch format is
/// about this size (seq, t and 32 values with their digits).
const PAYLOAD_BYTES: usize = 700;
/// Publishes per measurement.
const COUNT: usize = 5_000;

/// A nats-server with JetStream on a free loopback port and its own store directory,
/// killed (by its own PID) and removed on drop.
struct NatsServer {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl NatsServer {
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let store = std::env::temp_dir().join(format!("koopstream-publish-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).ok()?;
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self { child, port, store };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// CPU seconds (user + system) the server has used so far, from /proc.
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// utime + stime of a /proc stat file, in seconds (the kernel's clock ticks are 100 Hz on
/// the machines this runs on).
fn cpu_seconds_of(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let Some(end) = stat.rfind(')') else { return f64::NAN };
    let fields: Vec<&str> = stat[end + 2..].split(' ').collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let Some(server) = NatsServer::start() else {
        println!("publish: nats-server is not on PATH or did not start; nothing measured");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let config = ClusterConfig::new(format!("nats://127.0.0.1:{}", server.port), "bench").unwrap();
        let cluster = Cluster::connect(config).await.unwrap();
        let payload = Bytes::from(vec![b'7'; PAYLOAD_BYTES]);
        // Warm the connection and the stream's file store.
        for k in 0..200 {
            cluster.log().publish("warm", payload.clone(), &format!("warm-{k}")).await.unwrap();
        }

        // One at a time: the latency a single gateway's acknowledgement gains.
        let (server_cpu, own_cpu) = (server.cpu_seconds(), cpu_seconds_of("/proc/self/stat"));
        let started = Instant::now();
        let mut latencies = Vec::with_capacity(COUNT);
        for k in 0..COUNT {
            let t = Instant::now();
            cluster.log().publish("s1", payload.clone(), &format!("s1-{k}")).await.unwrap();
            latencies.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let server_per = (server.cpu_seconds() - server_cpu) / COUNT as f64 * 1e6;
        let own_per = (cpu_seconds_of("/proc/self/stat") - own_cpu) / COUNT as f64 * 1e6;
        latencies.sort_by(f64::total_cmp);
        println!("publish, one in flight, {PAYLOAD_BYTES}-byte batches, {COUNT} publishes:");
        println!(
            "  round trip to JetStream's ack: p50 {:.0} us, p99 {:.0} us, max {:.0} us; {:.0} batches/s",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            COUNT as f64 / elapsed
        );
        println!("  CPU per batch: nats-server {server_per:.0} us, client {own_per:.0} us");

        // Many in flight (200 streams publishing at once, as a busy node would).
        let in_flight = 200;
        let (server_cpu, own_cpu) = (server.cpu_seconds(), cpu_seconds_of("/proc/self/stat"));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..in_flight {
            let (cluster, payload) = (cluster.clone(), payload.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                for k in 0..COUNT / in_flight {
                    let t = Instant::now();
                    cluster.log().publish(&format!("p{s}"), payload.clone(), &format!("p{s}-{k}")).await.unwrap();
                    latencies.push(t.elapsed().as_secs_f64() * 1e6);
                }
                latencies
            }));
        }
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = latencies.len() as f64;
        let server_per = (server.cpu_seconds() - server_cpu) / n * 1e6;
        let own_per = (cpu_seconds_of("/proc/self/stat") - own_cpu) / n * 1e6;
        latencies.sort_by(f64::total_cmp);
        println!("publish, {in_flight} streams in flight at once, {} publishes:", latencies.len());
        println!(
            "  round trip to JetStream's ack: p50 {:.0} us, p99 {:.0} us, max {:.0} us; {:.0} batches/s",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            n / elapsed
        );
        println!("  CPU per batch: nats-server {server_per:.0} us, client {own_per:.0} us");
    });
}
