//! The idempotent consumer: durable pull consumers that apply each message exactly once.
//!
//! JetStream delivers at least once: after a crash, a timeout or a replica's restart the same
//! message comes again. So the effect of a message and the record that it was processed
//! (`processed_messages`) commit in one transaction, and the message is acknowledged only after
//! that commit. A redelivered message finds its id recorded and is acknowledged without effect.
//!
//! Batches: messages that are waiting are taken together (up to `batch` at once) and applied in
//! one transaction — one commit for many messages, which is how a service keeps up with
//! thousands of events per second when one commit costs ~0.1 ms. If anything in the batch
//! fails, the batch is rolled back and replayed one message per transaction, so one bad message
//! never holds back the others.
//!
//! Failures: a [`HandleError::Permanent`] failure (the message can never be applied) sends the
//! message to the dead-letter subject at once, with the reason, and moves on; a
//! [`HandleError::Transient`] one is retried with growing delays, and dead-lettered when the
//! last allowed delivery fails too — unless the database was [`unavailable`]: then it is
//! retried for as long as the outage lasts, and never dead-lettered for it. Dead letters go
//! through the outbox, so recording them is itself exactly once, and a message is acknowledged
//! only once its dead letter is stored; the server never stops redelivering it before that.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use redress_proto::v1;

use crate::metrics::AfterCommit;
use crate::nats::backoff_delay;
use crate::outbox::{DEAD_LETTER_REASON_HEADER, Outbox, OutgoingMessage};
use crate::telemetry;

/// One message as a handler sees it.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The durable consumer's name.
    pub consumer: &'a str,
    pub subject: &'a str,
    pub headers: Option<&'a async_nats::HeaderMap>,
    pub payload: &'a [u8],
    /// `Nats-Msg-Id` (the event id) when present, else `<stream>:<sequence>`.
    pub message_id: String,
    /// How many times this message has been delivered, this time included.
    pub deliveries: i64,
    /// Metric updates for what the handler changed, applied once the consumer's transaction
    /// commits (the handler never sees the commit).
    pub after_commit: &'a AfterCommit,
    /// The payload as an event, decoded on first use ([`Incoming::event`]).
    decoded: std::sync::OnceLock<Result<v1::Event, String>>,
    /// What the handler's [`Handler::prepare`] made of the message, until its `handle` takes it.
    prepared: Mutex<Option<Box<dyn Any + Send>>>,
}

impl<'a> Incoming<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        consumer: &'a str,
        subject: &'a str,
        headers: Option<&'a async_nats::HeaderMap>,
        payload: &'a [u8],
        message_id: String,
        deliveries: i64,
        after_commit: &'a AfterCommit,
    ) -> Self {
        Incoming {
            consumer,
            subject,
            headers,
            payload,
            message_id,
            deliveries,
            after_commit,
            decoded: std::sync::OnceLock::new(),
            prepared: Mutex::new(None),
        }
    }
}

impl Incoming<'_> {
    /// Keeps what [`Handler::prepare`] made of the message for the handler's `handle` or
    /// `handle_batch` ([`Incoming::take_prepared`]).
    pub fn set_prepared<T: Any + Send>(&self, value: T) {
        *self.prepared.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(value));
    }

    /// What [`Handler::prepare`] left, if it left a `T` that nothing took yet. A handler falls
    /// back to doing the work itself when there is none (a test that calls `handle` directly).
    pub fn take_prepared<T: Any + Send>(&self) -> Option<T> {
        let mut slot = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                *slot = Some(other);
                None
            }
        }
    }

    /// The message as a Redress event, decoded once however often a handler asks (a batch's
    /// `pick` and the one-at-a-time path share it). A payload that is no event can never be
    /// applied: the error dead-letters it.
    pub fn event(&self) -> Result<&v1::Event, HandleError> {
        self.decoded
            .get_or_init(|| {
                <v1::Event as prost::Message>::decode(self.payload)
                    .map_err(|e| format!("not an Event: {e}"))
            })
            .as_ref()
            .map_err(|e| HandleError::Permanent(e.clone()))
    }

    /// A header's value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers?.get(name).map(|v| v.as_str())
    }

    /// Records the message in its span as taken into a batch handler's set-based path, the
    /// counterpart of the record [`handle_in_span`] leaves, so the message's trace shows this
    /// service (the events the batch writes carry the trace through [`Incoming::span`]).
    pub fn record_batched(&self) {
        self.span()
            .in_scope(|| tracing::debug!(deliveries = self.deliveries, "applied in a batch"));
    }

    /// The message's span: its consumer, subject, message and complaint ids, and the trace it
    /// carries. Events written inside it continue that trace.
    pub fn span(&self) -> tracing::Span {
        let span = tracing::info_span!("consume", consumer = %self.consumer, subject = %self.subject,
            message_id = %self.message_id, complaint_id = self.header(crate::outbox::COMPLAINT_ID_HEADER).unwrap_or(""),
            trace_id = tracing::field::Empty);
        telemetry::extract_nats(&span, self.headers);
        span
    }
}

/// Why a handler could not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The message can never be applied: it is dead-lettered now, with this reason.
    #[error("{0}")]
    Permanent(String),
    /// It may succeed later: the message is redelivered after a delay.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        HandleError::Transient(e.into())
    }
}

impl From<crate::outbox::AppendError> for HandleError {
    fn from(e: crate::outbox::AppendError) -> Self {
        HandleError::Transient(e.into())
    }
}

/// Applies messages. Implementations write their effects (and any events, through the
/// [`Outbox`]) on `conn`, which is inside the consumer's transaction: they must not commit.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The work on a message that needs no database — decoding, validation — done before the
    /// consumer's transaction begins, so the transaction holds its locks only while it writes
    /// (issue 18: decoding inside it kept connections "idle in transaction"). The default
    /// decodes the message as an event ([`Incoming::event`] keeps it). A handler that does
    /// more keeps the result with [`Incoming::set_prepared`]. The message may yet prove a
    /// duplicate and be skipped, so this must have no effect beyond the message: no metrics,
    /// no outcome logged.
    fn prepare(&self, msg: &Incoming<'_>) {
        let _ = msg.event();
    }

    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError>;

    /// Applies a batch of fresh messages, in order, with the same effect as handling each in
    /// turn. The default does exactly that, each in its own span. A handler that can write a
    /// whole batch in a few statements overrides it: one statement for many rows is how a
    /// service keeps up with thousands of messages a second. Events it writes should be built
    /// inside each message's [`Incoming::span`], so they continue that message's trace. On any
    /// error the consumer rolls the batch back and replays it through [`Handler::handle`], one
    /// message per transaction.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        for msg in msgs {
            handle_in_span(self, conn, msg).await?;
        }
        Ok(())
    }
}

/// A consumer batch taken apart for a handler with a set-based path: runs of messages it
/// applies together, and the others, each to be applied alone.
pub enum Segment<'a, 'i, T> {
    Run(Vec<T>),
    Alone(&'a Incoming<'i>),
}

/// Splits `msgs`, in order, into runs of what `pick` takes and the messages it leaves. A
/// handler applies each run at once and every other message alone, after the run before it, so
/// each complaint's events keep their order. Each message taken leaves its record in its span
/// ([`Incoming::record_batched`]).
pub fn segments<'a, 'i, T>(
    msgs: &[&'a Incoming<'i>],
    pick: impl Fn(&'a Incoming<'i>) -> Option<T>,
) -> Vec<Segment<'a, 'i, T>> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    for &msg in msgs {
        match pick(msg) {
            Some(item) => {
                msg.record_batched();
                run.push(item);
            }
            None => {
                if !run.is_empty() {
                    out.push(Segment::Run(std::mem::take(&mut run)));
                }
                out.push(Segment::Alone(msg));
            }
        }
    }
    if !run.is_empty() {
        out.push(Segment::Run(run));
    }
    out
}

/// A handler whose batches hold runs of events it applies together (a complaint's arrival steps,
/// mostly): [`handle_in_runs`] takes a batch apart into runs of the events [`Runs::in_run`]
/// picks, each applied by [`Runs::apply_run`], and the messages between, handled alone in their
/// place, so each complaint's events keep their order.
#[async_trait::async_trait]
pub trait Runs: Handler {
    /// Whether `event` may be applied in a run with its neighbours.
    fn in_run(&self, event: &v1::Event) -> bool;

    /// Applies a run, with the effect of handling each message in turn.
    async fn apply_run(
        &self,
        conn: &mut PgConnection,
        run: Vec<(&Incoming<'_>, &v1::Event)>,
    ) -> Result<(), HandleError>;
}

/// A batch through [`Runs`]: runs applied together, every other message alone, in order. A
/// [`Runs`] handler's `handle_batch` is this.
pub async fn handle_in_runs<H: Runs + ?Sized>(
    handler: &H,
    conn: &mut PgConnection,
    msgs: &[&Incoming<'_>],
) -> Result<(), HandleError> {
    for segment in segments(msgs, |m| {
        m.event().ok().filter(|e| handler.in_run(e)).map(|e| (m, e))
    }) {
        match segment {
            Segment::Run(run) => handler.apply_run(conn, run).await?,
            Segment::Alone(msg) => handle_in_span(handler, conn, msg).await?,
        }
    }
    Ok(())
}

/// Runs `handler` on one message in the message's span, so its logs and the events it writes
/// belong to the message's trace.
pub async fn handle_in_span<H: Handler + ?Sized>(
    handler: &H,
    conn: &mut PgConnection,
    msg: &Incoming<'_>,
) -> Result<(), HandleError> {
    async {
        handler.handle(conn, msg).await?;
        tracing::debug!(deliveries = msg.deliveries, "handled");
        Ok(())
    }
    .instrument(msg.span())
    .await
}

/// Runs one durable consumer.
pub struct Consumer<H> {
    name: String,
    pool: PgPool,
    outbox: Outbox,
    handler: Arc<H>,
    pull: jetstream::consumer::PullConsumer,
    batch: usize,
    max_deliver: i64,
    exit_after_commit: bool,
    /// How often a batch still being applied tells the server it is in progress.
    progress_every: Option<Duration>,
    /// How long to wait for more messages when a batch arrives short.
    linger: Option<Duration>,
}

enum Outcome {
    Ack,
    Nak(Duration),
}

impl<H: Handler> Consumer<H> {
    pub fn new(
        name: impl Into<String>,
        pool: PgPool,
        outbox: Outbox,
        handler: Arc<H>,
        pull: jetstream::consumer::PullConsumer,
        batch: usize,
        max_deliver: i64,
    ) -> Self {
        Self {
            name: name.into(),
            pool,
            outbox,
            handler,
            pull,
            batch: batch.max(1),
            max_deliver: max_deliver.max(1),
            exit_after_commit: false,
            progress_every: None,
            linger: None,
        }
    }

    /// Waits up to `linger` for more messages when a batch arrives short of the batch size
    /// (zero: never), so a busy consumer applies fewer, larger batches.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = (!linger.is_zero()).then_some(linger);
        self
    }

    /// Sends progress acknowledgements for a batch still being applied, three times per
    /// `ack_wait` (the consumer's), so a slow but healthy batch — a long replay after an
    /// outage, a database under load — is never redelivered to another replica meanwhile:
    /// redelivery follows only a real failure (a nak) or a replica that died.
    pub fn with_progress(mut self, ack_wait: Duration) -> Self {
        self.progress_every = Some((ack_wait / 3).max(Duration::from_millis(100)));
        self
    }

    /// Test-only: exit the process after the first commit, before acknowledging.
    pub fn with_exit_after_commit(mut self, on: bool) -> Self {
        self.exit_after_commit = on;
        self
    }

    /// Sets `redress_consumer_pending{consumer}` (messages in the stream not yet delivered to
    /// the consumer) and `redress_consumer_ack_pending{consumer}` (delivered, not yet
    /// acknowledged) from the server's view every `period`, until `stop`. The server counts for
    /// all replicas, so each replica reports the same figure.
    pub fn watch_pending(
        &self,
        period: Duration,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let name = self.name.clone();
        let pull = self.pull.clone();
        crate::metrics::sample_every(period, stop, move || {
            let name = name.clone();
            let pull = pull.clone();
            async move {
                match pull.get_info().await {
                    Ok(info) => {
                        metrics::gauge!("redress_consumer_pending", "consumer" => name.clone())
                            .set(info.num_pending as f64);
                        metrics::gauge!("redress_consumer_ack_pending", "consumer" => name)
                            .set(info.num_ack_pending as f64);
                    }
                    Err(e) => {
                        tracing::debug!(consumer = %name, error = %e, "cannot read consumer info");
                    }
                }
            }
        })
    }

    /// Consumes until `shutdown`; the batch in hand is finished and acknowledged first.
    pub async fn run(self, shutdown: CancellationToken) {
        // At zero from the start, so dashboards and alerts see the series before the first one.
        metrics::counter!("redress_dead_letters_total", "consumer" => self.name.clone())
            .increment(0);
        while !shutdown.is_cancelled() {
            let stream = self
                .pull
                .stream()
                .max_messages_per_batch(self.batch)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await;
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(consumer = %self.name, error = %e, "cannot pull; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let mut chunks = stream.ready_chunks(self.batch);
            loop {
                let chunk = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    c = chunks.next() => c,
                };
                let Some(chunk) = chunk else { break };
                let mut chunk = chunk;
                if let Some(linger) = self.linger
                    && chunk.len() < self.batch
                {
                    let until = tokio::time::Instant::now() + linger;
                    while chunk.len() < self.batch {
                        match tokio::time::timeout_at(until, chunks.next()).await {
                            Ok(Some(more)) => chunk.extend(more),
                            _ => break,
                        }
                    }
                }
                let mut messages = Vec::with_capacity(chunk.len());
                for m in chunk {
                    match m {
                        Ok(m) => messages.push(m),
                        Err(e) => tracing::debug!(consumer = %self.name, error = %e, "pull stream"),
                    }
                }
                if !messages.is_empty() {
                    self.process(messages).await;
                }
            }
        }
    }

    /// Applies one batch and acknowledges it. Public for tests that drive a consumer by hand.
    pub async fn process(&self, messages: Vec<jetstream::Message>) {
        let started = Instant::now();
        let n = messages.len();
        let applied = async {
            match self.progress_every {
                None => self.decide(&messages).await,
                Some(every) => {
                    let progress = async {
                        loop {
                            tokio::time::sleep(every).await;
                            for m in &messages {
                                if let Err(e) = m.ack_with(AckKind::Progress).await {
                                    tracing::debug!(consumer = %self.name, error = %e, "progress ack");
                                }
                            }
                        }
                    };
                    tokio::select! {
                        outcomes = self.decide(&messages) => outcomes,
                        never = progress => never,
                    }
                }
            }
        };
        let outcomes = applied.await;
        if self.exit_after_commit {
            tracing::error!(consumer = %self.name, "fault injection: exiting before acknowledging");
            std::process::exit(87);
        }
        for (m, outcome) in messages.iter().zip(outcomes) {
            let r = match outcome {
                Outcome::Ack => m.ack().await,
                Outcome::Nak(d) => m.ack_with(AckKind::Nak(Some(d))).await,
            };
            if let Err(e) = r {
                // The effect is committed; a lost ack only means a harmless redelivery.
                tracing::warn!(consumer = %self.name, error = %e, "ack failed");
            }
        }
        metrics::counter!("redress_messages_consumed_total", "consumer" => self.name.clone())
            .increment(n as u64);
        metrics::histogram!("redress_batch_seconds", "consumer" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
    }

    /// Applies a batch — whole, or one message at a time if the whole fails — and decides each
    /// message's acknowledgement.
    async fn decide(&self, messages: &[jetstream::Message]) -> Vec<Outcome> {
        let n = messages.len();
        match self.apply_batch(messages).await {
            Ok(()) => (0..n).map(|_| Outcome::Ack).collect(),
            Err(e) if self.outage(&e).await => {
                // The database is away: trying each message alone would only wait for the pool
                // once per message. The whole batch comes again later, counting nothing.
                tracing::warn!(consumer = %self.name, error = %e, messages = n,
                    "database unavailable; the batch will be retried");
                messages
                    .iter()
                    .map(|m| {
                        let deliveries = m.info().map(|i| i.delivered).unwrap_or(1);
                        Outcome::Nak(backoff_delay(deliveries as u32))
                    })
                    .collect()
            }
            Err(e) => {
                if n > 1 {
                    tracing::debug!(consumer = %self.name, error = %e, "batch failed; applying one by one");
                }
                let mut out = Vec::with_capacity(n);
                for m in messages {
                    out.push(self.apply_one(m).await);
                }
                out
            }
        }
    }

    /// What replays this consumer's dead letters on request ([`Replayer::run`]).
    pub fn replayer(&self) -> Replayer<H> {
        Replayer {
            name: self.name.clone(),
            pool: self.pool.clone(),
            outbox: self.outbox.clone(),
            handler: self.handler.clone(),
        }
    }

    fn incoming<'a>(
        &'a self,
        m: &'a jetstream::Message,
        after_commit: &'a AfterCommit,
    ) -> Incoming<'a> {
        let (deliveries, fallback_id) = match m.info() {
            Ok(i) => (i.delivered, format!("{}:{}", i.stream, i.stream_sequence)),
            Err(_) => (1, format!("subject:{}", m.subject)),
        };
        let message_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or(fallback_id);
        Incoming::new(
            &self.name,
            m.subject.as_str(),
            m.headers.as_ref(),
            &m.payload,
            message_id,
            deliveries,
            after_commit,
        )
    }

    /// The fast path: the whole batch in one transaction.
    async fn apply_batch(&self, messages: &[jetstream::Message]) -> Result<(), HandleError> {
        let after_commit = AfterCommit::default();
        let incoming: Vec<Incoming<'_>> = messages
            .iter()
            .map(|m| self.incoming(m, &after_commit))
            .collect();
        let ids: Vec<String> = incoming.iter().map(|i| i.message_id.clone()).collect();
        for msg in &incoming {
            self.handler.prepare(msg);
        }
        let mut tx = self.pool.begin().await?;
        let fresh: Vec<String> = sqlx::query_scalar(
            "INSERT INTO processed_messages (consumer, message_id)
             SELECT $1, id FROM UNNEST($2::text[]) AS t(id)
             ON CONFLICT DO NOTHING RETURNING message_id",
        )
        .bind(&self.name)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut fresh: HashSet<String> = fresh.into_iter().collect();
        let mut to_apply = Vec::with_capacity(incoming.len());
        for msg in &incoming {
            // `remove` also skips a second copy of the same id inside one batch.
            if !fresh.remove(&msg.message_id) {
                let name = self.name.clone();
                after_commit.defer(move || {
                    metrics::counter!("redress_duplicates_skipped_total", "consumer" => name)
                        .increment(1);
                });
                continue;
            }
            to_apply.push(msg);
        }
        if !to_apply.is_empty() {
            self.handler.handle_batch(&mut tx, &to_apply).await?;
        }
        tx.commit().await?;
        after_commit.committed();
        self.outbox.wake();
        Ok(())
    }

    /// The slow path: one message per transaction, deciding its fate alone.
    async fn apply_one(&self, m: &jetstream::Message) -> Outcome {
        let after_commit = AfterCommit::default();
        let msg = self.incoming(m, &after_commit);
        match self.try_apply_one(&msg).await {
            Ok(()) => {
                after_commit.committed();
                Outcome::Ack
            }
            Err(HandleError::Permanent(reason)) => self.dead_letter(&msg, &reason).await,
            Err(HandleError::Transient(e)) => {
                if unavailable(&e) || self.database_unreachable().await {
                    // Nothing is wrong with the message: it waits for the database for as long
                    // as it takes, and this never counts toward dead-lettering.
                    tracing::warn!(consumer = %self.name, message_id = %msg.message_id,
                        deliveries = msg.deliveries, error = %format!("{e:#}"),
                        "database unavailable; will retry");
                    return Outcome::Nak(backoff_delay(msg.deliveries as u32));
                }
                if msg.deliveries >= self.max_deliver {
                    let reason = format!("gave up after {} deliveries: {e:#}", msg.deliveries);
                    return self.dead_letter(&msg, &reason).await;
                }
                tracing::warn!(consumer = %self.name, message_id = %msg.message_id,
                    deliveries = msg.deliveries, error = %format!("{e:#}"), "will retry");
                Outcome::Nak(backoff_delay(msg.deliveries as u32))
            }
        }
    }

    /// Whether a batch failed for want of the database (never a message's own fault).
    async fn outage(&self, e: &HandleError) -> bool {
        match e {
            HandleError::Permanent(_) => false,
            HandleError::Transient(e) => unavailable(e) || self.database_unreachable().await,
        }
    }

    /// Whether the database cannot be reached right now. Asked after a transient failure whose
    /// error does not say so itself (a handler's own error type may wrap the database's).
    async fn database_unreachable(&self) -> bool {
        !matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(&self.pool)
            )
            .await,
            Ok(Ok(_))
        )
    }

    async fn try_apply_one(&self, msg: &Incoming<'_>) -> Result<(), HandleError> {
        self.handler.prepare(msg);
        let mut tx = self.pool.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.name)
        .bind(&msg.message_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            handle_in_span(self.handler.as_ref(), &mut tx, msg).await?;
        } else {
            let name = self.name.clone();
            msg.after_commit.defer(move || {
                metrics::counter!("redress_duplicates_skipped_total", "consumer" => name)
                    .increment(1);
            });
        }
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Records the message as given up on and publishes it, with the reason, on the
    /// dead-letter subject — all in one transaction, so it happens once.
    async fn dead_letter(&self, msg: &Incoming<'_>, reason: &str) -> Outcome {
        tracing::error!(consumer = %self.name, message_id = %msg.message_id, %reason, "dead-lettering message");
        // Whether this delivery recorded the dead letter (a redelivery finds it recorded).
        let result: Result<bool, HandleError> = async {
            let mut tx = self.pool.begin().await?;
            let fresh = sqlx::query(
                "INSERT INTO processed_messages (consumer, message_id, outcome)
                 VALUES ($1, $2, 'dead_letter') ON CONFLICT DO NOTHING",
            )
            .bind(&self.name)
            .bind(&msg.message_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if fresh {
                let original: serde_json::Map<String, serde_json::Value> = msg
                    .headers
                    .map(|h| {
                        h.iter()
                            .filter_map(|(k, v)| {
                                Some((k.to_string(), v.first()?.as_str().to_owned().into()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                sqlx::query(
                    "INSERT INTO dead_letters (consumer, message_id, subject, reason, deliveries,
                        payload, headers)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (consumer, message_id) DO UPDATE SET
                        reason = EXCLUDED.reason, deliveries = EXCLUDED.deliveries,
                        replay_requested_at = NULL",
                )
                .bind(&self.name)
                .bind(&msg.message_id)
                .bind(msg.subject)
                .bind(reason)
                .bind(msg.deliveries)
                .bind(msg.payload)
                .bind(serde_json::Value::Object(original))
                .execute(&mut *tx)
                .await?;
                let mut headers = BTreeMap::new();
                headers.insert(DEAD_LETTER_REASON_HEADER.to_owned(), header_safe(reason));
                headers.insert(
                    "Redress-Original-Subject".to_owned(),
                    msg.subject.to_owned(),
                );
                headers.insert(
                    "Redress-Original-Message-Id".to_owned(),
                    msg.message_id.clone(),
                );
                headers.insert("Redress-Consumer".to_owned(), self.name.clone());
                headers.insert("Redress-Deliveries".to_owned(), msg.deliveries.to_string());
                if let Some(ct) = msg.header("Content-Type") {
                    headers.insert("Content-Type".to_owned(), ct.to_owned());
                }
                let dl = OutgoingMessage {
                    message_id: format!("dl:{}:{}", self.name, msg.message_id),
                    complaint_id: String::new(),
                    subject: self.outbox.topology().dead_letter_subject(&self.name),
                    payload: msg.payload.to_vec(),
                    headers,
                };
                self.outbox.append_messages(&mut tx, &[dl]).await?;
            }
            tx.commit().await?;
            self.outbox.wake();
            Ok(fresh)
        }
        .await;
        match result {
            Ok(recorded) => {
                if recorded {
                    metrics::counter!("redress_dead_letters_total", "consumer" => self.name.clone())
                        .increment(1);
                }
                Outcome::Ack
            }
            Err(e) => {
                tracing::warn!(consumer = %self.name, error = %e, "cannot record dead letter; will retry");
                Outcome::Nak(backoff_delay(msg.deliveries as u32))
            }
        }
    }
}

/// Whether a failure says the database could not be reached or could not serve the
/// transaction — the pool timed out, the connection broke or was refused, the server is
/// shutting down or starting, a serialization failure or deadlock — rather than anything about
/// the message. Such failures are retried without limit.
pub fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
            return match db {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(d) => d.code().is_some_and(|code| {
                    // 08: connection exception; 57P01–57P03: shutdown, crash, cannot connect
                    // now; 53: insufficient resources; 40001 / 40P01: retry the transaction.
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code.starts_with("53")
                        || code == "40001"
                        || code == "40P01"
                }),
                _ => false,
            };
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

/// NATS header values are one line of printable text.
fn header_safe(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(1000).collect()
}

/// Forgets processed message ids older than `older_than`, a few thousand rows per statement so
/// no delete holds locks for long. Returns how many were forgotten. Runs with the outbox
/// cleanup ([`crate::outbox::Relay`]); without it the table would grow with every message.
pub async fn prune_processed(pool: &PgPool, older_than: Duration) -> Result<u64, sqlx::Error> {
    const CHUNK: i64 = 5_000;
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM processed_messages WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM processed_messages
                WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2))",
        )
        .bind(older_than.as_secs_f64())
        .bind(CHUNK)
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// Replays a consumer's dead letters that an operator asked for (`replay_requested_at`), once
/// each: the message goes through the consumer's own handler — idempotent, as for a
/// redelivery — in one transaction with its processed id and the dead letter's outcome. A
/// message that fails on its content again stays a dead letter, with the new reason.
pub struct Replayer<H> {
    name: String,
    pool: PgPool,
    outbox: Outbox,
    handler: Arc<H>,
}

/// How often a consumer looks for replay requests.
const REPLAY_PERIOD: Duration = Duration::from_secs(1);

impl<H: Handler> Replayer<H> {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(REPLAY_PERIOD) => {}
            }
            if let Err(e) = self.replay_requested().await {
                tracing::warn!(consumer = %self.name, error = %e, "dead-letter replay pass failed; will retry");
            }
        }
    }

    /// One pass over the requests; returns how many were replayed.
    pub async fn replay_requested(&self) -> Result<usize, HandleError> {
        let rows: Vec<(String, String, Vec<u8>, serde_json::Value)> = sqlx::query_as(
            "SELECT message_id, subject, payload, headers FROM dead_letters
             WHERE consumer = $1 AND replay_requested_at IS NOT NULL
             ORDER BY created_at LIMIT 100",
        )
        .bind(&self.name)
        .fetch_all(&self.pool)
        .await?;
        let mut replayed = 0;
        for (message_id, subject, payload, headers) in rows {
            let mut map = async_nats::HeaderMap::new();
            if let serde_json::Value::Object(h) = &headers {
                for (k, v) in h {
                    if let Some(v) = v.as_str() {
                        map.insert(k.as_str(), v);
                    }
                }
            }
            let after_commit = AfterCommit::default();
            let msg = Incoming::new(
                &self.name,
                &subject,
                Some(&map),
                &payload,
                message_id.clone(),
                1,
                &after_commit,
            );
            self.handler.prepare(&msg);
            let mut tx = self.pool.begin().await?;
            // Claimed by this replica: another one's pass skips it.
            let claimed = sqlx::query(
                "SELECT 1 FROM dead_letters WHERE consumer = $1 AND message_id = $2
                   AND replay_requested_at IS NOT NULL FOR UPDATE SKIP LOCKED",
            )
            .bind(&self.name)
            .bind(&message_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if !claimed {
                continue;
            }
            sqlx::query(
                "DELETE FROM processed_messages WHERE consumer = $1 AND message_id = $2
                   AND outcome = 'dead_letter'",
            )
            .bind(&self.name)
            .bind(&message_id)
            .execute(&mut *tx)
            .await?;
            match handle_in_span(self.handler.as_ref(), &mut tx, &msg).await {
                Ok(()) => {
                    sqlx::query(
                        "INSERT INTO processed_messages (consumer, message_id, outcome)
                         VALUES ($1, $2, 'replayed') ON CONFLICT DO NOTHING",
                    )
                    .bind(&self.name)
                    .bind(&message_id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE dead_letters SET replay_requested_at = NULL, replayed_at = now(),
                            replay_error = '' WHERE consumer = $1 AND message_id = $2",
                    )
                    .bind(&self.name)
                    .bind(&message_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    after_commit.committed();
                    self.outbox.wake();
                    replayed += 1;
                    tracing::info!(consumer = %self.name, %message_id, "dead letter replayed");
                }
                Err(HandleError::Permanent(reason)) => {
                    drop(tx);
                    sqlx::query(
                        "UPDATE dead_letters SET replay_requested_at = NULL, replay_error = $3
                         WHERE consumer = $1 AND message_id = $2",
                    )
                    .bind(&self.name)
                    .bind(&message_id)
                    .bind(&reason)
                    .execute(&self.pool)
                    .await?;
                    tracing::warn!(consumer = %self.name, %message_id, %reason,
                        "dead letter replayed and refused again");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(replayed)
    }
}
