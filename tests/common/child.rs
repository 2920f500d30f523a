//! The real binary as a child process on a loopback port, for tests that measure the
//! server alone (its resident memory from /proc) or send it signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `koopstream serve` child; killed when dropped.
pub struct ChildServer {
    pub child: Child,
    pub address: String,
}

impl ChildServer {
    /// Starts `koopstream serve` in memory on 127.0.0.1:0 with these `KOOPSTREAM_*`
    /// variables, and waits for its listening line.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_koopstream"));
        for (key, _) in std::env::vars() {
            if key.starts_with("KOOPSTREAM_") {
                command.env_remove(key);
            }
        }
        command.args(["serve", "--listen", "127.0.0.1:0", "--durability", "memory", "--log-format", "json"]);
        command.envs(env.iter().copied()).stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = listening_address(&mut lines);
        // Keep draining the log, so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Self { child, address }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn ws_url(&self, stream: &str) -> String {
        format!("ws://{}/v1/streams/{stream}/ws", self.address)
    }

    /// A line of /proc/<pid>/status in KiB: `VmRSS` (resident now) or `VmHWM` (peak).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// Reads JSON log lines until the server says where it listens.
pub fn listening_address(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no listening line");
        let line = lines.next().expect("the server logs").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
        if entry["fields"]["message"] == "koopstream listening" {
            return entry["fields"]["address"].as_str().unwrap().to_owned();
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server process whose JSON log (stderr) is kept line by line for the test to read.
pub struct LoggedProcess {
    pub child: Child,
    /// `http://ADDRESS` from its listening line.
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl LoggedProcess {
    /// Spawns `command` (which must log JSON to stderr) and waits up to 30 s for its
    /// listening line. A process that never says where it listens is killed, and its log
    /// is the error.
    pub fn spawn(command: &mut Command) -> Result<Self, String> {
        let mut child = command.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        // Drain stderr for the life of the process, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                    && entry["fields"]["message"] == "koopstream listening"
                {
                    let _ = address_tx.send(entry["fields"]["address"].as_str().unwrap_or_default().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        match address_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => Ok(Self { child, base: format!("http://{address}"), log }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(log.lock().unwrap().join("\n"))
            }
        }
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The log lines containing `text`.
    pub fn logged(&self, text: &str) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|line| line.contains(text)).cloned().collect()
    }
}
