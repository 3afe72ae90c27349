//! The whole pipeline end to end: confirmed call-centre submissions published on the bus →
//! intake records and classifies them → routing routes and assigns each to a handler → the SLA
//! monitor sets its clocks; all five services running, as in production. Measured beside the
//! raw ceilings of this machine in the same run (JetStream publish, PostgreSQL commits).
//!
//! The backlog is published first (as a call centre's queue arrives after an outage), then the
//! drain is timed per stage; latency is publish → `complaint.assigned` committed, per
//! complaint. Then half as many are published at half the rate reached, paced: the latency of
//! a system that keeps up. CPU and memory per process (PostgreSQL's processes summed) and the
//! mean messages per consumer batch say where the time goes.
//!
//! Run: `scripts/bench.sh pipeline 20000` (release build). `BENCH_BODY=protobuf` sends protobuf
//! bodies instead of JSON; `BENCH_OPEN=N` first fills the system with N open complaints, to see
//! whether the rate holds as open complaints pile up (timed `BENCH_REPEAT` times, 3 unless
//! set, before the fill and as many after it, with the medians compared); `BENCH_PACED=1000` paces the second part
//! at 1,000 complaints/s instead of half the rate reached (the latency at a given load);
//! `BENCH_REPLICAS=intake=2,routing=2` runs that many processes of the named services.

mod baseline;
mod load;
mod procstat;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use baseline::{raw_jetstream, raw_postgres};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use load::publish;
use procstat::{MachineCpu, PidCpu, cpu_seconds, postgres_pids, rss_mib};
use prost::Message as _;
use redress_proto::v1;
use redress_test_support::TestBed;

/// How many processes of `service` run: `BENCH_REPLICAS=intake=2,routing=2` scales the named
/// services out (as operations would the slowest stage); one each otherwise.
fn replicas(service: &str) -> usize {
    std::env::var("BENCH_REPLICAS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == service)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// An organisation with one department, its manager and eight handlers, and the general
/// manager; every complaint routes by the category rule.
const SEED: &str = r#"
default_department = "dept-network"

[[departments]]
id = "dept-network"
name = "Network Operations"
manager_id = "manager-1"

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

fn seed() -> String {
    let mut s = SEED.to_owned();
    for h in 1..=8 {
        s.push_str(&format!(
            "\n[[staff]]\nid = \"handler-{h}\"\nname = \"Handler {h}\"\n\
             department_id = \"dept-network\"\nrole = \"handler\"\n"
        ));
    }
    s
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// PostgreSQL's running totals for the bench's database: commits, rows written, WAL position.
/// (The statistics reach the view within about a second of each transaction.)
struct DbWork {
    commits: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
    wal_bytes: i64,
    /// Pages found in shared buffers, and pages read from outside them (the OS cache or disk).
    blks_hit: i64,
    blks_read: i64,
    /// Per table (`schema.table`): rows inserted, updated (of which HOT) and deleted.
    tables: HashMap<String, [i64; 4]>,
    /// Per table with its indexes and TOAST: pages hit and read, rows read by sequential scans.
    reads: HashMap<String, [i64; 3]>,
}

impl DbWork {
    async fn take(conn: &mut sqlx::PgConnection) -> Self {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (commits, inserted, updated, deleted, wal_bytes, blks_hit, blks_read): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted,
                    (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, blks_hit, blks_read
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("database statistics");
        let reads: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT io.schemaname || '.' || io.relname,
                    (COALESCE(heap_blks_hit, 0) + COALESCE(idx_blks_hit, 0)
                     + COALESCE(toast_blks_hit, 0) + COALESCE(tidx_blks_hit, 0))::BIGINT,
                    (COALESCE(heap_blks_read, 0) + COALESCE(idx_blks_read, 0)
                     + COALESCE(toast_blks_read, 0) + COALESCE(tidx_blks_read, 0))::BIGINT,
                    COALESCE(st.seq_tup_read, 0)::BIGINT
             FROM pg_statio_user_tables io
             JOIN pg_stat_user_tables st USING (relid)",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("table I/O statistics");
        let reads = reads
            .into_iter()
            .map(|(t, hit, read, seq)| (t, [hit, read, seq]))
            .collect();
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
             FROM pg_stat_user_tables",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("table statistics");
        let tables = rows
            .into_iter()
            .map(|(t, i, u, h, d)| (t, [i, u, h, d]))
            .collect();
        Self {
            commits,
            inserted,
            updated,
            deleted,
            wal_bytes,
            blks_hit,
            blks_read,
            tables,
            reads,
        }
    }

    /// The tables whose pages (heap, indexes, TOAST) were touched most between `before` and
    /// `self`, per complaint: where PostgreSQL's CPU goes when open complaints pile up.
    fn busiest_reads(&self, before: &Self, n: f64) -> Vec<String> {
        let mut delta: Vec<(String, [f64; 3])> = self
            .reads
            .iter()
            .map(|(t, after)| {
                let b = before.reads.get(t).copied().unwrap_or_default();
                let d: [f64; 3] = std::array::from_fn(|k| (after[k] - b[k]) as f64 / n);
                (t.clone(), d)
            })
            .filter(|(_, d)| d[0] + d[1] >= 0.5 || d[2] >= 1.0)
            .collect();
        delta.sort_by(|a, b| (b.1[0] + b.1[1]).total_cmp(&(a.1[0] + a.1[1])));
        delta
            .into_iter()
            .take(14)
            .map(|(t, [hit, read, seq])| {
                let seq = if seq >= 1.0 {
                    format!(", {seq:.0} rows seq-scanned")
                } else {
                    String::new()
                };
                format!("{t} {hit:.1} + {read:.1}{seq}")
            })
            .collect()
    }

    /// The tables written most between `before` and `self`, per complaint, busiest first: where
    /// the database's share of the budget goes.
    fn busiest_tables(&self, before: &Self, n: f64) -> Vec<String> {
        let mut delta: Vec<(String, [f64; 4])> = self
            .tables
            .iter()
            .map(|(t, after)| {
                let b = before.tables.get(t).copied().unwrap_or_default();
                let d: [f64; 4] = std::array::from_fn(|k| (after[k] - b[k]) as f64 / n);
                (t.clone(), d)
            })
            .filter(|(_, d)| d[0] + d[1] + d[3] >= 0.05)
            .collect();
        delta.sort_by(|a, b| (b.1[0] + b.1[1] + b.1[3]).total_cmp(&(a.1[0] + a.1[1] + a.1[3])));
        delta
            .into_iter()
            .take(14)
            .map(|(t, [i, u, h, d])| format!("{t} +{i:.1} ~{u:.1} (HOT {h:.1}) -{d:.1}"))
            .collect()
    }
}

/// Every event a service has committed: those waiting in its outbox and those published.
fn events_of(schema: &str) -> String {
    format!(
        "(SELECT seq, complaint_id, subject, created_at FROM {schema}.outbox
          UNION ALL
          SELECT seq, complaint_id, subject, created_at FROM {schema}.outbox_published)"
    )
}

/// A run's progress as the events stream tells it: the complaints recorded and assigned (and
/// when the last of them was), and the recorded ones whose four clocks are not yet seen.
#[derive(Default)]
struct Progress {
    received: HashSet<String>,
    assigned: HashSet<String>,
    received_all: Option<Instant>,
    assigned_all: Option<Instant>,
    unclocked: Vec<String>,
}

/// Follows `complaint.received` and `complaint.assigned` from now on, until `n` of each have
/// been seen. An ordered consumer of the events stream: exact, and its cost does not grow with
/// the events already stored. (Counting the outbox tables instead read every row of the run
/// ten times a second: with a million complaints open the pages fell out of PostgreSQL's
/// buffers, and the bench's own reads were about a quarter of PostgreSQL's CPU in the timed
/// window.)
async fn follow(bed: &TestBed, n: usize) -> Arc<Mutex<Progress>> {
    let subject = |kind: &str| format!("{}.events.complaint.{kind}", bed.prefix);
    let consumer = bed
        .js
        .get_stream(bed.events_stream())
        .await
        .expect("events stream")
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subjects: vec![subject("received"), subject("assigned")],
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let progress = Arc::new(Mutex::new(Progress::default()));
    let shared = progress.clone();
    let assigned_subject = subject("assigned");
    tokio::spawn(async move {
        let mut messages = consumer.messages().await.expect("messages");
        while let Some(Ok(m)) = messages.next().await {
            let event = v1::Event::decode(m.payload.clone()).expect("event decodes");
            let mut p = shared.lock().expect("progress");
            if m.subject.as_str() == assigned_subject {
                if p.assigned.insert(event.complaint_id) && p.assigned.len() == n {
                    p.assigned_all = Some(Instant::now());
                }
            } else if p.received.insert(event.complaint_id.clone()) {
                p.unclocked.push(event.complaint_id);
                if p.received.len() == n {
                    p.received_all = Some(Instant::now());
                }
            }
            if p.received_all.is_some() && p.assigned_all.is_some() {
                break;
            }
        }
    });
    progress
}

/// When each stage had taken every one of `n` submissions since `started`: recorded by
/// intake, assigned by routing, clocked by the SLA monitor (four clocks each), looking every
/// `every`. Clocks are looked up only for complaints recorded and not yet seen clocked.
async fn drain(
    conn: &mut sqlx::PgConnection,
    progress: &Mutex<Progress>,
    n: usize,
    started: Instant,
    every: Duration,
) -> [Duration; 3] {
    let mut clocked = 0;
    let mut clocked_all = None;
    loop {
        // Oldest first, a chunk at a time, for as long as whole chunks are clocked: the SLA
        // monitor takes complaints in about the order they were recorded, so a chunk with one
        // not yet clocked ends the look (looking up every waiting complaint ten times a second
        // was itself a tenth of PostgreSQL's work).
        loop {
            let ids: Vec<String> = {
                let mut p = progress.lock().expect("progress");
                let take = p.unclocked.len().min(500);
                p.unclocked.drain(..take).collect()
            };
            if ids.is_empty() {
                break;
            }
            let done: HashSet<String> = sqlx::query_scalar(
                "SELECT complaint_id FROM sla_monitor.clocks WHERE complaint_id = ANY($1)
                 GROUP BY complaint_id HAVING count(*) >= 4",
            )
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .expect("clocks")
            .into_iter()
            .collect();
            clocked += done.len();
            if clocked == n {
                clocked_all = Some(Instant::now());
            }
            let waiting: Vec<String> = ids.into_iter().filter(|id| !done.contains(id)).collect();
            if !waiting.is_empty() {
                progress
                    .lock()
                    .expect("progress")
                    .unclocked
                    .splice(0..0, waiting);
                break;
            }
        }
        let (received_all, assigned_all) = {
            let p = progress.lock().expect("progress");
            (p.received_all, p.assigned_all)
        };
        if let (Some(r), Some(a), Some(c)) = (received_all, assigned_all, clocked_all) {
            return [r, a, c].map(|at| at.duration_since(started));
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "not drained within an hour: recorded {received_all:?}, assigned {assigned_all:?}, \
             {clocked} of {n} clocked"
        );
        tokio::time::sleep(every).await;
    }
}

/// Publish → `complaint.assigned` committed (routing's outbox row is written in the
/// transaction that assigns), in seconds, sorted, for the submissions keyed `<prefix>-…`.
async fn latencies(
    conn: &mut sqlx::PgConnection,
    prefix: &str,
    sent: &HashMap<String, DateTime<Utc>>,
) -> Vec<f64> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.external_id, o.created_at FROM {} o
         JOIN intake.complaints c ON c.complaint_id = o.complaint_id
         WHERE o.subject LIKE '%.events.complaint.assigned' AND c.external_id LIKE $1",
        events_of("routing")
    )))
    .bind(format!("{prefix}-%"))
    .fetch_all(conn)
    .await
    .expect("assigned rows");
    let mut out: Vec<f64> = rows
        .iter()
        .filter_map(|(key, at)| {
            let sent_at = sent.get(key)?;
            Some((*at - *sent_at).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

fn latency_cell(l: &[f64]) -> String {
    let ms = |s: f64| {
        if s < 10.0 {
            format!("{:.0} ms", s * 1000.0)
        } else {
            format!("{s:.1} s")
        }
    };
    format!(
        "{} / {} / {} ({} complaints)",
        ms(percentile(l, 0.50)),
        ms(percentile(l, 0.99)),
        ms(l.last().copied().unwrap_or(f64::NAN)),
        l.len()
    )
}

/// CPU seconds of each process (and of PostgreSQL's, summed) at one moment, of the bench's own
/// process, and of the whole machine: the system's processes are not all the machine does, and
/// a drain that leaves them short of two cores may still leave no core idle.
struct CpuSample {
    procs: Vec<(String, PidCpu)>,
    bench: f64,
    machine: MachineCpu,
}

impl CpuSample {
    /// PostgreSQL's processes are listed again at every sample ([`PidCpu::postgres`]).
    fn take(procs: &[(String, Vec<u32>)]) -> Self {
        CpuSample {
            procs: procs
                .iter()
                .map(|(name, pids)| {
                    let cpu = if name == POSTGRES {
                        PidCpu::postgres()
                    } else {
                        PidCpu::of(pids)
                    };
                    (name.clone(), cpu)
                })
                .collect(),
            bench: cpu_seconds(std::process::id()),
            machine: MachineCpu::now(),
        }
    }

    /// CPU seconds each group used since `earlier`.
    fn since(&self, earlier: &CpuSample) -> Vec<(String, f64)> {
        self.procs
            .iter()
            .zip(&earlier.procs)
            .map(|((name, now), (_, then))| (name.clone(), now.since(then)))
            .collect()
    }
}

/// The name the bench gives PostgreSQL's processes.
const POSTGRES: &str = "postgresql";

/// One timed measurement: `n` submissions published at once and drained, then half as many
/// paced at half the rate reached (or `BENCH_PACED`); submissions are keyed `<tag>…`.
struct Measured {
    published: Duration,
    stages: [Duration; 3],
    rate: f64,
    full: Vec<f64>,
    paced_rate: f64,
    paced: Vec<f64>,
    cpu: (CpuSample, CpuSample),
    db: (DbWork, DbWork),
}

async fn measure(
    bed: &TestBed,
    conn: &mut sqlx::PgConnection,
    procs: &[(String, Vec<u32>)],
    json: bool,
    n: usize,
    tag: &str,
) -> Measured {
    // Full speed: the whole backlog published at once, then drained.
    let db_before = DbWork::take(conn).await;
    let cpu_before = CpuSample::take(procs);
    let progress = follow(bed, n).await;
    let started = Instant::now();
    let full_key = format!("{tag}f");
    let sent = publish(bed, json, &full_key, n, None).await;
    let published = started.elapsed();
    eprintln!(
        "published {n} submissions in {:.1} s",
        published.as_secs_f64()
    );
    let stages = drain(conn, &progress, n, started, Duration::from_millis(100)).await;
    let cpu_after = CpuSample::take(procs);
    let db_after = DbWork::take(conn).await;
    let full = latencies(conn, &full_key, &sent).await;
    let rate = n as f64 / stages[1].max(stages[2]).as_secs_f64();

    // Half of that rate (or `BENCH_PACED`), paced: the latency of a system that keeps up.
    let paced_rate = std::env::var("BENCH_PACED")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|r| *r > 0.0)
        .unwrap_or(rate / 2.0);
    let half = (n / 2).max(1);
    eprintln!("publishing {half} more at {paced_rate:.0}/s…");
    let progress = follow(bed, half).await;
    let started = Instant::now();
    let paced_key = format!("{tag}h");
    let sent = publish(bed, json, &paced_key, half, Some(paced_rate)).await;
    drain(conn, &progress, half, started, Duration::from_millis(100)).await;
    let paced = latencies(conn, &paced_key, &sent).await;
    Measured {
        published,
        stages,
        rate,
        full,
        paced_rate,
        paced,
        cpu: (cpu_before, cpu_after),
        db: (db_before, db_after),
    }
}

impl Measured {
    /// The measurement's table, figures beside the baselines of the same run.
    fn print(&self, n: usize, js_rate: f64, pg_rate: f64) {
        let rate = self.rate;
        let [recorded, assigned, clocked] = self.stages;
        println!("| measure | figure |");
        println!("|---|---|");
        println!(
            "| baseline: raw JetStream publish, 512 B, acks awaited in bulk | {js_rate:.0} msg/s |"
        );
        println!(
            "| baseline: raw PostgreSQL single-row commits, 8 connections | {pg_rate:.0} commits/s |"
        );
        println!(
            "| submissions published to the bus | {:.0} msg/s |",
            n as f64 / self.published.as_secs_f64()
        );
        let stage = |label: &str, d: Duration| {
            println!(
                "| {label} | {:.0} /s (all in {:.1} s) |",
                n as f64 / d.as_secs_f64(),
                d.as_secs_f64()
            );
        };
        stage("intake: recorded and classified", recorded);
        stage("routing: routed and assigned", assigned);
        stage("sla-monitor: four clocks set", clocked);
        println!(
            "| **end to end: submitted → assigned with its clocks** | **{rate:.0} complaints/s** |"
        );
        println!(
            "| publish → assigned, p50 / p99 / max, at full speed | {} |",
            latency_cell(&self.full)
        );
        println!(
            "| publish → assigned, p50 / p99 / max, paced at {:.0}/s ({:.0} % of the full-speed rate) | {} |",
            self.paced_rate,
            100.0 * self.paced_rate / rate,
            latency_cell(&self.paced)
        );
        let (cpu_before, cpu_after) = &self.cpu;
        let busy = assigned.max(clocked).as_secs_f64();
        let mut cpu = Vec::new();
        let used = cpu_after.since(cpu_before);
        for (name, seconds) in &used {
            cpu.push(format!("{name} {:.0} %", seconds / busy * 100.0));
        }
        let all: f64 = used.iter().map(|(_, s)| s / busy * 100.0).sum();
        println!(
            "| CPU during the full-speed drain (100 % = one core; 2 cores here) | {} — {all:.0} % in all |",
            cpu.join(", ")
        );
        println!(
            "| the bench itself (publishing, following the events stream, looking up clocks) | {:.0} % |",
            (cpu_after.bench - cpu_before.bench) / busy * 100.0
        );
        println!(
            "| the whole machine during the drain (`/proc/stat`) | {} |",
            cpu_after.machine.since(&cpu_before.machine)
        );
        // Where the time goes, per complaint: CPU of each process, and what PostgreSQL did.
        let mut per = Vec::new();
        let mut total = 0.0;
        for (name, seconds) in &used {
            let ms = seconds * 1000.0 / n as f64;
            total += ms;
            per.push(format!("{name} {ms:.2}"));
        }
        println!(
            "| CPU per complaint, ms (full-speed drain) | {} — total {total:.2} ms: two cores allow at most {:.0} complaints/s at this cost |",
            per.join(", "),
            2000.0 / total.max(0.001)
        );
        let (db_before, db_after) = &self.db;
        let per_complaint = |v: i64| v as f64 / n as f64;
        println!(
            "| PostgreSQL work per complaint (whole database, full-speed drain) | {:.1} transactions, {:.1} rows inserted, {:.1} updated, {:.1} deleted, {:.1} KiB of WAL |",
            per_complaint(db_after.commits - db_before.commits),
            per_complaint(db_after.inserted - db_before.inserted),
            per_complaint(db_after.updated - db_before.updated),
            per_complaint(db_after.deleted - db_before.deleted),
            per_complaint(db_after.wal_bytes - db_before.wal_bytes) / 1024.0
        );
        println!(
            "| rows written per complaint, busiest tables (+inserted ~updated -deleted) | {} |",
            db_after.busiest_tables(db_before, n as f64).join(", ")
        );
        println!(
            "| PostgreSQL pages touched per complaint (from shared buffers + from outside them) | {:.0} + {:.1} |",
            per_complaint(db_after.blks_hit - db_before.blks_hit),
            per_complaint(db_after.blks_read - db_before.blks_read)
        );
        println!(
            "| pages touched per complaint, busiest tables with their indexes (hit + read) | {} |",
            db_after.busiest_reads(db_before, n as f64).join(", ")
        );
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let json = std::env::var("BENCH_BODY").map_or(true, |b| b != "protobuf");
    let open: usize = std::env::var("BENCH_OPEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bed = TestBed::start().await;
    let js_rate = raw_jetstream(&bed, n).await;
    eprintln!("baseline JetStream: {js_rate:.0} msg/s");
    let pg_rate = raw_postgres(&bed, 3).await;
    eprintln!("baseline PostgreSQL: {pg_rate:.0} commits/s");

    let dir = tempfile::tempdir().expect("tempdir");
    let seed_path = dir.path().join("seed.toml");
    std::fs::write(&seed_path, seed()).expect("seed");
    let seed_path = seed_path.display().to_string();
    let quiet = [("RUST_LOG", "warn")];
    let mut services = Vec::new();
    let mut procs: Vec<(String, Vec<u32>)> = Vec::new();
    for binary in [
        "redress-intake",
        "redress-routing",
        "redress-sla-monitor",
        "redress-escalation",
        "redress-revisit",
    ] {
        let mut env: Vec<(&str, &str)> = quiet.to_vec();
        if binary == "redress-routing" {
            env.push(("REDRESS_ROUTING_SEED", &seed_path));
        }
        let name = binary.trim_start_matches("redress-").to_owned();
        let mut pids = Vec::new();
        for _ in 0..replicas(&name) {
            let svc = bed.spawn(binary, &env).await;
            pids.push(svc.pid());
            services.push(svc);
        }
        procs.push((name, pids));
    }
    procs.push(("nats-server".into(), bed.nats.pid().into_iter().collect()));
    let mut conn = bed.db.connect().await;
    // The bench's lookups are keyed. On tables never analysed (a new database, and this machine
    // runs without autovacuum) a plan chosen while `clocks` was tiny — a sequential scan, kept
    // as the statement's generic plan — read the whole table ten times a second as it grew.
    {
        use sqlx::Executor as _;
        conn.execute("SET enable_seqscan = off; SET plan_cache_mode = force_custom_plan")
            .await
            .expect("bench session settings");
    }
    procs.push((POSTGRES.into(), postgres_pids()));

    // With a fill, the same measurement is taken several times before it (close to none open)
    // and as many after, in one process with the same binaries: this machine's speed moves by
    // up to a third within minutes, and one run on each side can show a slope that is not there
    // or hide one that is.
    let repeats: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if open > 0 { 3 } else { 1 })
        .max(1);
    let mut runs: Vec<(usize, bool, Measured)> = Vec::new();
    let mut opened = 0;
    if open > 0 {
        for i in 0..repeats {
            let run = measure(&bed, &mut conn, &procs, json, n, &format!("z{i}")).await;
            runs.push((opened, false, run));
            opened += n + (n / 2).max(1);
        }
        eprintln!("filling the system with {open} open complaints…");
        let progress = follow(&bed, open).await;
        let started = Instant::now();
        publish(&bed, json, "open", open, None).await;
        drain(&mut conn, &progress, open, started, Duration::from_secs(1)).await;
        eprintln!(
            "{open} open complaints in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        opened += open;
        // A centre with that many open complaints is at rest between them: every consumer
        // (escalation, revisit and intake's registry follow every event of the fill) has caught
        // up, and PostgreSQL has vacuumed and analysed the grown tables. Timing the run while
        // they still digest the fill measured the fill, not the backlog.
        let settling = Instant::now();
        bed.all_consumed(Duration::from_secs(3600)).await;
        use sqlx::Executor as _;
        conn.execute("VACUUM ANALYZE").await.expect("vacuum");
        conn.execute("CHECKPOINT").await.expect("checkpoint");
        eprintln!(
            "every consumer caught up, vacuumed and checkpointed in {:.0} s",
            settling.elapsed().as_secs_f64()
        );
    }
    for i in 0..repeats {
        let run = measure(&bed, &mut conn, &procs, json, n, &format!("b{i}")).await;
        runs.push((opened, open > 0, run));
        opened += n + (n / 2).max(1);
    }
    // Mean messages per consumer batch, over the whole run, from each service's metrics.
    let mut per_batch = Vec::new();
    for svc in &services {
        let page = svc.metrics().await;
        let series = |name: &str| -> Vec<(String, f64)> {
            page.lines()
                .filter_map(|l| {
                    let rest = l.strip_prefix(name)?.strip_prefix("{consumer=\"")?;
                    let (consumer, value) = rest.split_once("\"}")?;
                    Some((consumer.to_owned(), value.trim().parse().ok()?))
                })
                .collect()
        };
        let batches = series("redress_batch_seconds_count");
        let seconds = series("redress_batch_seconds_sum");
        for (consumer, consumed) in series("redress_messages_consumed_total") {
            if let Some((_, b)) = batches.iter().find(|(c, _)| *c == consumer)
                && *b > 0.0
            {
                let spent = seconds
                    .iter()
                    .find(|(c, _)| *c == consumer)
                    .map_or(0.0, |(_, s)| *s);
                per_batch.push(format!(
                    "{consumer} {:.0} in {:.1} ms",
                    consumed / b,
                    spent / b * 1000.0
                ));
            }
        }
    }
    let rss: Vec<(String, f64)> = procs
        .iter()
        .map(|(name, pids)| (name.clone(), pids.iter().map(|p| rss_mib(*p)).sum()))
        .collect();
    drop(services);

    let body = if json { "JSON" } else { "protobuf" };
    for (before, _, run) in &runs {
        println!(
            "\nwhole pipeline, {n} confirmed submissions ({body} bodies on the bus), {before} open before\n"
        );
        run.print(n, js_rate, pg_rate);
    }
    if open > 0 {
        // The rates side by side, and the medians' ratio: the figure the target is about.
        let median = |after_fill: bool| {
            let mut r: Vec<f64> = runs
                .iter()
                .filter(|(_, after, _)| *after == after_fill)
                .map(|(_, _, m)| m.rate)
                .collect();
            r.sort_by(f64::total_cmp);
            let k = r.len() / 2;
            let median = if r.len().is_multiple_of(2) {
                (r[k - 1] + r[k]) / 2.0
            } else {
                r[k]
            };
            (r, median)
        };
        let (few, few_median) = median(false);
        let (many, many_median) = median(true);
        let list = |r: &[f64]| {
            r.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("\n| open before | end to end, each run (complaints/s) | median |");
        println!("|---|---|---|");
        println!(
            "| fewer than {} | {} | {few_median:.0} |",
            repeats * (n + n / 2),
            list(&few)
        );
        println!(
            "| {open} or more | {} | {many_median:.0} ({:.0} % of the rate with few open) |",
            list(&many),
            100.0 * many_median / few_median
        );
    }
    println!("\n| over the whole run | figure |");
    println!("|---|---|");
    let rss: Vec<String> = rss
        .iter()
        .map(|(name, mib)| format!("{name} {mib:.0} MiB"))
        .collect();
    println!("| resident memory at the end | {} |", rss.join(", "));
    println!(
        "| messages per consumer batch and the time to apply one, mean over the run | {} |",
        per_batch.join(", ")
    );
}
