//! The fault suite (issue 17): bursts of call-centre submissions while something breaks, then a
//! count, per complaint, of everything the system owes it — recorded, assigned, its completion
//! clock, the overdue, the escalation to the manager and then the general manager, their
//! notifications, the one lateness fine — and of anything it got twice.
//!
//! All five services run as processes on a PostgreSQL server of the suite's own (so it can be
//! restarted and held down) and on the pinned nats-server, one node or a three-node JetStream
//! cluster (`--cluster`, streams with three replicas). Limits are seconds long, so every
//! complaint runs its whole course — late, escalated twice, fined once — during the run. An
//! escalation webhook that accepts connections and never answers is configured throughout.
//!
//! Faults, one per row: none (the baseline); `kill -9` of each service, restarted 2 s later;
//! nats-server killed and restarted (single node) or one node killed and later the streams'
//! leader (cluster); PostgreSQL restarted fast, restarted immediate (crash recovery), and held
//! down for `--outage` seconds while submissions keep arriving.
//!
//! Prints one row per fault: acknowledged submissions, what became of them, lost, doubled, and
//! the recovery time (from the fault's end until every submission of the row is assigned). Exits
//! non-zero if anything was lost or doubled.
//!
//! Run: `scripts/faults.sh` (5-minute outage, ~10 minutes), `scripts/faults.sh --short` (the CI
//! version: 20 s outage), `scripts/faults.sh --cluster`. `--self-check` adds one doubled event
//! before counting: the run must then fail, naming it.

// The system tests' broadband complaint, so the suite submits what they submit.
#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt as _;
use prost::Message as _;
use redress_proto::v1::{self, event::Payload};
use redress_test_support::{
    NatsCluster, NatsServer, PostgresServer, ServiceProcess, StopMode, TEST_TOKENS,
};
use sqlx::Connection as _;

const PREFIX: &str = "f";

const POLICY: &str = r#"
[limits]
acceptance = "1h"
warning_share = 0.5
intermediate_share = 0.5
[limits.completion]
A = "6s"
B = "6s"
C = "6s"
D = "6s"
[limits.first_feedback]
A = "1h"
B = "1h"
C = "1h"
D = "1h"
[penalties]
# Every complaint here is late: the handlers would be suspended after three (DOMAIN §7) and
# nobody left to assign.
suspension_threshold = 1000000
[escalation]
l2_after = "4s"
unacknowledged_resend_after = "1h"
unacknowledged_raise_after = "2h"
"#;

const SEED: &str = r#"
default_department = "dept-network"

[[departments]]
id = "dept-network"
name = "Network Operations"
manager_id = "manager-1"
acceptance_owner_id = "manager-1"

[[staff]]
id = "handler-1"
name = "Handler One"
department_id = "dept-network"
role = "handler"

[[staff]]
id = "handler-2"
name = "Handler Two"
department_id = "dept-network"
role = "handler"

[[staff]]
id = "manager-1"
name = "Manager One"
department_id = "dept-network"
role = "department_manager"

[[staff]]
id = "gm-1"
name = "General Manager"
department_id = "dept-network"
role = "general_manager"

[[rules]]
id = "broadband"
category = "network_quality"
department_id = "dept-network"
"#;

const SERVICES: [&str; 5] = [
    "redress-intake",
    "redress-routing",
    "redress-sla-monitor",
    "redress-escalation",
    "redress-revisit",
];

struct Options {
    cluster: bool,
    /// Publishes one extra `complaint.assigned` before counting, to show the count catches it.
    self_check: bool,
    /// Submissions per fault.
    per_fault: usize,
    /// How long PostgreSQL stays down in the outage row.
    outage: Duration,
}

impl Options {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let short = args.iter().any(|a| a == "--short");
        let cluster = args.iter().any(|a| a == "--cluster");
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        Self {
            cluster,
            self_check: args.iter().any(|a| a == "--self-check"),
            per_fault: value("--per-fault").unwrap_or(if short { 40 } else { 100 }) as usize,
            outage: Duration::from_secs(value("--outage").unwrap_or(if short { 20 } else { 300 })),
        }
    }
}

#[derive(Clone, Debug)]
enum Fault {
    None,
    Kill(&'static str),
    NatsRestart,
    NatsNode,
    NatsLeader,
    PgRestart(StopMode),
    PgDown(Duration),
}

impl Fault {
    fn name(&self) -> String {
        match self {
            Fault::None => "none (hung webhook only)".into(),
            Fault::Kill(s) => format!("kill -9 {}", s.trim_start_matches("redress-")),
            Fault::NatsRestart => "nats-server killed, restarted".into(),
            Fault::NatsNode => "one NATS node killed".into(),
            Fault::NatsLeader => "stream leader node killed".into(),
            Fault::PgRestart(StopMode::Fast) => "PostgreSQL restart (fast)".into(),
            Fault::PgRestart(StopMode::Immediate) => "PostgreSQL restart (immediate)".into(),
            Fault::PgDown(d) => format!("PostgreSQL down {} s", d.as_secs()),
        }
    }
}

enum Nats {
    Single(NatsServer),
    Cluster(NatsCluster),
}

impl Nats {
    fn urls(&self) -> String {
        match self {
            Nats::Single(s) => s.url(),
            Nats::Cluster(c) => c.urls(),
        }
    }
}

struct System {
    pg: PostgresServer,
    nats: Nats,
    env: Vec<(String, String)>,
    services: BTreeMap<&'static str, ServiceProcess>,
    js: jetstream::Context,
    _files: tempfile::TempDir,
    _webhook: tokio::task::JoinHandle<()>,
}

/// A webhook endpoint that accepts connections and never answers.
async fn hung_webhook() -> (tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (task, format!("http://{addr}/hook"))
}

async fn connect(urls: &str) -> async_nats::Client {
    let addrs = urls
        .split(',')
        .map(|u| u.parse::<async_nats::ServerAddr>().expect("nats url"))
        .collect::<Vec<_>>();
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .expect("connect to nats")
}

impl System {
    async fn start(opts: &Options) -> Self {
        let pg = PostgresServer::start();
        let mut admin = sqlx::PgConnection::connect(&pg.url("postgres"))
            .await
            .expect("connect to the suite's PostgreSQL");
        sqlx::query("CREATE DATABASE redress")
            .execute(&mut admin)
            .await
            .expect("create database");
        drop(admin);
        let nats = if opts.cluster {
            Nats::Cluster(NatsCluster::start())
        } else {
            Nats::Single(NatsServer::start())
        };
        let files = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let p = files.path().join(name);
            std::fs::write(&p, text).expect("write");
            p.display().to_string()
        };
        let (webhook, url) = hung_webhook().await;
        let escalation = format!(
            "general_manager_id = \"gm-1\"\nlog_channel = true\ntick_ms = 200\n\
             [[webhooks]]\nurl = \"{url}\"\nsecret = \"fault-suite-secret\"\ntimeout_ms = 2000\n"
        );
        let mut env: Vec<(String, String)> = vec![
            ("REDRESS_NATS_URL".into(), nats.urls()),
            ("REDRESS_DATABASE_URL".into(), pg.url("redress")),
            ("REDRESS_SUBJECT_PREFIX".into(), PREFIX.into()),
            ("REDRESS_AUTH_TOKENS".into(), TEST_TOKENS.into()),
            ("REDRESS_OUTBOX_POLL_MS".into(), "100".into()),
            ("REDRESS_ACK_WAIT_SECS".into(), "5".into()),
            ("REDRESS_POLICY_FILE".into(), write("policy.toml", POLICY)),
            ("REDRESS_ROUTING_SEED".into(), write("seed.toml", SEED)),
            (
                "REDRESS_ESCALATION_SETTINGS".into(),
                write("escalation.toml", &escalation),
            ),
            ("RUST_LOG".into(), "info".into()),
        ];
        if opts.cluster {
            env.push(("REDRESS_STREAM_REPLICAS".into(), "3".into()));
        }
        let js = jetstream::new(connect(&nats.urls()).await);
        let mut system = Self {
            pg,
            nats,
            env,
            services: BTreeMap::new(),
            js,
            _files: files,
            _webhook: webhook,
        };
        for name in SERVICES {
            system.spawn(name).await;
        }
        system
    }

    async fn spawn(&mut self, name: &'static str) {
        let p = ServiceProcess::spawn(name, &self.env).await;
        self.services.insert(name, p);
    }

    async fn db(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.pg.url("redress"))
            .await
            .expect("connect")
    }

    /// The node leading the submissions stream (cluster only).
    async fn leader(&self) -> Option<String> {
        let mut stream = self
            .js
            .get_stream(format!("{}_INTAKE", PREFIX.to_ascii_uppercase()))
            .await
            .ok()?;
        stream.info().await.ok()?.cluster.clone()?.leader
    }

    /// Applies the fault and clears it; returns when it is cleared.
    async fn apply(&mut self, fault: &Fault) {
        match fault {
            Fault::None => {}
            Fault::Kill(name) => {
                if let Some(mut p) = self.services.remove(name) {
                    p.kill();
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.spawn(name).await;
            }
            Fault::NatsRestart => {
                if let Nats::Single(s) = &mut self.nats {
                    s.stop();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    s.restart();
                }
            }
            Fault::NatsNode | Fault::NatsLeader => {
                let leader = self.leader().await;
                if let Nats::Cluster(c) = &mut self.nats {
                    let i = match fault {
                        Fault::NatsLeader => leader
                            .as_deref()
                            .and_then(|l| c.index_of(l))
                            .expect("the stream has a leader"),
                        // A node that does not lead the stream.
                        _ => (0..3)
                            .rev()
                            .find(|i| leader.as_deref().and_then(|l| c.index_of(l)) != Some(*i))
                            .unwrap_or(2),
                    };
                    println!(
                        "    killing node n{} (stream leader {:?})",
                        i + 1,
                        leader.unwrap_or_default()
                    );
                    c.nodes[i].stop();
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    c.nodes[i].restart();
                }
            }
            Fault::PgRestart(mode) => self.pg.restart(*mode),
            Fault::PgDown(d) => {
                self.pg.stop(StopMode::Fast);
                tokio::time::sleep(*d).await;
                self.pg.start_again();
            }
        }
    }
}

/// Publishes `keys` spread over `over`, each retried until JetStream acknowledges it (as a call
/// centre's integration does); returns how many attempts were retried.
async fn burst(js: jetstream::Context, keys: Vec<String>, over: Duration) -> usize {
    let subject = format!("{PREFIX}.intake.submit");
    let gap = over / u32::try_from(keys.len().max(1)).unwrap_or(1);
    let mut retries = 0;
    for key in keys {
        let body = v1::SubmitRequest {
            details: Some(common::complaint(&key)),
        }
        .encode_to_vec();
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Type", "application/protobuf");
            let attempt = tokio::time::timeout(Duration::from_secs(5), async {
                js.publish_with_headers(subject.clone(), headers, body.clone().into())
                    .await?
                    .await
                    .map_err(anyhow::Error::from)
            })
            .await;
            match attempt {
                Ok(Ok(_)) => break,
                _ => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        tokio::time::sleep(gap).await;
    }
    retries
}

/// Complaints of one row recorded and assigned, by their keys' prefix.
async fn assigned(system: &System, row: &str) -> Option<i64> {
    let mut db = sqlx::PgConnection::connect(&system.pg.url("redress"))
        .await
        .ok()?;
    sqlx::query_scalar(
        "SELECT count(*) FROM intake.complaints c JOIN routing.handling h USING (complaint_id)
         WHERE c.external_id LIKE $1 AND h.assignee_id <> ''",
    )
    .bind(format!("{row}-%"))
    .fetch_one(&mut db)
    .await
    .ok()
}

struct RowResult {
    fault: String,
    acked: usize,
    retries: usize,
    /// From the fault's end until the row's last complaint was assigned.
    recovery: Option<Duration>,
    /// From the row's last submission until its complaint was assigned.
    drain: Option<Duration>,
}

/// A second `complaint.assigned` for the first complaint of the first row, under a new event id,
/// as a consumer that forgot its idempotence would publish it.
async fn inject_double(system: &System, keys: &[(String, String)]) {
    let (complaint, _) = keys
        .iter()
        .filter(|(_, k)| k.starts_with("r00-"))
        .min_by_key(|(_, k)| k.clone())
        .expect("a complaint of the first row");
    let ev = v1::Event {
        event_id: format!("evt_selfcheck{}", complaint.len()),
        complaint_id: complaint.clone(),
        payload: Some(Payload::ComplaintAssigned(v1::ComplaintAssigned {
            department_id: "dept-network".into(),
            assignee_id: "handler-1".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    system
        .js
        .publish(
            format!("{PREFIX}.events.complaint.assigned"),
            ev.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    println!("self-check: published a second complaint.assigned for {complaint}");
}

/// Every event in the events stream.
async fn all_events(js: &jetstream::Context) -> Vec<v1::Event> {
    let stream = js
        .get_stream(format!("{}_EVENTS", PREFIX.to_ascii_uppercase()))
        .await
        .expect("events stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let pending = consumer.cached_info().num_pending as usize;
    let mut out = Vec::with_capacity(pending);
    let mut messages = consumer.messages().await.expect("messages");
    while out.len() < pending {
        match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
            Ok(Some(Ok(m))) => out.push(v1::Event::decode(m.message.payload).expect("event")),
            _ => break,
        }
    }
    out
}

/// What one complaint got, counted from the event stream and the services' tables.
#[derive(Default, Debug)]
struct Tally {
    received: usize,
    assigned: usize,
    completion_clocks: i64,
    /// Per (clock, overdue day).
    overdues: HashMap<(i32, u32), usize>,
    /// Per level.
    raised: HashMap<u32, usize>,
    /// Per (notification, channel, attempt).
    sent: HashMap<(String, String, u32), usize>,
    /// Escalations whose notification the log channel delivered.
    delivered_log: HashSet<String>,
    escalations: HashSet<String>,
    /// Lateness fines, per clock.
    fines: HashMap<i32, usize>,
    /// Revisits planned per (kind, due time).
    revisits: HashMap<(i32, i64), usize>,
    /// When it was first assigned, and when its completion was due: a lateness fine is owed
    /// only when somebody was assigned by the due time (DOMAIN §7: only where a person is
    /// named) — not when a fault held routing up past the limit.
    assigned_at: Option<(i64, i32)>,
    completion_due: Option<(i64, i32)>,
}

impl Tally {
    /// Whether a lateness fine is owed: assigned no later than the completion limit.
    fn fine_owed(&self) -> bool {
        match (self.assigned_at, self.completion_due) {
            (Some(a), Some(d)) => a <= d,
            _ => true,
        }
    }

    /// (lost, doubled) for this complaint.
    fn verdict(&self) -> (usize, usize) {
        let completion = v1::SlaClock::Completion as i32;
        let mut lost = 0;
        let mut doubled = 0;
        let mut once = |n: usize| {
            if n == 0 {
                lost += 1;
            } else {
                doubled += n - 1;
            }
        };
        once(self.received);
        once(self.assigned);
        once(usize::try_from(self.completion_clocks).unwrap_or(0));
        once(
            self.overdues
                .iter()
                .filter(|((c, _), _)| *c == completion)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0),
        );
        once(self.raised.get(&1).copied().unwrap_or(0));
        once(self.raised.get(&2).copied().unwrap_or(0));
        let fines: usize = self.fines.values().sum();
        if self.fine_owed() {
            once(fines);
        } else {
            // Nobody was assigned by the due time: a fine would be against the wrong person.
            doubled += fines;
        }
        doubled += extra(self.overdues.values())
            + extra(self.sent.values())
            + extra(self.revisits.values());
        lost += self.escalations.difference(&self.delivered_log).count();
        (lost, doubled)
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// Beyond the first, how many times each fact came.
fn extra<'a>(counts: impl Iterator<Item = &'a usize>) -> usize {
    counts.map(|n| n.saturating_sub(1)).sum()
}

#[tokio::main]
async fn main() {
    let opts = Options::parse();
    println!(
        "fault suite: {} submissions per fault, PostgreSQL outage {} s, NATS {}",
        opts.per_fault,
        opts.outage.as_secs(),
        if opts.cluster {
            "three-node cluster (R3 streams)"
        } else {
            "single node"
        }
    );
    let mut system = System::start(&opts).await;
    let mut faults = vec![Fault::None];
    faults.extend(SERVICES.iter().map(|s| Fault::Kill(s)));
    if opts.cluster {
        faults.extend([Fault::NatsNode, Fault::NatsLeader]);
    } else {
        faults.push(Fault::NatsRestart);
    }
    faults.extend([
        Fault::PgRestart(StopMode::Fast),
        Fault::PgRestart(StopMode::Immediate),
        Fault::PgDown(opts.outage),
    ]);

    let mut rows: Vec<RowResult> = Vec::new();
    for (n, fault) in faults.iter().enumerate() {
        let row = format!("r{n:02}");
        let keys: Vec<String> = (0..opts.per_fault)
            .map(|i| format!("{row}-{i:05}"))
            .collect();
        let acked = keys.len();
        // The burst arrives while the fault lasts (the outage: throughout, and a little after),
        // so the recovery time is the time to catch up once it is cleared.
        let over = match fault {
            Fault::PgDown(d) => *d + Duration::from_secs(2),
            _ => Duration::from_secs(3),
        };
        println!("{row}: {} …", fault.name());
        let publisher = tokio::spawn(burst(system.js.clone(), keys, over));
        tokio::time::sleep(Duration::from_millis(500)).await;
        system.apply(fault).await;
        let cleared = Instant::now();
        let retries = publisher.await.expect("publisher");
        let published = Instant::now();
        let deadline = cleared + Duration::from_secs(180) + opts.outage;
        let drained = loop {
            if assigned(&system, &row).await == Some(acked as i64) {
                break Some(Instant::now());
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let r = RowResult {
            fault: fault.name(),
            acked,
            retries,
            recovery: drained.map(|d| d - cleared),
            drain: drained.map(|d| d - published),
        };
        println!(
            "    {} acknowledged, {} publish retries, recovered {}, drained {} after the last",
            acked,
            retries,
            secs(r.recovery),
            secs(r.drain)
        );
        rows.push(r);
    }

    // Every complaint runs its course: late at 6 s, the manager told, the general manager 4 s
    // later, one fine (when somebody was assigned in time). Wait until the last row's have,
    // then count everything.
    let total = rows.iter().map(|r| r.acked).sum::<usize>() as i64;
    let settle = Instant::now() + Duration::from_secs(120);
    let mut db = system.db().await;
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT complaint_id) FROM escalation.escalations WHERE level = 2",
        )
        .fetch_one(&mut db)
        .await
        .unwrap_or(0);
        // Fines come with the overdue, or with an assignment heard of late — before the
        // general manager's step in either case.
        if done >= total || Instant::now() >= settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Log deliveries follow their escalations within a tick.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let keys: Vec<(String, String)> =
        sqlx::query_as("SELECT complaint_id, external_id FROM intake.complaints")
            .fetch_all(&mut db)
            .await
            .expect("complaints");
    let clocks: Vec<(String, i64)> = sqlx::query_as(
        "SELECT complaint_id, count(*) FROM sla_monitor.clocks WHERE kind = 'completion'
         GROUP BY complaint_id",
    )
    .fetch_all(&mut db)
    .await
    .expect("clocks");
    let row_of: HashMap<String, String> = keys
        .iter()
        .map(|(id, key)| (id.clone(), key.split('-').next().unwrap_or("").to_owned()))
        .collect();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for (_, key) in &keys {
        *per_key.entry(key.as_str()).or_default() += 1;
    }
    let mut tallies: HashMap<String, Tally> = keys
        .iter()
        .map(|(id, _)| (id.clone(), Tally::default()))
        .collect();
    for (id, n) in clocks {
        if let Some(t) = tallies.get_mut(&id) {
            t.completion_clocks = n;
        }
    }
    if opts.self_check {
        inject_double(&system, &keys).await;
    }
    let events = all_events(&system.js).await;
    // Escalation and notification events name the escalation; map it to its complaint.
    let mut escalation_of: HashMap<String, String> = HashMap::new();
    for ev in &events {
        if let Some(Payload::EscalationRaised(e)) = &ev.payload {
            escalation_of.insert(e.escalation_id.clone(), ev.complaint_id.clone());
        }
    }
    // The event ids behind each fact, to show what a doubling was (one event published twice,
    // or two events for one fact).
    let mut facts: HashMap<(String, String), Vec<String>> = HashMap::new();
    for ev in &events {
        let fact = match &ev.payload {
            Some(Payload::ComplaintAssigned(_)) => Some("assigned".to_owned()),
            Some(Payload::EscalationRaised(e)) => Some(format!("raised {}", e.escalation_id)),
            Some(Payload::NotificationSent(n)) => Some(format!(
                "sent {} {} {}",
                n.notification_id, n.channel, n.attempt
            )),
            Some(Payload::SlaOverdue(o)) => Some(format!("overdue {} {}", o.clock, o.overdue_day)),
            Some(Payload::AccountabilityRecorded(a)) => {
                Some(format!("fine {} {}", a.reason, a.clock))
            }
            _ => None,
        };
        if let Some(fact) = fact {
            facts
                .entry((ev.complaint_id.clone(), fact))
                .or_default()
                .push(ev.event_id.clone());
        }
    }
    for ev in &events {
        let complaint = match &ev.payload {
            Some(Payload::NotificationSent(n)) => escalation_of.get(&n.escalation_id).cloned(),
            Some(Payload::NotificationDelivered(n)) => escalation_of.get(&n.escalation_id).cloned(),
            _ => Some(ev.complaint_id.clone()),
        };
        let Some(t) = complaint.and_then(|c| tallies.get_mut(&c)) else {
            continue;
        };
        match &ev.payload {
            Some(Payload::ComplaintReceived(_)) => t.received += 1,
            Some(Payload::ComplaintAssigned(_)) => {
                t.assigned += 1;
                let at = ev.occurred_at.as_ref().map(|t| (t.seconds, t.nanos));
                t.assigned_at = t.assigned_at.min(at).or(at);
            }
            Some(Payload::SlaOverdue(o)) => {
                *t.overdues.entry((o.clock, o.overdue_day)).or_default() += 1;
                if o.clock == v1::SlaClock::Completion as i32 {
                    t.completion_due = o.due_at.as_ref().map(|t| (t.seconds, t.nanos));
                }
            }
            Some(Payload::EscalationRaised(e)) => {
                *t.raised.entry(e.level).or_default() += 1;
                t.escalations.insert(e.escalation_id.clone());
            }
            Some(Payload::NotificationSent(n)) => {
                *t.sent
                    .entry((n.notification_id.clone(), n.channel.clone(), n.attempt))
                    .or_default() += 1;
            }
            Some(Payload::NotificationDelivered(n)) if n.channel == "log" => {
                t.delivered_log.insert(n.escalation_id.clone());
            }
            Some(Payload::AccountabilityRecorded(a))
                if a.reason == v1::AccountabilityReason::Overdue as i32 =>
            {
                *t.fines.entry(a.clock).or_default() += 1;
            }
            Some(Payload::RevisitScheduled(r)) => {
                let due = r.due_at.as_ref().map_or(0, |d| d.seconds);
                *t.revisits.entry((r.kind, due)).or_default() += 1;
            }
            _ => {}
        }
    }

    println!();
    println!(
        "{:<34} {:>6} {:>8} {:>8} {:>6} {:>6} {:>8} {:>6} {:>8} {:>10} {:>8}",
        "fault",
        "acked",
        "recorded",
        "assigned",
        "late",
        "fined",
        "retries",
        "lost",
        "doubled",
        "recovery",
        "drain"
    );
    let mut bad = 0;
    for (n, r) in rows.iter().enumerate() {
        let row = format!("r{n:02}");
        let mine: Vec<&Tally> = tallies
            .iter()
            .filter(|(id, _)| row_of.get(*id).map(String::as_str) == Some(row.as_str()))
            .map(|(_, t)| t)
            .collect();
        let recorded = mine.len();
        let assigned = mine.iter().filter(|t| t.assigned > 0).count();
        let fined = mine
            .iter()
            .filter(|t| t.fines.values().sum::<usize>() > 0)
            .count();
        let assigned_late = mine.iter().filter(|t| !t.fine_owed()).count();
        let mut lost = r.acked.saturating_sub(recorded);
        let mut doubled: usize = per_key
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{row}-")))
            .map(|(_, n)| n - 1)
            .sum();
        for t in &mine {
            let (l, d) = t.verdict();
            lost += l;
            doubled += d;
        }
        bad += lost + doubled;
        println!(
            "{:<34} {:>6} {:>8} {:>8} {:>6} {:>6} {:>8} {:>6} {:>8} {:>10} {:>8}",
            r.fault,
            r.acked,
            recorded,
            assigned,
            assigned_late,
            fined,
            r.retries,
            lost,
            doubled,
            secs(r.recovery),
            secs(r.drain)
        );
    }
    println!(
        "(late: assigned only after the completion limit, so no lateness fine is owed; recovery: \
         from the fault's end until the row's last complaint was assigned, traffic still \
         arriving; drain: from the row's last submission)"
    );
    // Nothing failed on its content here: a dead letter would be a message lost to a fault.
    let dead: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM intake.dead_letters) + (SELECT count(*) FROM routing.dead_letters)
              + (SELECT count(*) FROM sla_monitor.dead_letters)
              + (SELECT count(*) FROM escalation.dead_letters)
              + (SELECT count(*) FROM revisit.dead_letters)",
    )
    .fetch_one(&mut db)
    .await
    .expect("dead letters");
    println!("dead letters: {dead}");
    bad += usize::try_from(dead).unwrap_or(usize::MAX);
    if bad > 0 {
        // Show one complaint that went wrong, and the services' recent logs.
        if let Some((id, t)) = tallies.iter().find(|(_, t)| t.verdict() != (0, 0)) {
            eprintln!("\nfirst complaint with a fault: {id}: {t:?}");
        }
        for ((complaint, fact), ids) in facts.iter().filter(|(_, ids)| ids.len() > 1) {
            eprintln!("doubled: {complaint} {fact}: events {ids:?}");
        }
        for (name, p) in &system.services {
            let logs = p.logs();
            let tail: Vec<&str> = logs.lines().rev().take(15).collect();
            eprintln!("\n---- {name} (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        eprintln!("\nFAILED: {bad} lost or doubled");
        std::process::exit(1);
    }
    println!("\nall rows: 0 lost, 0 doubled");
}
