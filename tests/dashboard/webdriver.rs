//! A small W3C WebDriver client for the dashboard tests: starts Debian's `chromedriver`
//! on a loopback port, opens one headless Chromium session, and offers what the tests use
//! (navigate, run a script, window size, screenshot, the browser's console log). The
//! driver speaks plain HTTP on loopback, so the tests' reqwest client is enough.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// A tool named by `variable`, or found on PATH as `name` (Debian's packages put
/// `chromium` and `chromedriver` there).
fn tool(variable: &str, name: &str) -> String {
    if let Ok(path) = std::env::var(variable) {
        return path;
    }
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file()));
    found.map(|p| p.display().to_string()).unwrap_or_else(|| panic!("{name} is not on PATH (set {variable})"))
}

/// A headless Chromium session driven through chromedriver; both end on `quit` (or drop).
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    /// The browser's profile directory, removed with the browser.
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height` pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        // A process group of its own, so the browser it starts ends with it even when a
        // test panics before `quit` (killing the driver alone leaves Chromium running).
        let driver = Command::new(tool("CHROMEDRIVER", "chromedriver"))
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (Debian package chromium-driver)");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["value"]["ready"].as_bool()).unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("koopstream-chromium-{}-{port}", std::process::id()));
        // The flags keep Chromium off the network beyond loopback (this machine has none)
        // and let it run as root in a container.
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": tool("CHROMIUM", "chromium"), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let mut browser = Browser { http, base, session: String::new(), driver, profile };
        let created = browser.call(reqwest::Method::POST, "/session", Some(capabilities)).await;
        browser.session = created["sessionId"].as_str().expect("a session id").to_owned();
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let value: Value = response.json().await.expect("chromedriver answers JSON");
        assert!(status.is_success(), "WebDriver {path}: {status} {value}");
        value["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, &self.at("/url"), Some(json!({"url": url}))).await;
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub async fn execute(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, &self.at("/execute/sync"), Some(json!({"script": script, "args": []}))).await
    }

    /// Waits until `script` returns something truthy (not null, false, 0, "" or []) and
    /// returns it; panics with `what` after `limit`.
    pub async fn wait_for(&self, script: &str, limit: Duration, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(_) => true,
                Value::Bool(true) => true,
            };
            if truthy {
                return value;
            }
            assert!(started.elapsed() < limit, "{what}: not seen within {limit:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call(reqwest::Method::GET, &self.at("/screenshot"), None).await;
        base64::engine::general_purpose::STANDARD.decode(encoded.as_str().expect("base64 text")).expect("base64")
    }

    /// The browser's console entries since the last call (level, message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self.call(reqwest::Method::POST, &self.at("/se/log"), Some(json!({"type": "browser"}))).await;
        entries
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (e["level"].as_str().unwrap_or("").to_owned(), e["message"].as_str().unwrap_or("").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session, then the driver and the browser.
    pub async fn quit(self) {
        let path = format!("/session/{}", self.session);
        let _ = self.http.delete(format!("{}{path}", self.base)).send().await;
        // Drop ends the process group.
    }

    /// Ends the driver's process group: the driver and every browser process it started.
    fn end_group(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After `quit`, and after a panic before it.
        self.end_group();
    }
}
