//! A service binary running as its own process, as in production.

use crate::metric;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running service. Killed on drop.
pub struct ServiceProcess {
    pub name: String,
    pub grpc_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    /// Other addresses the service named in its ready file (the board's `http`).
    pub listening: std::collections::BTreeMap<String, SocketAddr>,
    child: Child,
    dir: tempfile::TempDir,
}

/// Where cargo put the binary: `REDRESS_BIN_DIR` (benchmarks point it at `target/release`), else
/// `CARGO_TARGET_DIR` or `<workspace>/target`, debug profile.
pub fn binary_path(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("REDRESS_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::workspace_root().join("target"));
    target.join("debug").join(name)
}

impl ServiceProcess {
    /// Starts `binary` with `env`, on free ports, and waits until it reports ready.
    pub async fn spawn(binary: &str, env: &[(String, String)]) -> Self {
        let path = binary_path(binary);
        assert!(
            path.exists(),
            "{} not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
            path.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let child = Command::new(&path)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("REDRESS_GRPC_ADDR", "127.0.0.1:0")
            .env("REDRESS_METRICS_ADDR", "127.0.0.1:0")
            .env("REDRESS_READY_FILE", &ready)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn service");
        let mut p = Self {
            name: binary.to_owned(),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            listening: Default::default(),
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("ready file json");
                p.grpc_addr = v["grpc"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("grpc addr");
                p.metrics_addr = v["metrics"].as_str().and_then(|s| s.parse().ok());
                if let Some(all) = v.as_object() {
                    p.listening = all
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.parse().ok()?)))
                        .collect();
                }
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{binary} exited before ready ({status}):\n{}", p.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{binary} not ready in 30 s:\n{}",
                p.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The service's Prometheus page (`GET /metrics`, HTTP/1.0: the server closes the
    /// connection after the reply).
    pub async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = self
            .metrics_addr
            .expect("service reports its metrics address");
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to /metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send request");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.expect("read reply");
        let (head, body) = reply.split_once("\r\n\r\n").expect("HTTP reply");
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        body.to_owned()
    }

    /// The Prometheus page once `series` has reached `at_least` (or `within` has passed: the
    /// caller's assertion on the page then says what was seen).
    pub async fn metrics_when(&self, series: &str, at_least: f64, within: Duration) -> String {
        crate::poll(
            within,
            async || self.metrics().await,
            |page| metric(page, series) >= at_least,
        )
        .await
    }

    /// What the service's metrics say of its consumer `consumer` (`intake-submissions`, …) once
    /// it has consumed at least `at_least` messages (or `within` has passed): how many, in how
    /// many batches, and the page for the caller's assertion messages.
    pub async fn consumed(&self, consumer: &str, at_least: f64, within: Duration) -> Consumed {
        let series = format!("redress_messages_consumed_total{{consumer=\"{consumer}\"}}");
        let page = self.metrics_when(&series, at_least, within).await;
        Consumed {
            messages: metric(&page, &series),
            batches: metric(
                &page,
                &format!("redress_batch_seconds_count{{consumer=\"{consumer}\"}}"),
            ),
            page,
        }
    }

    /// SIGKILL: the crash case, nothing gets to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(timeout).await
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.logs());
        }
        self.kill();
    }
}

/// A consumer's counts as [`ServiceProcess::consumed`] read them.
#[derive(Debug)]
pub struct Consumed {
    /// Messages consumed (`redress_messages_consumed_total`).
    pub messages: f64,
    /// Batches handled (`redress_batch_seconds_count`).
    pub batches: f64,
    /// The whole Prometheus page.
    pub page: String,
}
