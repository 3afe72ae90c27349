//! Settings every service shares, read from the command line, then environment variables
//! (`REDRESS_*`), then an optional env file, then built-in defaults that work against the
//! local NATS and PostgreSQL.
//!
//! Each service flattens [`CommonArgs`] into its own `clap` parser, so `--help` lists every
//! setting together with the variable that sets it. Addresses that differ per service (gRPC and
//! metrics ports) are `Option`s resolved with the service's own default, so the table in the
//! README stays one table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default; for a terminal).
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Settings shared by all five services.
#[derive(Clone, Debug, Args)]
pub struct CommonArgs {
    /// PostgreSQL connection URL. Each service keeps its tables in its own schema of this database.
    #[arg(
        long,
        env = "REDRESS_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/redress"
    )]
    pub database_url: String,

    /// PostgreSQL schema owned by this service (default: the service name, `-` becoming `_`).
    #[arg(long, env = "REDRESS_DB_SCHEMA")]
    pub db_schema: Option<String>,

    /// Largest number of PostgreSQL connections this process opens.
    #[arg(long, env = "REDRESS_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,

    /// Create the database named in the URL when it does not exist yet.
    #[arg(long, env = "REDRESS_DB_CREATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub db_create: bool,

    /// NATS server URL (JetStream must be enabled; server 2.12 or newer), or the servers of a
    /// cluster, comma separated.
    #[arg(
        long,
        env = "REDRESS_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// First token of every subject and stream name, so several installations (or tests) can
    /// share one NATS server without seeing each other's traffic.
    #[arg(long, env = "REDRESS_SUBJECT_PREFIX", default_value = "redress")]
    pub subject_prefix: String,

    /// Replicas of each JetStream stream (3 on a production NATS cluster). Existing streams are
    /// updated to this count at start.
    #[arg(long, env = "REDRESS_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// Address the gRPC server listens on (default: 127.0.0.1 and the service's own port,
    /// intake 50051, routing 50052, sla-monitor 50053, escalation 50054, revisit 50055).
    #[arg(long, env = "REDRESS_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,

    /// Address of the Prometheus `/metrics` endpoint (default: 127.0.0.1 and the service's own
    /// port, 9101–9105 in the order above). Port 0 picks a free port.
    #[arg(long, env = "REDRESS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Bearer tokens accepted on gRPC calls, as `token=actor_id:role[:display name]` separated by
    /// commas. Roles: handler, department_manager, customer_service_agent, general_manager,
    /// integration, operator. Calls without a known token are refused (health checks excepted).
    #[arg(
        long,
        env = "REDRESS_AUTH_TOKENS",
        default_value = "",
        hide_default_value = true
    )]
    pub auth_tokens: String,

    /// Policy file (TOML) overriding the DOMAIN.md defaults: class limits, feedback limits,
    /// warning share, penalties, revisit rules. Only the settings it names change.
    #[arg(long, env = "REDRESS_POLICY_FILE")]
    pub policy_file: Option<PathBuf>,

    /// Where the time comes from: `system`, `manual:<RFC 3339>` (frozen),
    /// `scaled:<factor>[@<RFC 3339>]` (runs `factor` times faster, for demos), or
    /// `file:<path>` (whatever RFC 3339 instant the file holds: tests move time by writing it).
    #[arg(long, env = "REDRESS_CLOCK", default_value = "system")]
    pub clock: String,

    /// Log format.
    #[arg(long, env = "REDRESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax (e.g. `info,redress_intake=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// OTLP/HTTP endpoint for traces (e.g. `http://127.0.0.1:4318`); traces are exported only
    /// when this is set.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Largest number of messages a consumer applies in one database transaction.
    #[arg(long, env = "REDRESS_CONSUMER_BATCH", default_value_t = 256)]
    pub consumer_batch: usize,

    /// Milliseconds a consumer waits for more messages to fill a batch that arrived short
    /// (0: apply what is there at once). Larger batches cost fewer statements per message under
    /// load, at the price of this much latency per stage when traffic is light; 5 ms took the
    /// whole pipeline from ~600 to ~1,000 complaints/s on a 2-core machine (ADR 0024).
    #[arg(long, env = "REDRESS_CONSUMER_LINGER_MS", default_value_t = 5)]
    pub consumer_linger_ms: u64,

    /// Deliveries of one message before it is sent to the dead-letter subject.
    #[arg(long, env = "REDRESS_MAX_DELIVER", default_value_t = 5)]
    pub max_deliver: i64,

    /// Seconds JetStream waits for an acknowledgement before redelivering a message to another
    /// replica (also how long a crashed consumer's messages wait).
    #[arg(long, env = "REDRESS_ACK_WAIT_SECS", default_value_t = 30)]
    pub ack_wait_secs: u64,

    /// How often the outbox relay looks for unpublished events when nothing woke it (ms).
    /// Commits in this process wake it at once; the poll covers other replicas and restarts.
    #[arg(long, env = "REDRESS_OUTBOX_POLL_MS", default_value_t = 500)]
    pub outbox_poll_ms: u64,

    /// Run the outbox relay in this process (turn off only to test crash recovery).
    #[arg(long, env = "REDRESS_OUTBOX_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub outbox_relay: bool,

    /// How long published events are kept in `outbox_published` so they can be re-published
    /// if the stream lost them (hours).
    #[arg(long, env = "REDRESS_OUTBOX_RETENTION_HOURS", default_value_t = 168)]
    pub outbox_retention_hours: u64,

    /// How long consumers remember the ids of messages they applied (hours). A message can come
    /// again while some outbox may re-publish it, so keep this above every service's
    /// REDRESS_OUTBOX_RETENTION_HOURS.
    #[arg(long, env = "REDRESS_PROCESSED_RETENTION_HOURS", default_value_t = 336)]
    pub processed_retention_hours: u64,

    /// Seconds to finish in-flight work after SIGINT/SIGTERM before exiting anyway.
    #[arg(long, env = "REDRESS_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// When set, a JSON file with the bound addresses is written here once the service is ready
    /// (used by the launcher and the test bed to find services started on port 0).
    #[arg(long, env = "REDRESS_READY_FILE")]
    pub ready_file: Option<PathBuf>,

    /// Test-only fault injection: exit right after the outbox relay published a batch and
    /// before it marked the rows published, to prove that re-publication is deduplicated.
    #[arg(long, env = "REDRESS_FAULT_EXIT_AFTER_PUBLISH", hide = true, default_value_t = false, action = clap::ArgAction::Set)]
    pub fault_exit_after_publish: bool,

    /// Test-only fault injection: exit right after a consumer committed a batch and before it
    /// acknowledged it, to prove that redelivery after a crash has no second effect.
    #[arg(long, env = "REDRESS_FAULT_EXIT_AFTER_COMMIT", hide = true, default_value_t = false, action = clap::ArgAction::Set)]
    pub fault_exit_after_commit: bool,

    /// A file of `KEY=VALUE` lines supplying settings not given on the command line or in the
    /// environment.
    #[arg(long, env = "REDRESS_ENV_FILE")]
    pub env_file: Option<PathBuf>,
}

impl CommonArgs {
    /// The schema this service owns.
    pub fn schema(&self, service: &str) -> String {
        self.db_schema
            .clone()
            .unwrap_or_else(|| service.replace('-', "_"))
    }

    pub fn outbox_poll(&self) -> Duration {
        Duration::from_millis(self.outbox_poll_ms.max(10))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// Parses the command line of a service or tool.
///
/// Before parsing, an env file named by `--env-file` or `REDRESS_ENV_FILE` is read and its values
/// become the defaults of the matching arguments, so precedence is: command line, environment,
/// env file, built-in default. (Values are not put into the process environment: that would
/// need `unsafe` in Rust 2024 and leak into child processes.)
pub fn parse<A: Parser>() -> A {
    parse_with_fallback(None)
}

/// As [`parse`], reading `fallback` as the env file when none is named and it exists: how the
/// `redress` command finds the addresses `redress up` wrote (`.redress/cli.env`).
pub fn parse_with_fallback<A: Parser>(fallback: Option<&std::path::Path>) -> A {
    let argv: Vec<String> = std::env::args().collect();
    let env_file = env_file_from(&argv)
        .or_else(|| std::env::var("REDRESS_ENV_FILE").ok())
        .or_else(|| {
            fallback
                .filter(|p| p.is_file())
                .map(|p| p.display().to_string())
        });
    let mut cmd = A::command();
    if let Some(path) = env_file {
        match read_env_file(&path) {
            Ok(values) => {
                let ids: Vec<(clap::Id, String)> = cmd
                    .get_arguments()
                    .filter_map(|a| {
                        let env = a.get_env()?.to_str()?.to_owned();
                        Some((a.get_id().clone(), env))
                    })
                    .collect();
                for (id, env) in ids {
                    if let Some(v) = values.get(&env) {
                        let v = v.clone();
                        cmd = cmd.mut_arg(id, move |a| a.default_value(v));
                    }
                }
            }
            Err(e) => {
                eprintln!("error: cannot read env file {path}: {e}");
                std::process::exit(2);
            }
        }
    }
    let matches = cmd.get_matches();
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn env_file_from(argv: &[String]) -> Option<String> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--env-file" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--env-file=") {
            return Some(v.to_owned());
        }
    }
    None
}

/// Reads `KEY=VALUE` lines; blank lines and `#` comments are skipped, values may be quoted.
pub fn read_env_file(path: &str) -> std::io::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse_env_lines(&text))
}

fn parse_env_lines(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("export ").unwrap_or(l).split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_skip_comments_and_unquote() {
        let m = parse_env_lines("# c\n\nA=1\nexport B=\"two words\"\nbad line\n");
        assert_eq!(m.get("A").map(String::as_str), Some("1"));
        assert_eq!(m.get("B").map(String::as_str), Some("two words"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn env_file_flag_is_found_in_both_spellings() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            env_file_from(&a(&["x", "--env-file", "f"])),
            Some("f".into())
        );
        assert_eq!(env_file_from(&a(&["x", "--env-file=g"])), Some("g".into()));
        assert_eq!(env_file_from(&a(&["x"])), None);
    }
}
