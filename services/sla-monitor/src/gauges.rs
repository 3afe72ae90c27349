//! How many clocks are at risk (warned) and overdue right now, as the gauges
//! `redress_sla_clocks{state="warned"|"overdue"}`: the counters say how many warnings and
//! overdues were emitted, these say how many are still open.
//!
//! Each count reads one of the partial indexes `clocks_at_risk` / `clocks_overdue`, so the cost
//! follows the clocks in trouble, never the millions still running.

use std::time::Duration;

use redress_platform::metrics::sample_every;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often the gauges are refreshed.
pub const PERIOD: Duration = Duration::from_secs(5);

/// Clocks warned and not yet met or overdue, and clocks overdue and not yet met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub warned: i64,
    pub overdue: i64,
}

/// Both counts in one round trip. The predicates repeat the partial indexes' `WHERE` exactly,
/// so the planner can answer from them alone (public for the test that checks the plan).
pub const COUNTS_SQL: &str = "SELECT (SELECT count(*) FROM clocks WHERE state = 'warned'),
        (SELECT count(*) FROM clocks WHERE state = 'overdue')";

/// Reads both counts.
pub async fn counts(pool: &PgPool) -> Result<Counts, sqlx::Error> {
    let (warned, overdue): (i64, i64) = sqlx::query_as(COUNTS_SQL).fetch_one(pool).await?;
    Ok(Counts { warned, overdue })
}

/// Sets the gauges every `period` until `stop`.
pub async fn run(pool: PgPool, period: Duration, stop: CancellationToken) {
    sample_every(period, stop, || async {
        match counts(&pool).await {
            Ok(c) => {
                metrics::gauge!("redress_sla_clocks", "state" => "warned").set(c.warned as f64);
                metrics::gauge!("redress_sla_clocks", "state" => "overdue").set(c.overdue as f64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count warned and overdue clocks"),
        }
    })
    .await
}
