//! The complaint registry on a million complaints: `ListComplaints` pages (unfiltered, by class,
//! by department, overdue only, and deep into the cursor) and `GetComplaint`, timed through the
//! real intake service over gRPC, beside a baseline measured in the same run (a primary-key
//! lookup in PostgreSQL, the floor any query here pays).
//!
//! Run: `scripts/bench.sh registry` (release), or
//! `cargo run --release -p redress-system-tests --example bench_registry -- 1000000`.

use std::time::{Duration, Instant};

use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::{TestBed, authed};

const TOKEN: &str = "test-agent-token";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn time<F, Fut>(runs: usize, mut f: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

#[tokio::main]
async fn main() {
    let n: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let bed = TestBed::start().await;
    let svc = bed.spawn("redress-intake", &[("RUST_LOG", "warn")]).await;
    let mut conn = bed.db.connect().await;

    // A million complaints straight into intake's table: classes, channels, departments and
    // an overdue share spread like a real month's.
    let loaded = Instant::now();
    sqlx::query(
        "INSERT INTO intake.complaints (complaint_id, number, source_system, external_id, details,
            acknowledgement, class, status, channel, category, department_id, assignee_id, overdue,
            confirmed, received_at, updated_at)
         SELECT 'cmp_bench' || lpad(i::text, 10, '0'), 'RD-' || i, 'bench', i::text, ''::bytea, ''::bytea,
            (ARRAY['A','B','C','C','C','D'])[1 + i % 6],
            (ARRAY['assigned','accepted','resolved','closed'])[1 + i % 4],
            (ARRAY['hotline','counter','letter','online'])[1 + i % 4],
            'network_quality', 'dept-' || (i % 20), 'handler-' || (i % 200), i % 50 = 0, true,
            now() - make_interval(secs => i), now()
         FROM generate_series(1, $1) AS i",
    )
    .bind(n)
    .execute(&mut conn)
    .await
    .expect("bulk insert");
    sqlx::query("ANALYZE intake.complaints")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let load = loaded.elapsed();

    let mut pk = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let _: Option<String> =
            sqlx::query_scalar("SELECT number FROM intake.complaints WHERE complaint_id = $1")
                .bind(format!("cmp_bench{:010}", 1 + (i * 4999) % n))
                .fetch_optional(&mut conn)
                .await
                .expect("pk lookup");
        pk.push(t.elapsed());
    }
    pk.sort();

    let channel = bed.channel(&svc).await;
    let client = IntakeServiceClient::new(channel);
    let list = |req: v1::ListComplaintsRequest| {
        let mut c = client.clone();
        async move {
            c.list_complaints(authed(TOKEN, req))
                .await
                .expect("list")
                .into_inner()
        }
    };
    let page = |size: u32, token: String| {
        Some(v1::PageRequest {
            page_size: size,
            page_token: token,
        })
    };

    let mut rows = Vec::new();
    let cases: Vec<(&str, v1::ListComplaintsRequest)> = vec![
        (
            "newest 50",
            v1::ListComplaintsRequest {
                page: page(50, String::new()),
                ..Default::default()
            },
        ),
        (
            "class A, 50",
            v1::ListComplaintsRequest {
                class: v1::Class::A as i32,
                page: page(50, String::new()),
                ..Default::default()
            },
        ),
        (
            "department, 50",
            v1::ListComplaintsRequest {
                department_id: "dept-7".into(),
                page: page(50, String::new()),
                ..Default::default()
            },
        ),
        (
            "overdue only, 50",
            v1::ListComplaintsRequest {
                overdue: Some(true),
                page: page(50, String::new()),
                ..Default::default()
            },
        ),
        (
            "status resolved, 50",
            v1::ListComplaintsRequest {
                status: "resolved".into(),
                page: page(50, String::new()),
                ..Default::default()
            },
        ),
    ];
    for (name, req) in cases {
        let (p50, p99) = time(50, || {
            let r = req.clone();
            let l = &list;
            async move {
                let resp = l(r).await;
                assert!(!resp.complaints.is_empty());
            }
        })
        .await;
        rows.push((name.to_owned(), p50, p99));
    }
    // Deep pagination: the 200th page costs what the first does (keyset, not OFFSET).
    let mut token = String::new();
    let mut deep = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let resp = list(v1::ListComplaintsRequest {
            page: page(50, token.clone()),
            ..Default::default()
        })
        .await;
        deep.push(t.elapsed());
        token = resp.next_page_token;
    }
    let first_pages: Vec<Duration> = deep[..20].to_vec();
    let mut last_pages: Vec<Duration> = deep[180..].to_vec();
    last_pages.sort();
    let mut first_sorted = first_pages.clone();
    first_sorted.sort();
    rows.push((
        "pages 1–20 of a 200-page walk".into(),
        percentile(&first_sorted, 0.5),
        percentile(&first_sorted, 0.99),
    ));
    rows.push((
        "pages 181–200 of the walk".into(),
        percentile(&last_pages, 0.5),
        percentile(&last_pages, 0.99),
    ));

    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT complaint_id FROM intake.complaints WHERE class = 'A'
         ORDER BY received_at DESC, complaint_id DESC LIMIT 51",
    )
    .fetch_all(&mut conn)
    .await
    .expect("explain");

    println!(
        "\nregistry on {n} complaints (loaded in {:.1} s)\n",
        load.as_secs_f64()
    );
    println!("| query | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| baseline: PostgreSQL primary-key lookup (direct, no gRPC) | {:.2} ms | {:.2} ms |",
        percentile(&pk, 0.5).as_secs_f64() * 1e3,
        percentile(&pk, 0.99).as_secs_f64() * 1e3
    );
    for (name, p50, p99) in rows {
        println!(
            "| ListComplaints {name} (gRPC) | {:.2} ms | {:.2} ms |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    println!(
        "\nplan for a class filter: {}",
        plan.first().cloned().unwrap_or_default()
    );
}
