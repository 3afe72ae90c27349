//! `GET /events`: the event stream as Server-Sent Events.
//!
//! Query: `kind` (comma-separated; `sla` means every `sla.*`), `department`, `class` (`A`…`D`),
//! `access_token`; `Last-Event-ID` (or `since`) resumes after that JetStream sequence. Each
//! event's `id` is its sequence and its `data` is `{"seq","kind","text","complaint_id",
//! "department","class","event"}` with `event` in the proto3 JSON mapping, the customer
//! masked unless the caller may see them.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use redress_platform::access::Sight;
use redress_platform::auth::Identity;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{Board, Refusal, caller};
use crate::access;
use crate::gateway::Frame;

#[derive(Debug, Deserialize)]
pub struct Params {
    access_token: Option<String>,
    kind: Option<String>,
    department: Option<String>,
    class: Option<String>,
    since: Option<String>,
}

/// Which events a client asked for.
#[derive(Debug, Default)]
struct Filter {
    kinds: Vec<String>,
    departments: Vec<String>,
    classes: Vec<String>,
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Filter {
    fn parse(p: &Params) -> Result<Self, Refusal> {
        let classes = list(p.class.as_deref());
        if let Some(bad) = classes
            .iter()
            .find(|c| !matches!(c.as_str(), "A" | "B" | "C" | "D"))
        {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                Some("class"),
                &format!("class {bad:?} is not one of A, B, C, D"),
            ));
        }
        let kinds = list(p.kind.as_deref());
        let known = redress_proto::every_kind();
        if let Some(bad) = kinds.iter().find(|k| {
            !known
                .iter()
                .any(|known| *known == k.as_str() || known.split('.').next() == Some(k.as_str()))
        }) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                Some("kind"),
                &format!("no event kind or group {bad:?} (see docs/events)"),
            ));
        }
        Ok(Self {
            kinds,
            departments: list(p.department.as_deref()),
            classes,
        })
    }

    fn matches(&self, f: &Frame) -> bool {
        let kind_ok = self.kinds.is_empty()
            || self
                .kinds
                .iter()
                .any(|k| f.kind == *k || f.kind.split('.').next() == Some(k.as_str()));
        let department_ok = self.departments.is_empty() || self.departments.contains(&f.department);
        let class_ok = self.classes.is_empty() || self.classes.contains(&f.class);
        kind_ok && department_ok && class_ok
    }
}

/// How many events wait for one slow client before it is dropped.
const CLIENT_QUEUE: usize = 256;

pub async fn stream(
    State(board): State<Board>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let who = match caller(&board, &headers, params.access_token.as_deref()) {
        Ok(who) => who,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = match Filter::parse(&params) {
        Ok(f) => f,
        Err(refusal) => return refusal.into_response(),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(params.since.clone());
    let after = match resume.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Refusal::new(
                    StatusCode::BAD_REQUEST,
                    Some("Last-Event-ID"),
                    "must be the sequence number of an event this stream sent",
                )
                .into_response();
            }
        },
    };
    // Subscribe before reading where the stream ends, so nothing falls between the replay
    // and the live events.
    let live = board.gateway.subscribe();
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(CLIENT_QUEUE);
    metrics::gauge!("redress_board_clients").increment(1.0);
    tokio::spawn(serve_client(board, who, filter, after, live, tx));
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse(who: &Identity, filter: &Filter, frame: &Frame) -> Option<Event> {
    if !filter.matches(frame) {
        return None;
    }
    let data = match access::sight(who, frame)? {
        Sight::Full => &frame.full,
        Sight::Masked => &frame.masked,
    };
    Some(
        Event::default()
            .id(frame.seq.to_string())
            .data(data.as_str()),
    )
}

async fn serve_client(
    board: Board,
    who: Identity,
    filter: Filter,
    after: Option<u64>,
    mut live: broadcast::Receiver<Arc<Frame>>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut sent = after.unwrap_or(0);
    if let Some(after) = after {
        match board.gateway.last_sequence().await {
            Ok(until) => {
                let result = board
                    .gateway
                    .replay(after, until, |frame| {
                        let delivered = match sse(&who, &filter, &frame) {
                            // A full queue while replaying is a slow client too.
                            Some(event) => tx.try_send(Ok(event)).is_ok(),
                            None => true,
                        };
                        if delivered {
                            sent = frame.seq;
                        }
                        delivered
                    })
                    .await;
                match result {
                    Ok(()) if sent < until && tx.capacity() == 0 => {
                        drop_slow(&tx, sent).await;
                        metrics::gauge!("redress_board_clients").decrement(1.0);
                        return;
                    }
                    Ok(()) => sent = sent.max(until),
                    Err(e) => tracing::warn!(error = %e, "replay for a resuming client"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "stream position for a resuming client"),
        }
    }
    loop {
        let frame = tokio::select! {
            () = board.stop.cancelled() => break,
            () = tx.closed() => break,
            frame = live.recv() => frame,
        };
        match frame {
            Ok(frame) if frame.seq <= sent => {}
            Ok(frame) => {
                if let Some(event) = sse(&who, &filter, &frame)
                    && tx.try_send(Ok(event)).is_err()
                {
                    drop_slow(&tx, sent).await;
                    break;
                }
                sent = frame.seq;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                drop_slow(&tx, sent).await;
                break;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    metrics::gauge!("redress_board_clients").decrement(1.0);
}

/// Tells a client it fell behind and where to resume, then lets it go.
async fn drop_slow(tx: &mpsc::Sender<Result<Event, Infallible>>, sent: u64) {
    metrics::counter!("redress_board_clients_dropped_total").increment(1);
    let event = Event::default().event("dropped").data(
        serde_json::json!({
            "reason": "this client fell behind the event stream and was disconnected; reconnect with Last-Event-ID to resume",
            "resume_after": sent,
        })
        .to_string(),
    );
    // The queue may be full: give it a moment, no more.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tx.send(Ok(event))).await;
}
