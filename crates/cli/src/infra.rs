//! The infrastructure the services need, found or started: a current NATS server with
//! JetStream, and a PostgreSQL server that answers.
//!
//! NATS: the machine's Debian `nats-server` (2.9.10) answers on the default port but is too old
//! (`docs/adr/0002`, `STACK.md`: no consumers with several filter subjects, no per-message TTL,
//! KV fails), so when the server at `--nats-url` is missing or too old the launcher starts the
//! project's pinned server on a port of its own and stops it again on exit.
//!
//! PostgreSQL is a system service: the launcher checks that it answers and, on a machine where
//! it is installed but stopped, starts the local cluster (and, with `--install` as root,
//! installs it). It never stops PostgreSQL; it was not ours to begin with. The services create
//! their database and run their migrations themselves.

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::process::{Child, Command};

use crate::console::Console;

/// The oldest NATS server Redress runs on. 2.12 brings consumers with several filter
/// subjects, per-message TTL and the INFO fields async-nats needs for KV; 2.12.3 because the
/// Jepsen analysis of 2.12.1 led to fixes that landed there (`STACK.md`).
pub const MIN_NATS: Version = Version(2, 12, 3);

/// How long a probe of a NATS or PostgreSQL server may take before "it does not answer".
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long our own nats-server may take to accept connections.
const NATS_START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a just-started PostgreSQL cluster may take to accept connections.
const PG_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long our own nats-server gets to shut down cleanly (flush JetStream) before SIGKILL.
const NATS_STOP_GRACE: Duration = Duration::from_secs(5);

/// A `major.minor.patch` server version, compared numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// Parses `2.15.1`, `v2.12.3`, `2.12.0-beta.1` (pre-release suffixes are ignored).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches('v');
        let numeric: String = s
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = numeric.split('.').filter(|p| !p.is_empty());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        Some(Self(major, minor, patch))
    }

    /// The first version-looking word of `nats-server --version` output
    /// (`nats-server: v2.15.1`).
    pub fn find_in(text: &str) -> Option<Self> {
        text.split_whitespace()
            .filter(|w| {
                w.trim_start_matches('v')
                    .starts_with(|c: char| c.is_ascii_digit())
            })
            .find_map(Self::parse)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

/// What the launcher needs to know to start NATS if it has to.
pub struct NatsOptions<'a> {
    /// The server the user asked for (`--nats-url`).
    pub url: &'a str,
    /// Port for our own server when that one will not do.
    pub own_port: u16,
    /// An explicit server binary (`REDRESS_NATS_SERVER_BIN`).
    pub server_bin: Option<&'a Path>,
    /// `<data-dir>/nats`: the JetStream store, kept between runs.
    pub store_dir: PathBuf,
    /// `<data-dir>/logs/nats.log`.
    pub log_file: PathBuf,
}

/// The NATS server the services will use.
pub struct Nats {
    /// The URL handed to the services.
    pub url: String,
    /// One line for the summary: which server and why.
    pub description: String,
    /// The server we started, to stop on exit; `None` when it was already running.
    pub own: Option<OwnNats>,
}

/// A nats-server started by this launcher.
pub struct OwnNats {
    /// `kill_on_drop`, so an error path or a panic still takes it down.
    child: Child,
    pid: u32,
}

impl OwnNats {
    /// SIGTERM (nats-server then flushes and closes JetStream cleanly), SIGKILL after a grace.
    pub async fn stop(mut self, console: &Console) {
        console.say(&format!("stopping nats-server (pid {})", self.pid));
        if let Ok(None) = self.child.try_wait() {
            send_sigterm(self.pid);
            if tokio::time::timeout(NATS_STOP_GRACE, self.child.wait())
                .await
                .is_err()
            {
                console.warn("nats-server did not stop in time: killing it");
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
    }
}

/// What a NATS probe found.
enum NatsProbe {
    /// A server we can use, with its version.
    Usable(Version),
    /// A server answers but will not do; the reason says why.
    Unsuitable(String),
    /// Nothing answers (connection refused, timeout, handshake failed): the reason.
    Unreachable(String),
}

/// Connects once and reads the server's INFO: version and whether JetStream is on.
async fn probe_nats(url: &str) -> NatsProbe {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(PROBE_TIMEOUT)
        .connect(url);
    let client = match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Err(_) => return NatsProbe::Unreachable(format!("no answer in {PROBE_TIMEOUT:?}")),
        Ok(Err(e)) => return NatsProbe::Unreachable(e.to_string()),
        Ok(Ok(c)) => c,
    };
    let info = client.server_info();
    drop(client);
    let Some(version) = Version::parse(&info.version) else {
        return NatsProbe::Unsuitable(format!("unreadable server version {:?}", info.version));
    };
    if version < MIN_NATS {
        return NatsProbe::Unsuitable(format!(
            "it is nats-server {version}, older than the {MIN_NATS} Redress needs \
             (consumers with several filter subjects, per-message TTL, KV)"
        ));
    }
    if !info.jetstream {
        return NatsProbe::Unsuitable(format!(
            "it is nats-server {version} without JetStream (start it with -js)"
        ));
    }
    NatsProbe::Usable(version)
}

/// Uses the server at `--nats-url` if it is current, else starts (or reuses) our own.
pub async fn ensure_nats(opts: NatsOptions<'_>, console: &Console) -> Result<Nats> {
    let why_not = match probe_nats(opts.url).await {
        NatsProbe::Usable(v) => {
            return Ok(Nats {
                url: opts.url.to_owned(),
                description: format!("{} (nats-server {v}, already running)", opts.url),
                own: None,
            });
        }
        NatsProbe::Unsuitable(why) => format!("the server at {} will not do: {why}", opts.url),
        NatsProbe::Unreachable(why) => format!("no NATS server answers at {} ({why})", opts.url),
    };
    console.say(&format!("NATS: {why_not}"));

    // Our port may already hold a current server: one left by an earlier run whose launcher
    // was killed outright. Reuse it rather than fail on "address in use".
    let own_url = format!("nats://127.0.0.1:{}", opts.own_port);
    if own_url != opts.url {
        match probe_nats(&own_url).await {
            NatsProbe::Usable(v) => {
                console.say(&format!(
                    "NATS: a current nats-server ({v}) already answers at {own_url} \
                     (left by an earlier run?): using it, and leaving it running on exit"
                ));
                return Ok(Nats {
                    description: format!("{own_url} (nats-server {v}, found running)"),
                    url: own_url,
                    own: None,
                });
            }
            NatsProbe::Unsuitable(why) => bail!(
                "port {} is taken by another NATS server ({why}); \
                 choose a free one with --own-nats-port / REDRESS_OWN_NATS_PORT",
                opts.own_port
            ),
            NatsProbe::Unreachable(_) => {}
        }
    }

    let (binary, version) = find_nats_server(opts.server_bin).await?;
    console.say(&format!(
        "NATS: starting our own nats-server {version} ({}) at {own_url}, store {}, log {}",
        binary.display(),
        opts.store_dir.display(),
        opts.log_file.display()
    ));
    let own = start_nats(&binary, opts.own_port, &opts.store_dir, &opts.log_file).await?;
    Ok(Nats {
        description: format!(
            "{own_url} (our own nats-server {version}, pid {}; log {})",
            own.pid,
            opts.log_file.display()
        ),
        url: own_url,
        own: Some(own),
    })
}

/// Starts `nats-server -js -a 127.0.0.1 -p <port> -sd <store>` and waits until it accepts
/// connections.
async fn start_nats(binary: &Path, port: u16, store: &Path, log_file: &Path) -> Result<OwnNats> {
    std::fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
    let log = std::fs::File::create(log_file)
        .with_context(|| format!("creating {}", log_file.display()))?;
    let log_err = log
        .try_clone()
        .context("duplicating the NATS log file handle")?;
    let mut child = Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: Ctrl-C in the terminal reaches only the launcher, which stops
        // NATS last, after the services have drained their work into it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("nats-server exited at once")?;

    let url = format!("nats://127.0.0.1:{port}");
    let deadline = Instant::now() + NATS_START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("checking on nats-server")? {
            bail!(
                "nats-server exited at start ({status}); last lines of {}:\n{}",
                log_file.display(),
                tail_of_file(log_file, 20)
            );
        }
        match probe_nats(&url).await {
            NatsProbe::Usable(_) => return Ok(OwnNats { child, pid }),
            NatsProbe::Unsuitable(why) => bail!("our own nats-server at {url}: {why}"),
            NatsProbe::Unreachable(why) if Instant::now() >= deadline => bail!(
                "nats-server did not accept connections at {url} within {NATS_START_TIMEOUT:?} \
                 ({why}); last lines of {}:\n{}",
                log_file.display(),
                tail_of_file(log_file, 20)
            ),
            NatsProbe::Unreachable(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The nats-server to run: `REDRESS_NATS_SERVER_BIN`, else the pinned one in
/// `<workspace>/.tools/nats/bin/`, else one on the PATH if it is current enough.
async fn find_nats_server(explicit: Option<&Path>) -> Result<(PathBuf, Version)> {
    if let Some(bin) = explicit {
        let version = binary_version(bin)
            .await
            .with_context(|| format!("REDRESS_NATS_SERVER_BIN={}", bin.display()))?;
        if version < MIN_NATS {
            bail!(
                "REDRESS_NATS_SERVER_BIN={} is nats-server {version}, older than {MIN_NATS}.\n{}",
                bin.display(),
                install_hint()
            );
        }
        return Ok((bin.to_owned(), version));
    }

    let mut rejected = Vec::new();
    let pinned = workspace_roots()
        .into_iter()
        .map(|root| root.join(".tools/nats/bin/nats-server"))
        .filter(|p| p.is_file());
    for candidate in pinned.chain(which("nats-server")) {
        match binary_version(&candidate).await {
            Ok(v) if v >= MIN_NATS => return Ok((candidate, v)),
            Ok(v) => rejected.push(format!("{} is {v}, too old", candidate.display())),
            Err(e) => rejected.push(format!("{}: {e:#}", candidate.display())),
        }
    }
    let found = if rejected.is_empty() {
        "none found".to_owned()
    } else {
        rejected.join("; ")
    };
    bail!(
        "no nats-server {MIN_NATS} or newer to start ({found}).\n{}",
        install_hint()
    )
}

/// The exact command that installs the pinned server.
fn install_hint() -> String {
    let script = workspace_roots()
        .into_iter()
        .map(|root| root.join("scripts/tools.sh"))
        .find(|p| p.is_file())
        .map_or_else(
            || "scripts/tools.sh   (from the repository root)".to_owned(),
            |p| p.display().to_string(),
        );
    format!(
        "Install the pinned nats-server with:\n    {script}\n\
         (or set REDRESS_NATS_SERVER_BIN to a nats-server {MIN_NATS} or newer)"
    )
}

/// `<binary> --version`, parsed.
async fn binary_version(binary: &Path) -> Result<Version> {
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        Command::new(binary)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("`--version` did not answer in 5 s")?
    .with_context(|| format!("running {} --version", binary.display()))?;
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Version::find_in(&text).with_context(|| format!("no version in {:?}", text.trim()))
}

/// Where the workspace is: two levels above the running executable (`target/debug/redress`),
/// and the current directory if it has `.tools` (a binary installed elsewhere, run from a
/// checkout).
pub fn workspace_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(root) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent()?.parent().map(Path::to_path_buf))
    {
        roots.push(root);
    }
    if let Some(cwd) = std::env::current_dir()
        .ok()
        .filter(|cwd| cwd.join(".tools").is_dir() && !roots.contains(cwd))
    {
        roots.push(cwd);
    }
    roots
}

/// An executable called `name` on the PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The last `n` lines of a log file, for error messages.
pub fn tail_of_file(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// SIGTERM through `kill(1)`: the workspace forbids `unsafe`, so no `libc::kill`.
pub fn send_sigterm(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// What a PostgreSQL probe found.
enum PgProbe {
    /// It answers; the server version.
    Up(String),
    /// It answered but refused us (authentication, missing role…): no point starting anything.
    Refused(String),
    /// It is starting up (SQLSTATE 57P03): wait.
    Starting,
    /// Nothing answers.
    Down(String),
}

/// Connects to the `postgres` database of the server (ours may not exist yet: the services
/// create it) and asks its version.
async fn probe_pg(opts: &PgConnectOptions) -> PgProbe {
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(opts)).await {
        Err(_) => PgProbe::Down(format!("no answer in {PROBE_TIMEOUT:?}")),
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("57P03") => {
            PgProbe::Starting
        }
        Ok(Err(sqlx::Error::Database(e))) => PgProbe::Refused(e.to_string()),
        Ok(Err(e)) => PgProbe::Down(e.to_string()),
        Ok(Ok(mut conn)) => {
            let version = sqlx::query_scalar::<_, String>("SHOW server_version")
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|_| "unknown version".to_owned());
            let _ = conn.close().await;
            PgProbe::Up(version)
        }
    }
}

/// Makes sure the PostgreSQL server of `url` answers; returns a one-line description.
pub async fn ensure_postgres(url: &str, install: bool, console: &Console) -> Result<String> {
    let opts = PgConnectOptions::from_str(url).context("--database-url / REDRESS_DATABASE_URL")?;
    let admin = opts.clone().database("postgres");
    let server = format!("{}:{}", opts.get_host(), opts.get_port());
    let database = opts.get_database().unwrap_or("(default)").to_owned();
    let describe = |v: &str| format!("{server}, database {database} (PostgreSQL {v})");

    let why_down = match probe_pg(&admin).await {
        PgProbe::Up(v) => return Ok(describe(&v)),
        PgProbe::Refused(why) => bail!(refused_message(&server, &why)),
        PgProbe::Starting => {
            console.say(&format!("PostgreSQL at {server} is starting up: waiting"));
            return match wait_for_pg(&admin, PG_START_TIMEOUT).await {
                Waited::Up(v) => Ok(describe(&v)),
                Waited::Refused(why) => bail!(refused_message(&server, &why)),
                Waited::TimedOut(why) => bail!(
                    "PostgreSQL at {server} did not finish starting within \
                     {PG_START_TIMEOUT:?} ({why})"
                ),
            };
        }
        PgProbe::Down(why) => why,
    };
    console.say(&format!("PostgreSQL: no answer at {server} ({why_down})"));

    let local = matches!(opts.get_host(), "localhost" | "127.0.0.1" | "::1")
        || opts.get_host().starts_with('/');
    if !local {
        bail!(
            "PostgreSQL at {server} does not answer ({why_down}); start it, or point \
             --database-url / REDRESS_DATABASE_URL at one that runs"
        );
    }

    let sudo = if is_root() { "" } else { "sudo " };
    if which("pg_ctlcluster").is_none() {
        if !(install && is_root()) {
            bail!(
                "PostgreSQL is not installed here (no pg_ctlcluster). Install and start it with:\n\
                 \x20   {sudo}apt-get install -y postgresql\n\
                 \x20   {sudo}pg_ctlcluster --skip-systemctl-redirect <version> main start\n\
                 (`redress up --install`, run as root, does both)"
            );
        }
        apt_install_postgres(console).await?;
    }

    let Some(version) = pg_cluster_versions().pop() else {
        bail!(
            "PostgreSQL is installed but has no cluster in /etc/postgresql; create and start \
             one with:\n    {sudo}pg_createcluster <version> main --start"
        );
    };
    let start = format!("pg_ctlcluster --skip-systemctl-redirect {version} main start");
    console.say(&format!("PostgreSQL: starting the local cluster: {start}"));
    let output = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "start"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running pg_ctlcluster")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        // Nothing is starting, so there is nothing to wait for: one more look, then the
        // reason. "Cluster is already running" lands here too; then the cluster listens
        // somewhere other than the URL says.
        return match probe_pg(&admin).await {
            PgProbe::Up(v) => Ok(describe(&v)),
            PgProbe::Refused(why) => bail!(refused_message(&server, &why)),
            PgProbe::Starting | PgProbe::Down(_) => bail!(
                "`{start}` failed ({}): {}\nPostgreSQL does not answer at {server}. See \
                 `pg_lsclusters` for the port the cluster listens on (compare with \
                 --database-url), or start it by hand with:\n    {sudo}{start}",
                output.status,
                said.trim()
            ),
        };
    }

    match wait_for_pg(&admin, PG_START_TIMEOUT).await {
        Waited::Up(v) => Ok(describe(&v)),
        Waited::Refused(why) => bail!(refused_message(&server, &why)),
        Waited::TimedOut(why) => bail!(
            "PostgreSQL still does not answer at {server} {PG_START_TIMEOUT:?} after `{start}` \
             ({why}).\nCheck which port the cluster listens on with `pg_lsclusters`, and start \
             it by hand with:\n    {sudo}{start}"
        ),
    }
}

/// How waiting for PostgreSQL ended.
enum Waited {
    Up(String),
    Refused(String),
    /// With the last reason it did not answer.
    TimedOut(String),
}

/// Polls until the server answers or refuses, or `timeout` passes.
async fn wait_for_pg(admin: &PgConnectOptions, timeout: Duration) -> Waited {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe_pg(admin).await {
            PgProbe::Up(v) => return Waited::Up(v),
            PgProbe::Refused(why) => return Waited::Refused(why),
            PgProbe::Starting => "still starting up".to_owned(),
            PgProbe::Down(why) => why,
        };
        if Instant::now() >= deadline {
            return Waited::TimedOut(last);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The message for a server that answered but refused the connection.
fn refused_message(server: &str, why: &str) -> String {
    format!(
        "PostgreSQL at {server} answers but refuses the connection: {why}.\nLocal development \
         expects trust authentication on 127.0.0.1 (pg_hba.conf) for the URL's user, or a \
         password in --database-url / REDRESS_DATABASE_URL"
    )
}

/// `apt-get install -y postgresql` (after `apt-get update` if the first attempt fails, as it
/// does on a fresh machine with no package lists).
async fn apt_install_postgres(console: &Console) -> Result<()> {
    console.say("PostgreSQL: installing it: apt-get install -y postgresql");
    if apt_get(&["install", "-y", "postgresql"]).await?.success() {
        return Ok(());
    }
    console.warn("apt-get install failed; updating the package lists and trying again");
    if !apt_get(&["update"]).await?.success() {
        bail!("apt-get update failed");
    }
    if !apt_get(&["install", "-y", "postgresql"]).await?.success() {
        bail!("apt-get install -y postgresql failed");
    }
    Ok(())
}

/// Runs apt-get non-interactively, its output going straight to the terminal.
async fn apt_get(args: &[&str]) -> Result<ExitStatus> {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("running apt-get")
}

/// The PostgreSQL versions with a cluster configuration (`ls /etc/postgresql`), oldest first.
fn pg_cluster_versions() -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("main").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    versions.sort_by_key(|v| {
        v.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    versions
}

/// Whether we run as root: the owner of `/proc/self` is this process's effective user.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(Version::parse("2.9.10"), Some(Version(2, 9, 10)));
        assert_eq!(Version::parse("v2.15.1"), Some(Version(2, 15, 1)));
        assert_eq!(Version::parse("2.12.0-beta.1"), Some(Version(2, 12, 0)));
        assert_eq!(Version::parse("2.12"), Some(Version(2, 12, 0)));
        assert_eq!(Version::parse("nope"), None);
        assert_eq!(
            Version::find_in("nats-server: v2.15.1\n"),
            Some(Version(2, 15, 1))
        );
    }

    #[test]
    fn compares_versions_numerically() {
        assert!(Version(2, 9, 10) < MIN_NATS);
        assert!(Version(2, 12, 2) < MIN_NATS);
        assert!(Version(2, 12, 3) >= MIN_NATS);
        assert!(Version(2, 15, 1) >= MIN_NATS);
        assert!(Version(3, 0, 0) >= MIN_NATS);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("log");
        std::fs::write(&f, "a\nb\nc\n").unwrap();
        assert_eq!(tail_of_file(&f, 2), "b\nc");
        assert_eq!(tail_of_file(&f, 10), "a\nb\nc");
        assert_eq!(tail_of_file(&dir.path().join("missing"), 3), "");
    }
}
