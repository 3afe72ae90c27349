//! `GET /events`: the event stream as Server-Sent Events.
//!
//! Query: `kind` (comma-separated; `sla` means every `sla.*`), `department`, `class` (`A`…`D`),
//! `access_token`; `Last-Event-ID` (or `since`) resumes after that JetStream sequence. Each
//! event's `id` is its sequence and its `data` is `{"seq","kind","text","complaint_id",
//! "department","class","event"}` with `event` in the proto3 JSON mapping, the customer
//! masked unless the caller may see them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use redress_platform::access::Sight;
use redress_platform::auth::Identity;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

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
    // The client's queue holds as many events as the broadcast (`REDRESS_BOARD_BUFFER`; its
    // last slot is kept for the `dropped` notice). The services publish in bursts — a relay
    // flushes hundreds of events at once — and a smaller queue dropped clients that were
    // keeping up, only not within the burst.
    let (tx, rx) = mpsc::channel::<Out>(board.gateway.buffer());
    metrics::gauge!("redress_board_clients").increment(1.0);
    tokio::spawn(serve_client(board, who, filter, after, live, Queue { tx }));
    sse_body(rx)
}

/// A comment line sent when nothing happened for this long, so proxies and browsers keep an
/// idle stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How many bytes of waiting events go out in one write at most.
const WRITE: usize = 64 * 1024;

/// The client's queue as an SSE response. Everything already waiting goes out in one write:
/// one write per event per client was, with 50 clients, the gateway's main cost under load.
fn sse_body(rx: mpsc::Receiver<Out>) -> Response {
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        let first = match tokio::time::timeout(KEEP_ALIVE, rx.recv()).await {
            Err(_) => return Some((Ok::<_, Infallible>(Bytes::from_static(b":\n\n")), rx)),
            Ok(None) => return None,
            Ok(Some(out)) => out,
        };
        let mut text = String::new();
        first.write_sse(&mut text);
        while text.len() < WRITE
            && let Ok(out) = rx.try_recv()
        {
            out.write_sse(&mut text);
        }
        Some((Ok(Bytes::from(text)), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// What goes to a client: an event as the client may see it, or the notice that it was
/// dropped. Turned into SSE only at the edge, so the forwarding can be tested as it is.
#[derive(Debug)]
enum Out {
    Frame(Arc<Frame>, Sight),
    Dropped { resume_after: u64 },
}

impl Out {
    /// Appends the SSE text of this item. The data are JSON written by `serde_json`, which
    /// escapes line breaks, so each is one `data:` line.
    fn write_sse(&self, to: &mut String) {
        use std::fmt::Write as _;
        match self {
            Out::Frame(frame, sight) => {
                let data = match sight {
                    Sight::Full => &frame.full,
                    Sight::Masked => &frame.masked,
                };
                let _ = write!(to, "id: {}\ndata: {data}\n\n", frame.seq);
            }
            Out::Dropped { resume_after } => {
                let notice = serde_json::json!({
                    "reason": "this client fell behind the event stream and was disconnected; \
                               reconnect with Last-Event-ID to resume",
                    "resume_after": resume_after,
                });
                let _ = write!(to, "event: dropped\ndata: {notice}\n\n");
            }
        }
    }
}

/// A client's queue, with its last slot kept for the `dropped` notice: a client too slow to
/// take its events must still be told why it is let go.
struct Queue {
    tx: mpsc::Sender<Out>,
}

impl Queue {
    /// Queues the frame if the client may see it; false when the client is too slow.
    fn offer(&self, who: &Identity, filter: &Filter, frame: Arc<Frame>) -> bool {
        if !filter.matches(&frame) {
            return true;
        }
        let Some(sight) = access::sight(who, &frame) else {
            return true;
        };
        self.tx.capacity() > 1 && self.tx.try_send(Out::Frame(frame, sight)).is_ok()
    }

    /// Tells the client where to resume, in the slot kept for it, and lets it go.
    fn drop_slow(&self, resume_after: u64) {
        metrics::counter!("redress_board_clients_dropped_total").increment(1);
        let _ = self.tx.try_send(Out::Dropped { resume_after });
    }
}

async fn serve_client(
    board: Board,
    who: Identity,
    filter: Filter,
    after: Option<u64>,
    live: broadcast::Receiver<Arc<Frame>>,
    queue: Queue,
) {
    let mut sent = after.unwrap_or(0);
    let mut behind = false;
    if let Some(after) = after {
        match board.gateway.last_sequence().await {
            Ok(until) => {
                let result = board
                    .gateway
                    .replay(after, until, |frame| {
                        let seq = frame.seq;
                        let taken = queue.offer(&who, &filter, Arc::new(frame));
                        if taken {
                            sent = seq;
                        } else {
                            behind = true;
                        }
                        taken
                    })
                    .await;
                match result {
                    Ok(()) if !behind => sent = sent.max(until),
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "replay for a resuming client"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "stream position for a resuming client"),
        }
    }
    if behind {
        queue.drop_slow(sent);
    } else {
        forward(live, &queue, &board.stop, &who, &filter, sent).await;
    }
    metrics::gauge!("redress_board_clients").decrement(1.0);
}

/// Forwards the live events after `sent` until the client goes, the service stops, or the
/// client falls behind (then it is told, and let go).
async fn forward(
    mut live: broadcast::Receiver<Arc<Frame>>,
    queue: &Queue,
    stop: &CancellationToken,
    who: &Identity,
    filter: &Filter,
    mut sent: u64,
) {
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => return,
            () = queue.tx.closed() => return,
            frame = live.recv() => frame,
        };
        match frame {
            Ok(frame) if frame.seq <= sent => {}
            Ok(frame) => {
                let seq = frame.seq;
                if !queue.offer(who, filter, frame) {
                    queue.drop_slow(sent);
                    return;
                }
                sent = seq;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                queue.drop_slow(sent);
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_platform::auth::Role;

    fn frame(seq: u64) -> Arc<Frame> {
        Arc::new(Frame {
            seq,
            kind: "complaint.received".into(),
            complaint_id: format!("cmp_{seq}"),
            department: "dept-network".into(),
            handler: String::new(),
            class: "C".into(),
            text: String::new(),
            occurred_at: String::new(),
            full: "{}".into(),
            masked: "{}".into(),
        })
    }

    fn viewer() -> Identity {
        Identity {
            actor_id: "wall-1".into(),
            display_name: "Wall".into(),
            role: Role::Viewer,
            departments: Vec::new(),
        }
    }

    /// Frames 1..=`last` on a broadcast of `buffer`, forwarded (after `sent`, through
    /// `filter`) to a queue of `slots` that nobody reads: what the queue then holds.
    async fn forwarded(
        buffer: usize,
        slots: usize,
        last: u64,
        filter: &Filter,
        sent: u64,
    ) -> Vec<Out> {
        let (live_tx, live) = broadcast::channel(buffer);
        let (tx, mut rx) = mpsc::channel(slots);
        for seq in 1..=last {
            live_tx.send(frame(seq)).expect("a receiver");
        }
        drop(live_tx);
        let queue = Queue { tx };
        forward(
            live,
            &queue,
            &CancellationToken::new(),
            &viewer(),
            filter,
            sent,
        )
        .await;
        let mut got = Vec::new();
        while let Ok(out) = rx.try_recv() {
            got.push(out);
        }
        got
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_told_where_to_resume_and_let_go() {
        // Three events fill its queue of four; the last slot takes the notice.
        let got = forwarded(64, 4, 10, &Filter::default(), 0).await;
        assert_eq!(got.len(), 4, "{got:?}");
        for (i, out) in got.iter().take(3).enumerate() {
            assert!(
                matches!(out, Out::Frame(f, Sight::Masked) if f.seq == i as u64 + 1),
                "{out:?}"
            );
        }
        assert!(
            matches!(got[3], Out::Dropped { resume_after: 3 }),
            "the notice says to resume after the last event sent: {:?}",
            got[3]
        );
    }

    #[tokio::test]
    async fn events_waiting_go_out_together_each_as_its_own_sse_event() {
        use futures::StreamExt as _;
        let (tx, rx) = mpsc::channel(8);
        for seq in 1..=3 {
            tx.send(Out::Frame(frame(seq), Sight::Masked))
                .await
                .unwrap();
        }
        tx.send(Out::Dropped { resume_after: 3 }).await.unwrap();
        drop(tx);
        let response = sse_body(rx);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut body = response.into_body().into_data_stream();
        let first = body.next().await.unwrap().unwrap();
        assert_eq!(
            std::str::from_utf8(&first).unwrap(),
            "id: 1\ndata: {}\n\nid: 2\ndata: {}\n\nid: 3\ndata: {}\n\n\
             event: dropped\ndata: {\"reason\":\"this client fell behind the event stream and \
             was disconnected; reconnect with Last-Event-ID to resume\",\"resume_after\":3}\n\n",
            "all four waiting items in one write"
        );
        assert!(
            body.next().await.is_none(),
            "the stream ends with the queue"
        );
    }

    #[tokio::test]
    async fn a_client_whose_buffer_was_overrun_is_dropped_too() {
        let got = forwarded(16, 64, 40, &Filter::default(), 0).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            matches!(got[0], Out::Dropped { resume_after: 0 }),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_client_keeping_up_gets_every_event_it_asked_for_in_order() {
        let filter = Filter {
            classes: vec!["C".into()],
            ..Filter::default()
        };
        let got = forwarded(64, 64, 5, &filter, 2).await;
        let seqs: Vec<u64> = got
            .iter()
            .map(|out| match out {
                Out::Frame(f, _) => f.seq,
                Out::Dropped { .. } => panic!("dropped: {got:?}"),
            })
            .collect();
        assert_eq!(seqs, vec![3, 4, 5], "after the resume point, in order");
    }
}
