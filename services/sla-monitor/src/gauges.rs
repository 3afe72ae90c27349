//! How many clocks are at risk (warned) and overdue right now, as the gauges
//! `redress_sla_clocks{state="warned"|"overdue"}`: the counters say how many warnings and
//! overdues were emitted, these say how many are still open.
//!
//! Each count reads one of the partial indexes `clocks_at_risk` / `clocks_overdue`
//! ([`store::counts`]), so the cost follows the clocks in trouble, never the millions still
//! running.

use std::time::Duration;

use redress_platform::metrics::sample_every;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store;

/// How often the gauges are refreshed.
pub const PERIOD: Duration = Duration::from_secs(5);

/// Sets the gauges every `period` until `stop`.
pub async fn run(pool: PgPool, period: Duration, stop: CancellationToken) {
    sample_every(period, stop, || async {
        match store::counts(&pool).await {
            Ok(c) => {
                metrics::gauge!("redress_sla_clocks", "state" => "warned").set(c.warned as f64);
                metrics::gauge!("redress_sla_clocks", "state" => "overdue").set(c.overdue as f64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count warned and overdue clocks"),
        }
    })
    .await
}
