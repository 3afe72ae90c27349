//! A real browser for system tests: Debian's Chromium, headless, driven over the W3C WebDriver
//! protocol by `chromedriver` (package `chromium-driver`; `scripts/tools.sh` installs both).
//!
//! The protocol is a handful of JSON requests, spoken here directly so the test bed needs no
//! WebDriver client crate.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium session. The browser and its driver stop on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics with what to install when
    /// either is missing: a browser test never passes by skipping.
    pub async fn start() -> Self {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: run `bash scripts/tools.sh` (installs Debian's chromium and chromium-driver)"
            );
        }
        let port = crate::ports::free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        // No WebDriver call may hang a test: a stuck one fails it with its URL.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let profile = tempfile::tempdir().expect("profile dir");
        // Flags from the machine's notes: without the background-networking ones Chromium keeps
        // trying hosts this closed network refuses.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1600,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let mut last_error = String::new();
        for _ in 0..100 {
            match post(&http, &format!("{base}/session"), &capabilities).await {
                Ok(v) => {
                    if let Some(session) = v["value"]["sessionId"].as_str() {
                        return Self {
                            driver,
                            base,
                            session: session.to_owned(),
                            http,
                            profile,
                        };
                    }
                    last_error = v.to_string();
                }
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        let _ = driver.wait();
        panic!("no Chromium session from chromedriver: {last_error}");
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        post(&self.http, &self.url("/url"), &json!({"url": url}))
            .await
            .expect("navigate");
    }

    /// Reloads the page.
    pub async fn reload(&self) {
        post(&self.http, &self.url("/refresh"), &json!({}))
            .await
            .expect("reload");
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        let v = post(
            &self.http,
            &self.url("/execute/sync"),
            &json!({"script": script, "args": []}),
        )
        .await
        .expect("execute script");
        v["value"].clone()
    }

    /// The visible text of the first element matching `selector`, or empty.
    pub async fn text(&self, selector: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : '';",
            json!(selector)
        );
        self.eval(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self
            .http
            .get(self.url("/screenshot"))
            .send()
            .await
            .expect("screenshot")
            .bytes()
            .await
            .expect("screenshot body");
        let v: Value = serde_json::from_slice(&v).expect("screenshot JSON");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifact dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session stops Chromium. The request is made on a runtime and client of
        // its own (the test's runtime may be gone, and its pooled connections with it).
        let url = self.url("");
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| {
                    rt.block_on(async {
                        reqwest::Client::new()
                            .delete(url)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await
                    })
                })
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Whatever is left of this browser (its profile directory is in every process's
        // command line) goes too: a leaked Chromium would load the machine for the next tests.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .status();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{status}: {value}"))
    }
}
