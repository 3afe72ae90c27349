//! The board at scale: N complaints in its projection (1,000,000 by default; a tenth of them
//! open, spread over departments, classes and stages, some at risk or overdue, with
//! escalations and revisits), then what a wall screen and a supervisor wait for — the
//! wallboard's snapshot (`/api/board`, what a reload reads), the daily log, the monthly
//! analysis and the yearly report — and how long the board takes to be serving again after a
//! restart (the state is the projection, so nothing is replayed). Beside them, in the same
//! run, a primary-key lookup on the same table.
//!
//! The rows are written straight into the projection (what the events would have folded into),
//! so the figure is the reads', not the fold's: the fold's rate is the pipeline benchmark's.
//!
//! Run: `scripts/bench.sh board-scale 1000000` (release build).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redress_test_support::TestBed;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `GET path` with the viewer's token; the status and the body's length.
async fn get(addr: SocketAddr, path: &str) -> (u16, usize) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer test-viewer-token\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.expect("read");
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    (status, body)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn timed(addr: SocketAddr, path: &str, runs: usize) -> String {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let (status, len) = get(addr, path).await;
        assert_eq!(status, 200, "{path}");
        times.push(ms(t.elapsed()));
        size = len;
    }
    times.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms, max {:.1} ms ({} KiB)",
        times[times.len() / 2],
        times[times.len() - 1],
        size / 1024
    )
}

#[tokio::main]
async fn main() {
    let n: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let bed = TestBed::start().await;
    let env = [
        ("RUST_LOG", "warn"),
        ("REDRESS_BOARD_HTTP_ADDR", "127.0.0.1:0"),
    ];
    let board = bed.spawn("redress-board", &env).await;
    let mut conn = bed.db.connect().await;

    eprintln!("writing {n} complaints into the board's projection…");
    let started = Instant::now();
    for (sql, what) in [
        (
            "INSERT INTO board.departments (department_id, name)
             SELECT 'dept-' || d, 'Department ' || d FROM generate_series(1, 20) d",
            "departments",
        ),
        (
            "INSERT INTO board.complaints (complaint_id, complaint_number, class, department_id,
                handler_id, handler_name, stage, stage_rank, received_at, completion_due,
                risk_clock, risk_due, overdue_clock, overdue_since, channel, category,
                customer_type, business, resolved_at, closed_at, satisfied, ever_overdue)
             SELECT 'cmp_' || i, 'RD-' || i, (ARRAY['A','B','C','D'])[1 + i % 4],
                'dept-' || (1 + i % 20), 'h-' || (i % 400), 'Handler ' || (i % 400),
                CASE WHEN i % 10 = 0 THEN (ARRAY['routed','assigned','accepted'])[1 + i % 3]
                     ELSE 'closed' END,
                CASE WHEN i % 10 = 0 THEN 1 + i % 3 ELSE 6 END,
                now() - make_interval(secs => ((i * 31) % (365 * 86400))::float8),
                now() + interval '1 day',
                CASE WHEN i % 50 = 0 THEN 'completion' END,
                CASE WHEN i % 50 = 0 THEN now() + make_interval(secs => (i % 3600)::float8) END,
                CASE WHEN i % 70 = 0 THEN 'completion' END,
                CASE WHEN i % 70 = 0 THEN now() - make_interval(secs => (i % 7200)::float8) END,
                (ARRAY['hotline','counter','letter','web'])[1 + i % 4],
                (ARRAY['network_quality','billing','service','installation'])[1 + i % 4],
                (ARRAY['calm','restrained_anger','venting_anger'])[1 + i % 3], 'broadband',
                CASE WHEN i % 10 <> 0 THEN now() END, CASE WHEN i % 10 <> 0 THEN now() END,
                CASE WHEN i % 10 <> 0 THEN i % 7 <> 0 END, i % 70 = 0
             FROM generate_series(1, $1) i",
            "complaints",
        ),
        (
            "INSERT INTO board.escalations (escalation_id, complaint_id, level, recipient_id,
                recipient_name, department_id, summary, raised_at, acknowledge_by,
                acknowledged_at)
             SELECT 'esc_' || i, 'cmp_' || i, 1, 'm-' || (i % 20), 'Manager ' || (i % 20),
                'dept-' || (1 + i % 20), 'overdue', now() - interval '1 hour',
                now() + interval '1 hour', CASE WHEN i % 140 <> 0 THEN now() END
             FROM generate_series(70, $1, 70) i",
            "escalations",
        ),
        (
            "INSERT INTO board.revisits (revisit_id, complaint_id, department_id, due_at,
                completed_at, reached, satisfied)
             SELECT 'rv_' || i, 'cmp_' || i, 'dept-' || (1 + i % 20),
                now() - make_interval(secs => (i % (30 * 86400))::float8),
                CASE WHEN i % 3 <> 0 THEN now() END, i % 3 <> 0, i % 7 <> 0
             FROM generate_series(1, $1, 3) i",
            "revisits",
        ),
        ("ANALYZE board.complaints", "analyze"),
    ] {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(n) } else { q };
        q.execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    let written = started.elapsed();
    let http = *board.listening.get("http").expect("http");

    // The baseline: one row by primary key, same table, same run.
    let mut pk = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let _: (String,) =
            sqlx::query_as("SELECT complaint_number FROM board.complaints WHERE complaint_id = $1")
                .bind(format!("cmp_{}", 1 + (i * 997) % n))
                .fetch_one(&mut conn)
                .await
                .expect("pk");
        pk.push(ms(t.elapsed()));
    }
    pk.sort_by(f64::total_cmp);

    let snapshot = timed(http, "/api/board", 20).await;
    let daily = timed(http, "/api/reports/daily", 5).await;
    let monthly = timed(http, "/api/reports/monthly", 5).await;
    let yearly = timed(http, "/api/reports/yearly", 3).await;

    // A restart: stop, start, until the snapshot answers again.
    drop(board);
    let t = Instant::now();
    let again = bed
        .spawn(
            "redress-board",
            &[
                ("RUST_LOG", "warn"),
                ("REDRESS_BOARD_HTTP_ADDR", "127.0.0.1:0"),
            ],
        )
        .await;
    let http = *again.listening.get("http").expect("http");
    let (status, _) = get(http, "/api/board").await;
    assert_eq!(status, 200);
    let restart = t.elapsed();

    println!(
        "\nboard at scale: {n} complaints in the projection ({} open)\n",
        n / 10
    );
    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| baseline: primary-key lookup on the same table | p50 {:.2} ms |",
        pk[pk.len() / 2]
    );
    println!(
        "| rows written straight into the projection | {:.1} s |",
        written.as_secs_f64()
    );
    println!("| **wallboard snapshot (`/api/board`, what a reload reads)** | {snapshot} |");
    println!("| daily complaint log (`/api/reports/daily`) | {daily} |");
    println!("| monthly analysis (`/api/reports/monthly`) | {monthly} |");
    println!("| yearly department report (`/api/reports/yearly`) | {yearly} |");
    println!(
        "| **restart: process start → first snapshot served** | {:.0} ms |",
        ms(restart)
    );
}
