//! `redress up`: the one command that starts the whole system on a developer's machine.
//!
//! In order: check that the five service binaries are built (before starting anything, so a
//! missing build costs nothing), make sure PostgreSQL answers, find or start a current NATS
//! server, start the services next to this executable with one shared configuration, wait for
//! their ready files and print where everything listens. Then supervise until Ctrl-C /
//! SIGTERM (exit 0) or until a service dies (exit 1); either way the services are stopped
//! first, then the NATS server we started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::children::{Ready, ServiceSpec, Stopped, Supervisor};
use crate::console::Console;
use crate::demo;
use crate::infra::{self, NatsOptions};
use crate::signals::Signals;

/// The services, in start order. Their default ports follow this order: gRPC 50051–50056,
/// metrics 9101–9106; the board also serves HTTP on 8080 (the wallboard, the event gateway).
pub(crate) const SERVICES: [&str; 6] = [
    "intake",
    "routing",
    "sla-monitor",
    "escalation",
    "revisit",
    "board",
];

/// The board's default HTTP port, moved by `--port-offset` like the others.
const BOARD_HTTP_PORT: u32 = 8080;

/// First default gRPC and metrics ports (the services' own defaults), for `--port-offset`.
const GRPC_BASE_PORT: u32 = 50051;
const METRICS_BASE_PORT: u32 = 9101;

/// Tokens for local development only: one per role, so every gRPC method can be tried.
/// Format: `token=actor_id:role[@department[+department…]]:Display Name`, comma separated;
/// the departments are those of the sample organisation (`deploy/demo/seed.toml`).
pub const DEV_AUTH_TOKENS: &str = "dev-operator-token=ops:operator:Operator,\
dev-agent-token=agent-1:customer_service_agent:Agent One,\
dev-handler-token=handler-1:handler@dept-network:Handler One,\
dev-manager-token=manager-1:department_manager@dept-network+dept-billing:Manager One,\
dev-gm-token=gm-1:general_manager:General Manager,\
dev-integration-token=callcentre:integration:Call Centre,\
dev-viewer-token=wall-1:viewer:Wall Screen";

/// Start NATS (if needed), check PostgreSQL, run the five services, stop all on Ctrl-C.
#[derive(Debug, Args)]
#[command(
    after_long_help = "Every service gets REDRESS_NATS_URL, REDRESS_DATABASE_URL, \
REDRESS_SUBJECT_PREFIX, REDRESS_AUTH_TOKENS and REDRESS_READY_FILE from the launcher, and \
inherits the rest of its environment (other REDRESS_* settings, RUST_LOG, OTEL_*). \
REDRESS_GRPC_ADDR and REDRESS_METRICS_ADDR are not passed on (five services cannot share one \
address): use --port-offset.\n\nFiles under the data directory: nats/ (JetStream store of our own \
nats-server), logs/<service>.log and logs/nats.log, run/<service>.json (ready files)."
)]
pub struct UpArgs {
    /// NATS server to use if it is current (nats-server 2.12.3 or newer, JetStream on). If none
    /// answers there, or it is older (Debian's 2.9.10), `redress up` starts its own, pinned
    /// server on --own-nats-port and stops it on exit.
    #[arg(
        long,
        env = "REDRESS_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// Port of the NATS server `redress up` starts when --nats-url will not do. A current
    /// server already answering there (left by an earlier run) is reused.
    #[arg(long, env = "REDRESS_OWN_NATS_PORT", default_value_t = 4223)]
    pub own_nats_port: u16,

    /// nats-server binary to start. Default: <workspace>/.tools/nats/bin/nats-server
    /// (installed by scripts/tools.sh), else `nats-server` on the PATH if it is current.
    #[arg(long, env = "REDRESS_NATS_SERVER_BIN")]
    pub nats_server_bin: Option<PathBuf>,

    /// PostgreSQL the services use. The server must answer (its `postgres` database is tried);
    /// the services create the database itself. A stopped local cluster is started with
    /// pg_ctlcluster.
    #[arg(
        long,
        env = "REDRESS_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/redress"
    )]
    pub database_url: String,

    /// If PostgreSQL is not installed, install it (`apt-get install -y postgresql`, root only)
    /// and start it. Without this flag the launcher prints the commands instead.
    #[arg(long, env = "REDRESS_INSTALL")]
    pub install: bool,

    /// Prefix of every NATS subject and stream name, shared by all services.
    #[arg(long, env = "REDRESS_SUBJECT_PREFIX", default_value = "redress")]
    pub subject_prefix: String,

    /// Bearer-token table for the gRPC APIs: `token=actor_id:role[:Display Name],…`.
    /// Default, for local development only (printed at start):
    ///   dev-operator-token    = ops        operator
    ///   dev-agent-token       = agent-1    customer_service_agent
    ///   dev-handler-token     = handler-1  handler
    ///   dev-manager-token     = manager-1  department_manager
    ///   dev-gm-token          = gm-1       general_manager
    ///   dev-integration-token = callcentre integration
    #[arg(
        long,
        env = "REDRESS_AUTH_TOKENS",
        default_value = DEV_AUTH_TOKENS,
        hide_default_value = true,
        hide_env_values = true,
        verbatim_doc_comment
    )]
    pub auth_tokens: String,

    /// Shift every service's ports by N: gRPC 127.0.0.1:(50051+i+N), metrics
    /// 127.0.0.1:(9101+i+N), i = 0..4 in the order intake, routing, sla-monitor, escalation,
    /// revisit. Without it each service uses its own default port.
    #[arg(long, env = "REDRESS_PORT_OFFSET", value_name = "N")]
    pub port_offset: Option<u16>,

    /// Directory for the NATS store, logs and ready files.
    #[arg(long, env = "REDRESS_DATA_DIR", default_value = ".redress")]
    pub data_dir: PathBuf,

    /// How long the services may take to become ready (first start creates the database and
    /// runs migrations).
    #[arg(
        long,
        env = "REDRESS_READY_TIMEOUT_SECS",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub ready_timeout_secs: u64,

    /// How long the services get to stop after SIGTERM before they are killed.
    #[arg(
        long,
        env = "REDRESS_STOP_GRACE_SECS",
        default_value_t = 15,
        value_name = "SECS"
    )]
    pub stop_grace_secs: u64,

    /// Play the demo: start the services with the accelerated policy of `deploy/demo/` (limits
    /// of seconds), in a fresh database and under a fresh subject prefix, and drive a few
    /// realistic complaints through them, printing every event as a live timeline.
    #[arg(long, env = "REDRESS_DEMO")]
    pub demo: bool,

    /// With `--demo`: stop everything once the demo has played (for scripts).
    #[arg(long, requires = "demo")]
    pub exit_after_demo: bool,
}

/// Runs `redress up` to the end: `Ok` after a requested stop, `Err` if anything failed.
pub async fn run(args: UpArgs) -> Result<()> {
    let console = Console::detect();
    // Before anything is started, so that a Ctrl-C at any point still stops what is running.
    let mut signals = Signals::register()?;

    let binaries = service_binaries()?;
    let ports = port_plan(args.port_offset)?;
    check_ports_free(args.port_offset)?;
    let data_dir = std::path::absolute(&args.data_dir)
        .with_context(|| format!("--data-dir {}", args.data_dir.display()))?;
    for sub in ["logs", "run", "nats"] {
        let dir = data_dir.join(sub);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    let mut args = args;
    let extra_env = if args.demo {
        prepare_demo(&mut args, &data_dir)?
    } else {
        sample_organisation(&data_dir, &console)?
    };
    let console = if args.demo {
        console.with_quiet_services()
    } else {
        console
    };

    let postgres = tokio::select! {
        r = infra::ensure_postgres(&args.database_url, args.install, &console) => r?,
        sig = signals.recv() => {
            console.say(&format!("{sig} received: nothing started, stopping"));
            return Ok(());
        }
    };
    console.say(&format!("PostgreSQL: {postgres}"));

    let nats_options = NatsOptions {
        url: &args.nats_url,
        own_port: args.own_nats_port,
        server_bin: args.nats_server_bin.as_deref(),
        store_dir: data_dir.join("nats"),
        log_file: data_dir.join("logs/nats.log"),
    };
    // Dropping a half-started own server on a signal kills it (kill_on_drop).
    let nats = tokio::select! {
        r = infra::ensure_nats(nats_options, &console) => r?,
        sig = signals.recv() => {
            console.say(&format!("{sig} received while starting NATS: stopping"));
            return Ok(());
        }
    };
    console.say(&format!("NATS: {}", nats.description));
    if args.demo {
        let run = args.subject_prefix.trim_start_matches("demo");
        for note in demo::forget_earlier_runs(&args.database_url, &nats.url, run).await {
            console.say(&note);
        }
    }

    let mut supervisor = Supervisor::new(console);
    let plan = Plan {
        args: &args,
        binaries,
        ports,
        data_dir: &data_dir,
        nats_url: &nats.url,
        summary: [
            ("NATS", nats.description.as_str()),
            ("PostgreSQL", &postgres),
        ],
        extra_env,
    };
    let result = supervise(&plan, &mut supervisor, &mut signals, &console).await;
    if let Err(e) = &result {
        console.warn(&format!("{e:#}: stopping everything"));
    }
    supervisor
        .shutdown(Duration::from_secs(args.stop_grace_secs), &mut signals)
        .await;
    if let Some(own) = nats.own {
        own.stop(&console).await;
    }
    if result.is_ok() {
        console.say("all stopped");
    }
    result
}

/// What `supervise` needs, gathered once the infrastructure is up.
struct Plan<'a> {
    args: &'a UpArgs,
    binaries: Vec<PathBuf>,
    ports: Option<Vec<(String, String)>>,
    data_dir: &'a Path,
    nats_url: &'a str,
    summary: [(&'a str, &'a str); 2],
    /// Extra environment for the services: the demo's world, or the sample organisation.
    extra_env: Vec<(String, String)>,
}

/// Starts the services, waits until they are ready, prints the table, and watches them.
async fn supervise(
    plan: &Plan<'_>,
    supervisor: &mut Supervisor,
    signals: &mut Signals,
    console: &Console,
) -> Result<()> {
    let args = plan.args;
    if args.auth_tokens == DEV_AUTH_TOKENS {
        console.say(
            "auth: using the local development tokens (set REDRESS_AUTH_TOKENS to replace them):\n\
             \x20 dev-operator-token     operator                (ops)\n\
             \x20 dev-agent-token        customer_service_agent  (agent-1)\n\
             \x20 dev-handler-token      handler                 (handler-1, dept-network)\n\
             \x20 dev-manager-token      department_manager      (manager-1, dept-network and dept-billing)\n\
             \x20 dev-gm-token           general_manager         (gm-1)\n\
             \x20 dev-integration-token  integration             (callcentre)\n\
             \x20 dev-viewer-token       viewer, reads only      (wall-1: the wallboard)\n\
             \x20 gRPC calls send `authorization: Bearer <token>`",
        );
    } else {
        console.say("auth: using the token table from REDRESS_AUTH_TOKENS / --auth-tokens");
    }

    let mut env_remove = Vec::new();
    if plan.ports.is_none() {
        for var in ["REDRESS_GRPC_ADDR", "REDRESS_METRICS_ADDR"] {
            if std::env::var_os(var).is_some() {
                console.warn(&format!(
                    "ignoring {var} from the environment: each service keeps its own default \
                     port (use --port-offset to move them)"
                ));
                env_remove.push(var.to_owned());
            }
        }
    }

    for (i, (name, binary)) in SERVICES.iter().zip(&plan.binaries).enumerate() {
        let ready_file = plan.data_dir.join("run").join(format!("{name}.json"));
        let mut env = vec![
            ("REDRESS_NATS_URL".to_owned(), plan.nats_url.to_owned()),
            ("REDRESS_DATABASE_URL".to_owned(), args.database_url.clone()),
            (
                "REDRESS_SUBJECT_PREFIX".to_owned(),
                args.subject_prefix.clone(),
            ),
            ("REDRESS_AUTH_TOKENS".to_owned(), args.auth_tokens.clone()),
            (
                "REDRESS_READY_FILE".to_owned(),
                ready_file.display().to_string(),
            ),
        ];
        env.extend(plan.extra_env.iter().cloned());
        if let Some((grpc, metrics)) = plan.ports.as_ref().and_then(|p| p.get(i)) {
            env.push(("REDRESS_GRPC_ADDR".to_owned(), grpc.clone()));
            env.push(("REDRESS_METRICS_ADDR".to_owned(), metrics.clone()));
        }
        if *name == "board"
            && let Some(offset) = args.port_offset
        {
            let port = BOARD_HTTP_PORT + u32::from(offset);
            env.push((
                "REDRESS_BOARD_HTTP_ADDR".to_owned(),
                format!("127.0.0.1:{port}"),
            ));
        }
        // The services' logs are read through a pipe; tell them not to colour when we don't.
        if !console.colour() && std::env::var_os("NO_COLOR").is_none() {
            env.push(("NO_COLOR".to_owned(), "1".to_owned()));
        }
        supervisor.spawn(ServiceSpec {
            name,
            binary: binary.clone(),
            env,
            env_remove: env_remove.clone(),
            ready_file,
            log_file: plan.data_dir.join("logs").join(format!("{name}.log")),
        })?;
    }

    let timeout = Duration::from_secs(args.ready_timeout_secs);
    let Some(ready) = supervisor.wait_ready(timeout, signals).await? else {
        return Ok(());
    };
    print_table(console, &ready, &plan.summary, plan.data_dir);
    let env_file = write_cli_env(
        plan.data_dir,
        &ready,
        args.auth_tokens.starts_with(DEV_AUTH_TOKENS),
    )
    .with_context(|| format!("writing {}", plan.data_dir.join("cli.env").display()))?;
    let default_place = std::path::absolute(CLI_ENV_FILE).ok();
    console.say(&if default_place.as_deref() == Some(env_file.as_path()) {
        format!(
            "The redress command reads the addresses from {} (from this directory).",
            env_file.display()
        )
    } else {
        format!(
            "For the redress command: export REDRESS_ENV_FILE={}",
            env_file.display()
        )
    });

    if args.demo {
        let addr = |name: &str| {
            ready
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.grpc.clone())
                .unwrap_or_default()
        };
        let endpoints = demo::Endpoints {
            intake: addr("intake"),
            routing: addr("routing"),
            revisit: addr("revisit"),
            nats_url: plan.nats_url.to_owned(),
            prefix: args.subject_prefix.clone(),
        };
        tokio::select! {
            played = demo::play(&endpoints) => {
                played?;
                if args.exit_after_demo {
                    return Ok(());
                }
                console.say("The system keeps running with the demo's data; Ctrl-C stops everything.");
            }
            stopped = supervisor.watch(signals) => return stop_reason(stopped, supervisor, console),
        }
    }

    let stopped = supervisor.watch(signals).await;
    stop_reason(stopped, supervisor, console)
}

/// Why the system is stopping: Ctrl-C is fine; a service dying on its own is an error, shown
/// with the end of its log.
fn stop_reason(stopped: Stopped, supervisor: &Supervisor, console: &Console) -> Result<()> {
    match stopped {
        Stopped::Signal(sig) => {
            console.say(&format!("{sig} received: stopping"));
            Ok(())
        }
        Stopped::Exited { name, status } => {
            supervisor.print_tail(name);
            bail!("{name} exited unexpectedly ({status})")
        }
    }
}

/// Where everything listens, once all are ready.
/// Where the `redress` command looks for the addresses `up` wrote, relative to the directory it
/// runs in (the default `--data-dir`).
pub const CLI_ENV_FILE: &str = ".redress/cli.env";

/// Writes the services' addresses (and, with the development tokens, the agent's token) for the
/// `redress` command, so staff commands reach this system whatever `--port-offset` chose.
fn write_cli_env(data_dir: &Path, ready: &[Ready], dev_tokens: bool) -> Result<PathBuf> {
    let mut text = String::from(
        "# Written by `redress up`: where this system's services listen. The redress command\n\
         # reads it from .redress/cli.env, or from REDRESS_ENV_FILE; flags and variables win.\n",
    );
    for r in ready {
        let var = match r.name {
            "sla-monitor" => "REDRESS_SLA_ADDR".to_owned(),
            name => format!("REDRESS_{}_ADDR", name.to_ascii_uppercase()),
        };
        text += &format!("{var}={}\n", r.grpc);
    }
    if dev_tokens {
        text += "# A local development token (the complaint centre's agent); see `redress up`.\n";
        text += "REDRESS_TOKEN=dev-agent-token\n";
    }
    let path = data_dir.join("cli.env");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn print_table(console: &Console, ready: &[Ready], summary: &[(&str, &str)], data_dir: &Path) {
    let mut text = String::from("\nRedress is up.\n\n");
    text += &format!("  {:<12} {:<22} {}\n", "service", "gRPC", "metrics");
    for r in ready {
        let metrics = r
            .metrics
            .as_deref()
            .map_or_else(|| "off".to_owned(), |m| format!("http://{m}/metrics"));
        text += &format!("  {:<12} {:<22} {}\n", r.name, r.grpc, metrics);
    }
    if let Some(http) = ready.iter().find_map(|r| r.http.as_deref()) {
        text += &format!(
            "\n  {:<12} http://{http}/?access_token=<a token; dev-viewer-token locally>\n  {:<12} http://{http}/events (Server-Sent Events; docs/events)\n",
            "wallboard", "events"
        );
    }
    text += "\n";
    for (what, desc) in summary {
        text += &format!("  {what:<12} {desc}\n");
    }
    text += &format!("  {:<12} {}\n", "logs", data_dir.join("logs").display());
    text += "\nPress Ctrl-C to stop everything (services first, then NATS).\n";
    console.say(&console.paint("1", &text));
}

/// The five service binaries, expected next to this executable (cargo puts all of a
/// workspace's binaries in one `target/<profile>` directory).
fn service_binaries() -> Result<Vec<PathBuf>> {
    let exe = std::env::current_exe().context("finding the redress executable")?;
    let dir = exe
        .parent()
        .with_context(|| format!("{} has no parent directory", exe.display()))?;
    let binaries: Vec<PathBuf> = SERVICES
        .iter()
        .map(|name| dir.join(format!("redress-{name}")))
        .collect();
    let missing: Vec<String> = binaries
        .iter()
        .filter(|b| !b.is_file())
        .filter_map(|b| b.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "service binaries missing from {}: {}\nBuild them with:\n    cargo build --workspace --bins\n\
             (scripts/up.sh builds and starts everything)",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(binaries)
}

/// Fails early, before anything is started, when a service's port is taken: most often by
/// another `redress up` still running. Otherwise five services would start and die one by one
/// on "address already in use".
///
/// The default gRPC ports (50051–50055) lie inside Linux's ephemeral range, from which the kernel
/// takes the local port of every outgoing connection: one may hold a port for a moment. So a taken
/// port is looked at again for a few seconds before giving up, and the message says which ports
/// lie in that range.
fn check_ports_free(offset: Option<u16>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let taken = taken_ports(offset);
        if taken.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            let (low, high) = ephemeral_range();
            let ephemeral = taken.iter().any(|(port, _)| (low..=high).contains(port));
            bail!(
                "ports already in use on 127.0.0.1: {}.\nIs another `redress up` running? Stop \
                 it, or move this one with --port-offset N{}",
                taken
                    .iter()
                    .map(|(_, what)| what.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if ephemeral {
                    format!(
                        " (an offset that puts every port outside the kernel's ephemeral range \
                         {low}–{high}, such as 11000, cannot collide with outgoing connections)"
                    )
                } else {
                    String::new()
                }
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// The services' ports that cannot be bound now, with what each is for.
fn taken_ports(offset: Option<u16>) -> Vec<(u16, String)> {
    let offset = u32::from(offset.unwrap_or(0));
    let mut taken = Vec::new();
    for (i, name) in (0u32..).zip(SERVICES) {
        for (what, base) in [("gRPC", GRPC_BASE_PORT), ("metrics", METRICS_BASE_PORT)] {
            let Ok(port) = u16::try_from(base + i + offset) else {
                continue; // port_plan reports it
            };
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                taken.push((port, format!("{port} ({name} {what})")));
            }
        }
    }
    if let Ok(port) = u16::try_from(BOARD_HTTP_PORT + offset)
        && std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
    {
        taken.push((port, format!("{port} (board HTTP)")));
    }
    taken
}

/// The kernel's ephemeral port range (Linux's default when unreadable).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// `(grpc, metrics)` addresses per service when `--port-offset` is given; `None` keeps the
/// services' own defaults.
fn port_plan(offset: Option<u16>) -> Result<Option<Vec<(String, String)>>> {
    let Some(offset) = offset else {
        return Ok(None);
    };
    let port = |base: u32, i: usize| -> Result<u16> {
        let p = base + u32::try_from(i)? + u32::from(offset);
        u16::try_from(p).with_context(|| format!("--port-offset {offset}: port {p} is too high"))
    };
    (0..SERVICES.len())
        .map(|i| {
            Ok((
                format!("127.0.0.1:{}", port(GRPC_BASE_PORT, i)?),
                format!("127.0.0.1:{}", port(METRICS_BASE_PORT, i)?),
            ))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A first start must route complaints (issue 14: a fresh install dead-lettered every one): unless
/// the operator names an organisation (`REDRESS_ROUTING_SEED`), routing is given the sample one —
/// the demo's departments, staff matching the development tokens, the complaint centre and rules
/// by category — to load only when its database has no organisation yet, so an organisation
/// built later is never overwritten.
fn sample_organisation(data_dir: &Path, console: &Console) -> Result<Vec<(String, String)>> {
    if let Some(own) = std::env::var_os("REDRESS_ROUTING_SEED") {
        console.say(&format!(
            "organisation: routing applies REDRESS_ROUTING_SEED ({})",
            own.to_string_lossy()
        ));
        return Ok(Vec::new());
    }
    let path = data_dir.join("sample-organisation.toml");
    std::fs::write(&path, demo::SEED).with_context(|| format!("writing {}", path.display()))?;
    console.say(&format!(
        "organisation: if routing's database has none yet, it loads the sample organisation \
         ({}): departments dept-network, dept-billing and the complaint centre dept-centre; \
         handler-1, handler-2, manager-1, centre-1, gm-1; rules by category. Use your own with \
         REDRESS_ROUTING_SEED=<file> (format: docs/adr/0013).",
        path.display()
    ));
    Ok(vec![
        (
            "REDRESS_ROUTING_SEED".to_owned(),
            path.display().to_string(),
        ),
        (
            "REDRESS_ROUTING_SEED_IF_EMPTY".to_owned(),
            "true".to_owned(),
        ),
    ])
}

/// Points the run at a fresh demo world: the demo's policy, organisation and escalation settings
/// (written into the data directory), a database and a subject prefix of its own per run (the
/// services create the database), and a second handler's token. Returns the extra environment
/// for the services.
fn prepare_demo(args: &mut UpArgs, data_dir: &Path) -> Result<Vec<(String, String)>> {
    let dir = data_dir.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| -> Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    };
    let policy = write("policy.toml", demo::POLICY)?;
    let seed = write("seed.toml", demo::SEED)?;
    let escalation = write("escalation.toml", demo::ESCALATION)?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // A fresh world per run: old demo events and rows never leak into a new demo.
    args.subject_prefix = format!("demo{run}");
    if let Some((base, _)) = args.database_url.rsplit_once('/') {
        args.database_url = format!("{base}/redress_demo_{run}");
    }
    if args.auth_tokens == DEV_AUTH_TOKENS {
        args.auth_tokens = format!("{DEV_AUTH_TOKENS},{}", demo::EXTRA_TOKENS);
    }
    Ok(vec![
        ("REDRESS_POLICY_FILE".to_owned(), policy),
        ("REDRESS_ROUTING_SEED".to_owned(), seed),
        ("REDRESS_ESCALATION_SETTINGS".to_owned(), escalation),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_offset_shifts_both_ports() {
        assert!(port_plan(None).unwrap().is_none());
        let plan = port_plan(Some(100)).unwrap().unwrap();
        assert_eq!(
            plan[0],
            ("127.0.0.1:50151".to_owned(), "127.0.0.1:9201".to_owned())
        );
        assert_eq!(
            plan[4],
            ("127.0.0.1:50155".to_owned(), "127.0.0.1:9205".to_owned())
        );
        assert_eq!(
            plan[5],
            ("127.0.0.1:50156".to_owned(), "127.0.0.1:9206".to_owned()),
            "the board follows the five"
        );
        assert!(port_plan(Some(20000)).is_err());
    }

    #[test]
    fn dev_tokens_have_one_entry_per_role() {
        let entries: Vec<&str> = DEV_AUTH_TOKENS.split(',').collect();
        assert_eq!(entries.len(), 7);
        for e in entries {
            let (token, who) = e.split_once('=').unwrap();
            assert!(token.len() >= 8, "{token}");
            assert_eq!(who.split(':').count(), 3, "{e}");
        }
    }
}
