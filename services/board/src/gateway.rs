//! The event gateway: the events stream for those who cannot speak NATS or protobuf, as
//! Server-Sent Events in the proto3 JSON mapping.
//!
//! One ordered JetStream consumer reads every event once; each is decoded, turned into JSON
//! (with and without the customer's personal data) and broadcast to the connected clients,
//! which filter it. A client that falls behind by more than the broadcast's capacity is told
//! (`event: dropped`) and disconnected rather than allowed to hold back the others; its browser
//! reconnects with `Last-Event-ID`, and the gap is read back from JetStream by sequence.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt as _;
use prost::Message as _;
use redress_platform::nats::Topology;
use redress_proto::json::event_json_texts;
use redress_proto::v1;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::fold::{Change, class_letter, fold};
use crate::store;

/// One event as clients receive it.
#[derive(Debug)]
pub struct Frame {
    /// The JetStream sequence: the SSE `id`, and what `Last-Event-ID` resumes after.
    pub seq: u64,
    pub kind: String,
    pub complaint_id: String,
    /// Where the complaint stands, for filters and for who may see it (empty when unknown).
    pub department: String,
    pub handler: String,
    pub class: String,
    /// What happened, in words.
    pub text: String,
    pub occurred_at: String,
    /// `{"seq", "kind", "text", "department", "class", "event"}` as JSON, with the customer
    /// shown, and with the customer masked.
    pub full: String,
    pub masked: String,
}

/// Everything of a frame's JSON but the event, which is spliced in as text: the event is
/// already JSON text, and turning it into a `serde_json::Value` to write it out again cost as
/// much as making it.
#[derive(Serialize)]
struct Head<'a> {
    seq: u64,
    kind: &'a str,
    text: &'a str,
    complaint_id: &'a str,
    department: &'a str,
    class: &'a str,
}

impl Head<'_> {
    /// `{…head…,"event":<event>}`.
    fn with_event(&self, event: &str) -> Option<String> {
        let head = serde_json::to_string(self).ok()?;
        let open = head.strip_suffix('}')?;
        Some(format!("{open},\"event\":{event}}}"))
    }
}

/// Where each complaint stands, as far as the gateway has seen: the department, the handler
/// and the class. Filled from the events themselves, and from the projection for complaints
/// whose earlier events came before this process started.
#[derive(Clone, Debug, Default)]
struct Place {
    department: String,
    handler: String,
    class: String,
}

pub struct Gateway {
    js: jetstream::Context,
    topology: Topology,
    pool: PgPool,
    tx: broadcast::Sender<Arc<Frame>>,
    /// Events held for the slowest client (the broadcast's and each client's queue).
    buffer: usize,
    places: Mutex<HashMap<String, Place>>,
    recent: Mutex<VecDeque<Arc<Frame>>>,
}

/// How many recent events the board's ticker shows after a reload.
const RECENT: usize = 50;

impl Gateway {
    pub fn new(js: jetstream::Context, topology: Topology, pool: PgPool, capacity: usize) -> Self {
        let buffer = capacity.max(16);
        let (tx, _) = broadcast::channel(buffer);
        Self {
            js,
            topology,
            pool,
            tx,
            buffer,
            places: Mutex::default(),
            recent: Mutex::default(),
        }
    }

    /// How many events a client may be behind before it is dropped.
    pub fn buffer(&self) -> usize {
        self.buffer
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.tx.subscribe()
    }

    /// The last events seen, oldest first.
    pub fn recent(&self) -> Vec<Arc<Frame>> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Reads the stream from now on and broadcasts every event, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut next: Option<u64> = None;
        while !stop.is_cancelled() {
            match self.follow(next, &stop).await {
                Ok(last) => next = last.map(|s| s + 1).or(next),
                Err((last, e)) => {
                    next = last.map(|s| s + 1).or(next);
                    tracing::warn!(error = %e, "event gateway lost the stream; reconnecting");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn follow(
        &self,
        from: Option<u64>,
        stop: &CancellationToken,
    ) -> Result<Option<u64>, (Option<u64>, String)> {
        let mut last = None;
        let deliver_policy = match from {
            Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            None => DeliverPolicy::New,
        };
        let mut messages = self.ordered(deliver_policy).await.map_err(|e| (None, e))?;
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(last),
                m = messages.next() => match m {
                    Some(Ok(m)) => {
                        let seq = m.info().map(|i| i.stream_sequence).unwrap_or_default();
                        last = Some(seq);
                        if let Some(frame) = self.frame(seq, &m.payload, true).await {
                            let frame = Arc::new(frame);
                            if let Ok(mut recent) = self.recent.lock() {
                                recent.push_back(frame.clone());
                                while recent.len() > RECENT {
                                    recent.pop_front();
                                }
                            }
                            metrics::counter!("redress_board_events_total").increment(1);
                            // No receiver is not an error: nobody is watching.
                            let _ = self.tx.send(frame);
                        }
                    }
                    Some(Err(e)) => return Err((last, e.to_string())),
                    None => return Ok(last),
                },
            }
        }
    }

    async fn ordered(
        &self,
        deliver_policy: DeliverPolicy,
    ) -> Result<jetstream::consumer::pull::Ordered, String> {
        let stream = self
            .js
            .get_stream(self.topology.events_stream())
            .await
            .map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.topology.all_events(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        consumer.messages().await.map_err(|e| e.to_string())
    }

    /// The stream's last sequence now.
    pub async fn last_sequence(&self) -> Result<u64, String> {
        let stream = self
            .js
            .get_stream(self.topology.events_stream())
            .await
            .map_err(|e| e.to_string())?;
        Ok(stream
            .get_info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .last_sequence)
    }

    /// The events after `after` up to `until` (inclusive), read back from JetStream, for a
    /// client that reconnects with `Last-Event-ID`.
    pub async fn replay(
        &self,
        after: u64,
        until: u64,
        mut each: impl FnMut(Frame) -> bool,
    ) -> Result<(), String> {
        if after >= until {
            return Ok(());
        }
        let mut messages = self
            .ordered(DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            })
            .await?;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| e.to_string())?;
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or_default();
            if seq > until {
                break;
            }
            if let Some(frame) = self.frame(seq, &m.payload, false).await
                && !each(frame)
            {
                break;
            }
            if seq >= until {
                break;
            }
        }
        Ok(())
    }

    /// Builds a frame; `learn` records where the complaint stands from this event (the live
    /// reader does, a replay must not move the places back in time).
    async fn frame(&self, seq: u64, payload: &[u8], learn: bool) -> Option<Frame> {
        let event = match v1::Event::decode(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(seq, error = %e, "not an Event on the events stream; skipped");
                return None;
            }
        };
        let kind = event.kind().unwrap_or("unknown").to_owned();
        let place = self.place(&event, learn).await;
        let text = event
            .payload
            .as_ref()
            .map(v1::event::Payload::describe)
            .unwrap_or_default();
        let (full, masked) = match event_json_texts(payload) {
            Ok(texts) => texts,
            Err(e) => {
                tracing::warn!(seq, error = %e, "event not given as JSON; skipped");
                return None;
            }
        };
        let head = Head {
            seq,
            kind: &kind,
            text: &text,
            complaint_id: &event.complaint_id,
            department: &place.department,
            class: &place.class,
        };
        Some(Frame {
            seq,
            full: head.with_event(&full)?,
            masked: head.with_event(&masked)?,
            occurred_at: event
                .occurred_at
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            kind,
            complaint_id: event.complaint_id.clone(),
            department: place.department,
            handler: place.handler,
            class: place.class,
            text,
        })
    }

    async fn place(&self, event: &v1::Event, learn: bool) -> Place {
        let id = &event.complaint_id;
        if id.is_empty() {
            return Place::default();
        }
        let change = fold(event);
        let known = self.places.lock().ok().and_then(|p| p.get(id).cloned());
        let mut place = match known {
            Some(p) => p,
            // A complaint's first event: there is nothing to look up, and asking the
            // projection for every new complaint put a database round trip on the stream's
            // path (the gateway's lag under load).
            None if matches!(change, Change::Received { .. }) => Place::default(),
            None => match store::place_of(&self.pool, id).await {
                Ok(Some((department, handler, class))) => Place {
                    department,
                    handler,
                    class,
                },
                _ => Place::default(),
            },
        };
        match change {
            Change::Received { class, .. } | Change::Class { class, .. } if !class.is_empty() => {
                place.class = class;
            }
            Change::Stage {
                department_id,
                handler,
                ..
            } => {
                if let Some(d) = department_id {
                    place.department = d;
                }
                if let Some((h, _)) = handler {
                    place.handler = h;
                }
            }
            _ => {}
        }
        if let Some(v1::event::Payload::SlaOverdue(o)) = &event.payload
            && place.class.is_empty()
        {
            place.class = class_letter(o.class);
        }
        if learn && let Ok(mut places) = self.places.lock() {
            places.insert(id.clone(), place.clone());
        }
        place
    }
}
