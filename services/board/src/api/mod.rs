//! The board's HTTP door: the wallboard page, its snapshot, and the event stream.
//!
//! | path           | what                                                        |
//! |----------------|-------------------------------------------------------------|
//! | `/`            | the wallboard (plain HTML, JS and CSS served by this binary) |
//! | `/api/board`   | the wallboard's state now, as JSON                          |
//! | `/events`      | every event as Server-Sent Events, filterable, resumable    |
//! | `/reports`     | the policy's reports with charts (`/api/reports/{daily,monthly,yearly}`, JSON or CSV) |
//! | `/healthz`     | `ok` while the process runs                                 |
//!
//! Every path but `/`, its assets and `/healthz` needs a bearer token (header, or
//! `access_token` in the query for `EventSource`).

mod events;
mod reports;
mod rpc;
mod snapshot;

pub use rpc::Rpc;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use redress_domain::{Clock, Policy};
use redress_platform::auth::{Authenticator, Identity};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::access;
use crate::gateway::Gateway;

/// What the handlers share.
#[derive(Clone)]
pub struct Board {
    pub pool: PgPool,
    pub auth: Authenticator,
    pub gateway: Arc<Gateway>,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
    /// Ends every open event stream at shutdown.
    pub stop: CancellationToken,
}

pub fn router(board: Board) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/board.js",
            get(|| async { page("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/board.css",
            get(|| async { page("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/reports",
            get(|| async { page("text/html; charset=utf-8", REPORTS) }),
        )
        .route(
            "/reports.js",
            get(|| async { page("text/javascript; charset=utf-8", REPORTS_SCRIPT) }),
        )
        .route("/api/reports/daily", get(reports::daily))
        .route("/api/reports/monthly", get(reports::monthly))
        .route("/api/reports/yearly", get(reports::yearly))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/board", get(snapshot::board))
        .route("/events", get(events::stream))
        .with_state(board)
}

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/board.js");
const STYLE: &str = include_str!("../../web/board.css");
const REPORTS: &str = include_str!("../../web/reports.html");
const REPORTS_SCRIPT: &str = include_str!("../../web/reports.js");

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A refused request: the HTTP status and, as JSON, why and which field (the board's one
/// mapping of errors to HTTP, as `redress_platform::error` is for gRPC).
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    field: Option<&'static str>,
    reason: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, field: Option<&'static str>, reason: &str) -> Self {
        Self {
            status,
            field,
            reason: reason.to_owned(),
        }
    }
}

/// The same refusal over gRPC: a wrong parameter is `INVALID_ARGUMENT` naming the field.
impl From<Refusal> for tonic::Status {
    fn from(r: Refusal) -> Self {
        match (r.status, r.field) {
            (StatusCode::BAD_REQUEST, Some(field)) => {
                redress_platform::error::Error::invalid(field, &r.reason).into()
            }
            (StatusCode::BAD_REQUEST, None) => tonic::Status::invalid_argument(r.reason),
            (StatusCode::UNAUTHORIZED, _) => tonic::Status::unauthenticated(r.reason),
            (StatusCode::SERVICE_UNAVAILABLE, _) => tonic::Status::unavailable(r.reason),
            _ => tonic::Status::internal(r.reason),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.reason, "field": self.field});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The caller, or the response refusing them.
pub(crate) fn caller(
    board: &Board,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Identity, Refusal> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = access::token(header, query_token);
    access::identify(&board.auth, token).ok_or_else(|| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            Some("access_token"),
            "a known bearer token is required (Authorization: Bearer …, or access_token=…)",
        )
    })
}
