//! A real `nats-server` for one test, on a free port, killed on drop — or a three-node
//! JetStream cluster of them ([`NatsCluster`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream and its own store directory.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// More arguments (a cluster node's name, cluster port and routes).
    args: Vec<String>,
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
    let fallback = PathBuf::from("nats-server");
    check_recent_enough(&fallback);
    fallback
}

/// The oldest server the project works with (STACK.md: Debian's 2.9.10 lacks what async-nats
/// and the consumers need, and 2.12.3 carries the fixes of the Jepsen analysis).
const OLDEST: (u32, u32, u32) = (2, 12, 3);

/// Refuses an obsolete server on the PATH with a message that says what to do, instead of
/// letting dozens of tests fail with JetStream errors that do not say why. Checked once.
fn check_recent_enough(binary: &std::path::Path) {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let verdict = CHECKED.get_or_init(|| {
        let out = Command::new(binary)
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let version = parse_version(&text)
            .ok_or_else(|| format!("cannot read the version of {}: {text}", binary.display()))?;
        if version < OLDEST {
            return Err(format!(
                "{} is nats-server {}.{}.{}, older than {}.{}.{} which the tests need; run \
                 scripts/tools.sh to install the pinned server into .tools/ (or point \
                 REDRESS_NATS_SERVER_BIN at a current one)",
                binary.display(),
                version.0,
                version.1,
                version.2,
                OLDEST.0,
                OLDEST.1,
                OLDEST.2
            ));
        }
        Ok(())
    });
    if let Err(why) = verdict {
        panic!("{why}");
    }
}

/// `nats-server: v2.9.10` → (2, 9, 10).
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((parts.next()??, parts.next()??, parts.next()??))
}

impl NatsServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Self {
            child: None,
            port: 0,
            dir,
            args: Vec::new(),
        };
        s.launch(None);
        s
    }

    /// Starts a server on `port` with more arguments.
    fn start_on(port: u16, args: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Self {
            child: None,
            port,
            dir,
            args,
        };
        s.launch(Some(port));
        s
    }

    /// Starts the server on `port`, or on a fresh port outside the kernel's ephemeral range
    /// ([`crate::ports`]) so a later [`restart`](Self::restart) finds it free. A fresh port that
    /// another test took between probe and bind is replaced by another; the same port (a restart)
    /// is retried for a few seconds.
    fn launch(&mut self, port: Option<u16>) {
        let bin = nats_server_binary();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let try_port = port.unwrap_or_else(crate::ports::free_port);
            match self.try_launch(&bin, try_port) {
                Ok(child) => {
                    self.child = Some(child);
                    self.port = try_port;
                    return;
                }
                Err(why) => {
                    assert!(
                        Instant::now() < deadline,
                        "nats-server did not start on port {try_port} after {attempt} attempts: {why}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// One start on `port`: the child once it reported its listener and said it is ready, or why
    /// it did not.
    fn try_launch(&self, bin: &std::path::Path, port: u16) -> Result<Child, String> {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("ports dir");
        let log_path = self.dir.path().join("nats.log");
        let log = std::fs::File::create(&log_path).expect("nats log");
        let mut child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(self.dir.path().join("store"))
            .args(&self.args)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run scripts/tools.sh to install the pinned nats-server",
                    bin.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The listener is up (the ports file) and JetStream started (the server says it is
            // ready once it has): awaited, not slept for.
            if read_port(&ports_dir) == Some(port)
                && std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("Server is ready"))
            {
                return Ok(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("exited ({status}): {}", log.trim()));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not report its port in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id while it runs (for benchmarks that sample its CPU).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

/// Three `nats-server` nodes clustered with JetStream on loopback ports: streams created with
/// three replicas survive one node's death, and the nodes elect new leaders among themselves.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Node names are `n1`, `n2`, `n3` (what a stream's `cluster.leader` reports).
    pub fn start() -> Self {
        let mut ports = Vec::new();
        while ports.len() < 6 {
            let p = crate::ports::free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let (client, cluster) = ports.split_at(3);
        let route = |i: usize| format!("nats://127.0.0.1:{}", cluster[i]);
        // Start the nodes together: each waits for its routes, and JetStream needs a quorum.
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let routes = (0..3)
                    .filter(|j| *j != i)
                    .map(route)
                    .collect::<Vec<_>>()
                    .join(",");
                let args = vec![
                    "-n".to_owned(),
                    format!("n{}", i + 1),
                    "--cluster_name".to_owned(),
                    "redress".to_owned(),
                    "--cluster".to_owned(),
                    route(i),
                    "--routes".to_owned(),
                    routes,
                ];
                let port = client[i];
                std::thread::spawn(move || NatsServer::start_on(port, args))
            })
            .collect();
        let nodes = handles
            .into_iter()
            .map(|h| h.join().expect("node started"))
            .collect();
        Self { nodes }
    }

    /// Every node's client URL, comma separated (what `REDRESS_NATS_URL` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node called `name` (`n1`…), by its index.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        name.strip_prefix('n')?
            .parse::<usize>()
            .ok()?
            .checked_sub(1)
            .filter(|i| *i < self.nodes.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_compared() {
        assert_eq!(parse_version("nats-server: v2.9.10\n"), Some((2, 9, 10)));
        assert_eq!(parse_version("nats-server: v2.15.1"), Some((2, 15, 1)));
        assert!(parse_version("nats-server: v2.9.10").unwrap() < OLDEST);
        assert!(parse_version("nats-server: v2.15.1").unwrap() >= OLDEST);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn an_obsolete_server_is_refused_with_a_way_out() {
        // A stand-in that answers `--version` as Debian's 2.9.10 does.
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("nats-server");
        std::fs::write(&old, "#!/bin/sh\necho 'nats-server: v2.9.10'\n").unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&old)
            .status()
            .unwrap();
        let err = std::panic::catch_unwind(|| check_recent_enough(&old)).expect_err("refused");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("2.9.10"), "{msg}");
        assert!(msg.contains("scripts/tools.sh"), "{msg}");
    }
}
