//! Supervision of the service processes: start each one, show its output under a coloured
//! prefix, notice when it is ready or when it dies, and stop them all in order.
//!
//! Each service is its own child process, as in production, in its own process group: a
//! Ctrl-C in the terminal then reaches only the launcher, which sends SIGTERM to every service
//! and waits for them to drain (gRPC, consumers, outbox relay) *before* it stops NATS — if the
//! terminal's SIGINT hit everything at once, NATS would go down under services still flushing
//! into it. Every child is also `kill_on_drop`, so an error or a panic in the launcher still
//! takes them down: children must not outlive the launcher.
//!
//! Readiness is the ready file each service writes once its gRPC and metrics listeners are
//! bound (`REDRESS_READY_FILE`, JSON `{"grpc": …, "metrics": …, "pid": …}`): it is written by
//! rename, so a file that exists is complete.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::console::{Console, strip_ansi};
use crate::infra::send_sigterm;
use crate::signals::Signals;

/// Prefix colours, one per service in start order (cyan, yellow, magenta, green, blue).
const COLOURS: [&str; 5] = ["36", "33", "35", "32", "34"];

/// How many of a service's last log lines are kept to show when it dies.
const TAIL_LINES: usize = 30;

/// How often the supervisor looks at ready files and exit statuses. Polling keeps the code
/// simple and costs nothing noticeable at this rate.
const POLL: Duration = Duration::from_millis(100);

/// Everything needed to start one service.
pub struct ServiceSpec {
    pub name: &'static str,
    pub binary: PathBuf,
    /// Set on top of the launcher's own environment, which the child inherits.
    pub env: Vec<(String, String)>,
    /// Inherited variables that must not reach the child.
    pub env_remove: Vec<String>,
    pub ready_file: PathBuf,
    /// A plain-text copy of the child's output, for after the terminal has scrolled away.
    pub log_file: PathBuf,
}

/// What a service reported in its ready file.
pub struct Ready {
    pub name: &'static str,
    pub grpc: String,
    pub metrics: Option<String>,
    /// The board's HTTP address (the wallboard and the event gateway).
    pub http: Option<String>,
}

/// Why [`Supervisor::watch`] returned.
pub enum Stopped {
    /// The user asked to stop.
    Signal(&'static str),
    /// A service died on its own.
    Exited {
        name: &'static str,
        status: ExitStatus,
    },
}

/// The last lines a service printed, shared with the task that reads its output.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// One running service.
struct Service {
    name: &'static str,
    child: Child,
    pid: u32,
    prefix: String,
    tail: Tail,
    /// The tasks copying stdout and stderr; they end when the child closes its pipes.
    pumps: Vec<JoinHandle<()>>,
    ready_file: PathBuf,
    log_file: PathBuf,
    /// Set once the exit has been seen (and reported), so each exit is reported once.
    exited: Option<ExitStatus>,
}

/// The service children of this launcher.
pub struct Supervisor {
    console: Console,
    services: Vec<Service>,
}

impl Supervisor {
    pub fn new(console: Console) -> Self {
        Self {
            console,
            services: Vec::new(),
        }
    }

    /// Starts one service with its output piped through the prefixer.
    pub fn spawn(&mut self, spec: ServiceSpec) -> Result<()> {
        self.remove_stale_ready_file(spec.name, &spec.ready_file)?;
        let colour = COLOURS[self.services.len() % COLOURS.len()];
        let prefix = self.console.prefix(spec.name, colour);
        let log = std::fs::File::create(&spec.log_file)
            .with_context(|| format!("creating {}", spec.log_file.display()))?;
        let log = Arc::new(Mutex::new(log));

        let mut command = Command::new(&spec.binary);
        command
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in &spec.env_remove {
            command.env_remove(name);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", spec.binary.display()))?;
        let pid = child
            .id()
            .with_context(|| format!("{} exited at once", spec.name))?;

        let tail: Tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let mut pumps = Vec::with_capacity(2);
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(
                out,
                prefix.clone(),
                tail.clone(),
                log.clone(),
                self.console,
            )));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(
                err,
                prefix.clone(),
                tail.clone(),
                log,
                self.console,
            )));
        }
        self.console
            .say(&format!("started {} (pid {pid})", spec.name));
        self.services.push(Service {
            name: spec.name,
            child,
            pid,
            prefix,
            tail,
            pumps,
            ready_file: spec.ready_file,
            log_file: spec.log_file,
            exited: None,
        });
        Ok(())
    }

    /// A ready file left from an earlier run would make a service look ready before it is.
    /// If the process it names still runs (its launcher was killed outright), say so: the new
    /// service will fail to bind the same ports, and the user needs to know why.
    fn remove_stale_ready_file(&self, name: &str, path: &Path) -> Result<()> {
        if let Some(pid) = read_ready(path).and_then(|(_, _, pid)| pid) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim().starts_with("redress-") {
                self.console.warn(&format!(
                    "{name} from an earlier run still seems to run (pid {pid}, {}); its ports \
                     will clash: stop it with `kill {pid}`",
                    comm.trim()
                ));
            }
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing stale ready file {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Waits until every service has written its ready file. `Ok(None)`: a stop signal came
    /// first. An error when a service exits first or the timeout passes, after showing the
    /// last lines of the services concerned.
    pub async fn wait_ready(
        &mut self,
        timeout: Duration,
        signals: &mut Signals,
    ) -> Result<Option<Vec<Ready>>> {
        let deadline = Instant::now() + timeout;
        let mut ready: Vec<Option<Ready>> = self.services.iter().map(|_| None).collect();
        loop {
            for (service, slot) in self.services.iter().zip(ready.iter_mut()) {
                if slot.is_none()
                    && let Some((grpc, metrics, _)) = read_ready(&service.ready_file)
                {
                    self.console
                        .say(&format!("{} is ready (gRPC {grpc})", service.name));
                    *slot = Some(Ready {
                        name: service.name,
                        grpc,
                        metrics,
                        http: read_http(&service.ready_file),
                    });
                }
            }
            if ready.iter().all(Option::is_some) {
                return Ok(Some(ready.into_iter().flatten().collect()));
            }
            if let Some((name, status)) = self.next_exit() {
                self.print_tail(name);
                bail!("{name} exited before it was ready ({status})");
            }
            if Instant::now() >= deadline {
                let late: Vec<&'static str> = self
                    .services
                    .iter()
                    .zip(&ready)
                    .filter(|(_, r)| r.is_none())
                    .map(|(s, _)| s.name)
                    .collect();
                for name in &late {
                    self.print_tail(name);
                }
                bail!(
                    "not ready within {} s: {}",
                    timeout.as_secs(),
                    late.join(", ")
                );
            }
            tokio::select! {
                sig = signals.recv() => {
                    self.console.say(&format!("{sig} received while starting"));
                    return Ok(None);
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Runs until a stop signal arrives or a service dies.
    pub async fn watch(&mut self, signals: &mut Signals) -> Stopped {
        loop {
            if let Some((name, status)) = self.next_exit() {
                return Stopped::Exited { name, status };
            }
            tokio::select! {
                sig = signals.recv() => return Stopped::Signal(sig),
                _ = tokio::time::sleep(POLL * 2) => {}
            }
        }
    }

    /// The first service whose exit has not been seen yet, if one has exited.
    fn next_exit(&mut self) -> Option<(&'static str, ExitStatus)> {
        for service in &mut self.services {
            if service.exited.is_none()
                && let Ok(Some(status)) = service.child.try_wait()
            {
                service.exited = Some(status);
                return Some((service.name, status));
            }
        }
        None
    }

    /// Shows a service's last lines together, since live they were interleaved with the others'.
    pub fn print_tail(&self, name: &str) {
        let Some(service) = self.services.iter().find(|s| s.name == name) else {
            return;
        };
        let lines: Vec<String> = lock(&service.tail).iter().cloned().collect();
        if lines.is_empty() {
            self.console.warn(&format!(
                "{name} printed nothing (log: {})",
                service.log_file.display()
            ));
            return;
        }
        self.console.warn(&format!(
            "last {} lines of {} (whole log: {}):",
            lines.len(),
            name,
            service.log_file.display()
        ));
        for line in &lines {
            self.console.line(&service.prefix, line);
        }
    }

    /// SIGTERM to every live service, up to `grace` for them to exit, then SIGKILL. A second
    /// stop signal skips the wait. Safe to call when some or all have already exited.
    pub async fn shutdown(&mut self, grace: Duration, signals: &mut Signals) {
        while let Some((name, status)) = self.next_exit() {
            self.console
                .say(&format!("{name} had already exited ({status})"));
        }
        let live: Vec<&Service> = self
            .services
            .iter()
            .filter(|s| s.exited.is_none())
            .collect();
        if !live.is_empty() {
            self.console.say(&format!(
                "stopping {} (SIGTERM; SIGKILL after {} s, or at once on a second Ctrl-C)",
                live.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
                grace.as_secs()
            ));
            for service in &live {
                send_sigterm(service.pid);
            }
            let deadline = Instant::now() + grace;
            loop {
                while let Some((name, status)) = self.next_exit() {
                    self.console.say(&format!("{name} stopped ({status})"));
                }
                let left: Vec<&'static str> = self
                    .services
                    .iter()
                    .filter(|s| s.exited.is_none())
                    .map(|s| s.name)
                    .collect();
                if left.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    self.console.warn(&format!(
                        "still running after {} s, killing: {}",
                        grace.as_secs(),
                        left.join(", ")
                    ));
                    break;
                }
                tokio::select! {
                    sig = signals.recv() => {
                        self.console.warn(&format!("{sig} again: killing {}", left.join(", ")));
                        break;
                    }
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
        for service in &mut self.services {
            if service.exited.is_none() {
                let _ = service.child.start_kill();
                if let Ok(Ok(status)) =
                    tokio::time::timeout(Duration::from_secs(5), service.child.wait()).await
                {
                    service.exited = Some(status);
                    self.console
                        .say(&format!("{} killed ({status})", service.name));
                }
            }
            // Let the last lines through; a grandchild holding the pipe must not hang us.
            for pump in service.pumps.drain(..) {
                let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
            }
            let _ = std::fs::remove_file(&service.ready_file);
        }
    }
}

/// `(grpc, metrics, pid)` from a ready file, if it exists and is complete.
fn read_ready(path: &Path) -> Option<(String, Option<String>, Option<u32>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let grpc = v.get("grpc")?.as_str()?.to_owned();
    let metrics = v.get("metrics").and_then(|m| m.as_str()).map(str::to_owned);
    let pid = v
        .get("pid")
        .and_then(|p| p.as_u64())
        .and_then(|p| u32::try_from(p).ok());
    Some((grpc, metrics, pid))
}

/// The HTTP address a service named in its ready file (the board), if any.
fn read_http(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v.get("http")?.as_str()?.to_owned())
}

/// Copies a child's output line by line: to the terminal under its prefix, to its log file
/// without colour codes, and into its tail. Bytes that are not UTF-8 are shown replaced rather
/// than dropping the line.
async fn pump(
    reader: impl AsyncRead + Unpin,
    prefix: String,
    tail: Tail,
    log: Arc<Mutex<std::fs::File>>,
    console: Console,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf);
        console.line(&prefix, &text);
        let plain = strip_ansi(&text);
        let _ = writeln!(lock(&log), "{plain}");
        let mut tail = lock(&tail);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(plain);
    }
}

/// A poisoned lock only means another printer panicked mid-line; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_ready_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.json");
        assert!(read_ready(&path).is_none());
        std::fs::write(
            &path,
            r#"{"grpc":"127.0.0.1:50051","metrics":"127.0.0.1:9101","pid":123}"#,
        )
        .unwrap();
        let (grpc, metrics, pid) = read_ready(&path).unwrap();
        assert_eq!(grpc, "127.0.0.1:50051");
        assert_eq!(metrics.as_deref(), Some("127.0.0.1:9101"));
        assert_eq!(pid, Some(123));
        std::fs::write(&path, r#"{"grpc":"127.0.0.1:1","metrics":null,"pid":1}"#).unwrap();
        assert_eq!(read_ready(&path).unwrap().1, None);
    }
}
