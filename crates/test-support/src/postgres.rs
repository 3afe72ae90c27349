//! A private PostgreSQL server, for what cannot be done to the machine's shared one: restarting
//! it (fast and immediate), or holding it down for minutes, while services use it.
//!
//! Built from the machine's PostgreSQL binaries (`pg_config --bindir`, else
//! `/usr/lib/postgresql/<newest>/bin`, or `REDRESS_PG_BINDIR`); the cluster lives in a temporary
//! directory and is removed on drop. PostgreSQL refuses to run as root, so as root the commands
//! run as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How `pg_ctl stop` ends the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnects clients, checkpoints, exits cleanly.
    Fast,
    /// Exits at once without a checkpoint: the next start recovers from the WAL, as after a
    /// crash.
    Immediate,
}

impl StopMode {
    fn arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL server of its own on a loopback port.
pub struct PostgresServer {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("REDRESS_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().filter(|d| d.join("initdb").exists()).expect(
        "no PostgreSQL server binaries (initdb): install postgresql or set REDRESS_PG_BINDIR",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PostgresServer {
    /// Creates a cluster (trust authentication, user `postgres`) and starts it on a free port.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("redress-pg-")
            .tempdir()
            .expect("tempdir");
        let mut s = Self {
            bindir: bindir(),
            port: crate::ports::free_port(),
            dir,
            running: false,
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(s.dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        s.run(
            "initdb",
            &[
                "-D",
                &s.data().display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        s.start_again();
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs (as `postgres` when we are root); panics with its
    /// output if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bindir.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300 \
             -c shared_buffers=128MB",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }

    /// Stops the server.
    pub fn stop(&mut self, mode: StopMode) {
        if !self.running {
            return;
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                mode.arg(),
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
        self.running = false;
    }

    /// Stops and starts again: what an operator's restart (`Fast`) or a crash and its recovery
    /// (`Immediate`) look like to the services.
    pub fn restart(&mut self, mode: StopMode) {
        self.stop(mode);
        self.start_again();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's log, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.stop(StopMode::Immediate)
            }));
        }
    }
}
