//! `GET /api/board`: what the wallboard shows, now. The page loads it at start and again
//! shortly after events arrive, so a reload or a restart of this service loses nothing.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, TimeZone as _};
use serde::{Deserialize, Serialize};

use super::{Board, Refusal, caller};
use crate::access;
use crate::store::{self, Count, Line, Revisits, Waiting};

#[derive(Debug, Deserialize)]
pub struct Params {
    access_token: Option<String>,
}

#[derive(Serialize)]
struct Snapshot {
    /// The service's clock now, so the page counts down against the same time as the limits.
    now: chrono::DateTime<chrono::Utc>,
    counts: Vec<Count>,
    at_risk: Vec<Line>,
    overdue: Vec<Line>,
    escalations: Vec<Waiting>,
    revisits: Revisits,
    ticker: Vec<Tick>,
}

#[derive(Serialize)]
struct Tick {
    seq: u64,
    kind: String,
    text: String,
    occurred_at: String,
}

/// How many complaints each list shows.
const LIST: i64 = 50;

pub async fn board(
    State(board): State<Board>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let who = match caller(&board, &headers, params.access_token.as_deref()) {
        Ok(who) => who,
        Err(refusal) => return refusal.into_response(),
    };
    let scope = access::scope(&who);
    let now = board.clock.now();
    let zone = board.policy.calendar.timezone;
    let local = now.with_timezone(&zone).date_naive();
    let day_start = local
        .and_hms_opt(0, 0, 0)
        .and_then(|t| zone.from_local_datetime(&t).single())
        .map_or(now, |t| t.with_timezone(&chrono::Utc));
    let read = async {
        Ok::<_, sqlx::Error>(Snapshot {
            now,
            counts: store::counts(&board.pool, &scope).await?,
            at_risk: store::at_risk(&board.pool, &scope, LIST).await?,
            overdue: store::overdue(&board.pool, &scope, LIST).await?,
            escalations: store::waiting_escalations(&board.pool, &scope, LIST).await?,
            revisits: store::revisits(
                &board.pool,
                &scope,
                day_start,
                day_start + Duration::days(1),
            )
            .await?,
            ticker: board
                .gateway
                .recent()
                .iter()
                .filter(|f| access::sight(&who, f).is_some())
                .map(|f| Tick {
                    seq: f.seq,
                    kind: f.kind.clone(),
                    text: f.text.clone(),
                    occurred_at: f.occurred_at.clone(),
                })
                .collect(),
        })
    };
    match read.await {
        Ok(snapshot) => Json(snapshot).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "board snapshot");
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the board's store is not reachable; retry",
            )
            .into_response()
        }
    }
}
