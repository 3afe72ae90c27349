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
//! whether the rate holds as open complaints pile up; `BENCH_PACED=1000` paces the second part
//! at 1,000 complaints/s instead of half the rate reached (the latency at a given load);
//! `BENCH_REPLICAS=intake=2,routing=2` runs that many processes of the named services.

mod baseline;
mod load;
mod procstat;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baseline::{raw_jetstream, raw_postgres};
use chrono::{DateTime, Utc};
use load::publish;
use procstat::{cpu_seconds, postgres_pids, rss_mib};
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

async fn count(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .expect("count")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Where each stage's count stands: intake's `complaint.received` and routing's
/// `complaint.assigned` outbox rows after a sequence number (a range of the primary key, so
/// polling stays cheap with a million complaints open), and the clocks the SLA monitor has
/// inserted (PostgreSQL's own count of inserted rows, flushed about every second).
#[derive(Clone, Copy, Debug)]
struct Marks {
    intake_seq: i64,
    routing_seq: i64,
    clocks_inserted: i64,
}

/// PostgreSQL's running totals for the bench's database: commits, rows written, WAL position.
/// (The statistics reach the view within about a second of each transaction.)
struct DbWork {
    commits: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
    wal_bytes: i64,
    /// Per table (`schema.table`): rows inserted, updated (of which HOT) and deleted.
    tables: HashMap<String, [i64; 4]>,
}

impl DbWork {
    async fn take(conn: &mut sqlx::PgConnection) -> Self {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (commits, inserted, updated, deleted, wal_bytes): (i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted,
                        (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint
                 FROM pg_stat_database WHERE datname = current_database()",
            )
            .fetch_one(&mut *conn)
            .await
            .expect("database statistics");
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
            tables,
        }
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

async fn marks(conn: &mut sqlx::PgConnection) -> Marks {
    let last = |schema: &str| format!("SELECT COALESCE(max(seq), 0) FROM {} e", events_of(schema));
    Marks {
        intake_seq: count(conn, &last("intake")).await,
        routing_seq: count(conn, &last("routing")).await,
        clocks_inserted: clocks_inserted(conn).await,
    }
}

async fn clocks_inserted(conn: &mut sqlx::PgConnection) -> i64 {
    count(
        conn,
        "SELECT COALESCE(sum(n_tup_ins), 0)::BIGINT FROM pg_stat_user_tables
         WHERE schemaname = 'sla_monitor' AND relname = 'clocks'",
    )
    .await
}

async fn since(conn: &mut sqlx::PgConnection, schema: &str, kind: &str, seq: i64) -> i64 {
    count(
        conn,
        &format!(
            "SELECT count(*) FROM {} e WHERE seq > {seq}
             AND subject LIKE '%.events.complaint.{kind}'",
            events_of(schema)
        ),
    )
    .await
}

/// When each stage had taken every one of `n` submissions since `started`: recorded by
/// intake, assigned by routing, clocked by the SLA monitor (four clocks each).
async fn drain(
    conn: &mut sqlx::PgConnection,
    before: Marks,
    n: i64,
    started: Instant,
) -> [Duration; 3] {
    drain_every(conn, before, n, started, Duration::from_millis(100)).await
}

/// [`drain`], looking every `every`. Each look counts the outbox rows written since `before`:
/// cheap for a timed run, but while a fill of a million complaints is drained it is a scan of
/// millions of rows, and looking ten times a second made the bench PostgreSQL's heaviest
/// client — the fill looks once every two seconds.
async fn drain_every(
    conn: &mut sqlx::PgConnection,
    before: Marks,
    n: i64,
    started: Instant,
    every: Duration,
) -> [Duration; 3] {
    let mut done: [Option<Duration>; 3] = [None; 3];
    loop {
        if done[0].is_none() && since(conn, "intake", "received", before.intake_seq).await >= n {
            done[0] = Some(started.elapsed());
        }
        if done[1].is_none() && since(conn, "routing", "assigned", before.routing_seq).await >= n {
            done[1] = Some(started.elapsed());
        }
        if done[2].is_none() && clocks_inserted(conn).await - before.clocks_inserted >= 4 * n {
            done[2] = Some(started.elapsed());
        }
        if let [Some(a), Some(b), Some(c)] = done {
            return [a, b, c];
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "not drained within an hour: {done:?}"
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

/// CPU seconds of each process (and of PostgreSQL's, summed) at one moment.
struct CpuSample(Vec<(String, Vec<u32>, f64)>);

impl CpuSample {
    fn take(procs: &[(String, Vec<u32>)]) -> Self {
        CpuSample(
            procs
                .iter()
                .map(|(name, pids)| {
                    let cpu = pids.iter().map(|p| cpu_seconds(*p)).sum();
                    (name.clone(), pids.clone(), cpu)
                })
                .collect(),
        )
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

    if open > 0 {
        eprintln!("filling the system with {open} open complaints…");
        let started = Instant::now();
        let before = marks(&mut conn).await;
        publish(&bed, json, "open", open, None).await;
        drain_every(
            &mut conn,
            before,
            open as i64,
            started,
            Duration::from_secs(2),
        )
        .await;
        eprintln!(
            "{open} open complaints in {:.0} s",
            started.elapsed().as_secs_f64()
        );
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

    // Full speed: the whole backlog published at once, then drained.
    procs.push(("postgresql".into(), postgres_pids()));
    let db_before = DbWork::take(&mut conn).await;
    let cpu_before = CpuSample::take(&procs);
    let before = marks(&mut conn).await;
    let started = Instant::now();
    let sent = publish(&bed, json, "b", n, None).await;
    let published = started.elapsed();
    eprintln!(
        "published {n} submissions in {:.1} s",
        published.as_secs_f64()
    );
    let [recorded, assigned, clocked] = drain(&mut conn, before, n as i64, started).await;
    let cpu_after = CpuSample::take(&procs);
    let db_after = DbWork::take(&mut conn).await;
    let full = latencies(&mut conn, "b", &sent).await;
    let rate = n as f64 / assigned.max(clocked).as_secs_f64();

    // Half of that rate (or `BENCH_PACED`), paced: the latency of a system that keeps up.
    let paced_rate = std::env::var("BENCH_PACED")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|r| *r > 0.0)
        .unwrap_or(rate / 2.0);
    let half = (n / 2).max(1);
    eprintln!("publishing {half} more at {paced_rate:.0}/s…");
    let before = marks(&mut conn).await;
    let started = Instant::now();
    let sent = publish(&bed, json, "h", half, Some(paced_rate)).await;
    drain(&mut conn, before, half as i64, started).await;
    let paced = latencies(&mut conn, "h", &sent).await;
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
    println!(
        "\nwhole pipeline, {n} confirmed submissions ({body} bodies on the bus), {open} open before\n"
    );
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
        n as f64 / published.as_secs_f64()
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
        latency_cell(&full)
    );
    println!(
        "| publish → assigned, p50 / p99 / max, paced at {:.0}/s ({:.0} % of the full-speed rate) | {} |",
        paced_rate,
        100.0 * paced_rate / rate,
        latency_cell(&paced)
    );
    let busy = assigned.max(clocked).as_secs_f64();
    let mut cpu = Vec::new();
    for ((name, _, a), (_, _, b)) in cpu_after.0.iter().zip(&cpu_before.0) {
        cpu.push(format!("{name} {:.0} %", (a - b) / busy * 100.0));
    }
    println!(
        "| CPU during the full-speed drain (100 % = one core; 2 cores here) | {} |",
        cpu.join(", ")
    );
    // Where the time goes, per complaint: CPU of each process, and what PostgreSQL wrote.
    let mut per = Vec::new();
    let mut total = 0.0;
    for ((name, _, a), (_, _, b)) in cpu_after.0.iter().zip(&cpu_before.0) {
        let ms = (a - b) * 1000.0 / n as f64;
        total += ms;
        per.push(format!("{name} {ms:.2}"));
    }
    println!(
        "| CPU per complaint, ms (full-speed drain) | {} — total {total:.2} ms: two cores allow at most {:.0} complaints/s at this cost |",
        per.join(", "),
        2000.0 / total.max(0.001)
    );
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
        db_after.busiest_tables(&db_before, n as f64).join(", ")
    );
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
