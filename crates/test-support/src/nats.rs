//! A real `nats-server` for one test, on a free port, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream and its own store directory.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// The pinned server: `REDRESS_NATS_SERVER_BIN`, else the one `scripts/tools.sh` installs in
/// `.tools/`, else `nats-server` on the PATH.
pub fn nats_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("REDRESS_NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let pinned = crate::workspace_root().join(".tools/nats/bin/nats-server");
    if pinned.exists() {
        return pinned;
    }
    PathBuf::from("nats-server")
}

impl NatsServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Self {
            child: None,
            port: 0,
            dir,
        };
        s.launch(None);
        s
    }

    fn launch(&mut self, port: Option<u16>) {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("ports dir");
        let port_arg = port.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
        let bin = nats_server_binary();
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port_arg, "-sd"])
            .arg(self.dir.path().join("store"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run scripts/tools.sh to install the pinned nats-server",
                    bin.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Some(p) = read_port(&ports_dir) {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not report its port"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = Some(child);
        self.port = port;
        // The ports file appears once the listener is up; JetStream is ready right after.
        std::thread::sleep(Duration::from_millis(50));
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGKILL) keeping its store.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts on the same port and store: what a crash and a supervisor restart look like.
    pub fn restart(&mut self) {
        self.stop();
        self.launch(Some(self.port));
    }
}

fn read_port(dir: &std::path::Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir).ok()?.flatten().next()?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = v.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
