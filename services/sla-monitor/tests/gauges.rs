//! The clock gauges count the clocks warned and overdue now, and only those: running and met
//! clocks (millions of them in production) are neither counted nor read, because both counts
//! come from the partial indexes `clocks_at_risk` and `clocks_overdue`.

use redress_platform::db;
use redress_sla_monitor::store::{self, Counts};
use redress_test_support::TestDb;

#[tokio::test]
async fn counts_come_from_the_partial_indexes_and_leave_running_clocks_out() {
    let test_db = TestDb::create().await;
    let pool = db::connect(
        &test_db.url,
        "sla_monitor",
        2,
        false,
        &redress_sla_monitor::MIGRATIONS,
    )
    .await
    .expect("schema and migrations");

    // 20,000 running clocks, 3 warned, 2 overdue, 4 met.
    sqlx::query(
        "INSERT INTO clocks (complaint_id, kind, started_at, due_at, warn_at, state)
         SELECT 'cmp_' || i, 'completion', now(), now() + interval '1 day',
                now() + interval '12 hours',
                CASE WHEN i <= 3 THEN 'warned' WHEN i <= 5 THEN 'overdue'
                     WHEN i <= 9 THEN 'met' ELSE 'running' END
         FROM generate_series(1, 20000) AS i",
    )
    .execute(&pool)
    .await
    .expect("insert clocks");
    sqlx::query("ANALYZE clocks")
        .execute(&pool)
        .await
        .expect("analyze");

    assert_eq!(
        store::counts(&pool).await.expect("counts"),
        Counts {
            warned: 3,
            overdue: 2
        }
    );

    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN {}",
        store::COUNTS_SQL
    )))
    .fetch_all(&pool)
    .await
    .expect("explain");
    let plan = plan.join("\n");
    for index in ["clocks_at_risk", "clocks_overdue"] {
        assert!(plan.contains(index), "{index} not used:\n{plan}");
    }
    assert!(!plan.contains("Seq Scan"), "a scan of every clock:\n{plan}");
    pool.close().await;
}
