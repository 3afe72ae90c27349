//! The transactional outbox: events commit with the state change that caused them, and a relay
//! publishes them to JetStream afterwards.
//!
//! Why: publishing straight to NATS after a commit loses the event when the process dies in
//! between; publishing before the commit announces a change that may roll back. Writing the
//! event into `outbox` inside the same transaction makes "state changed" and "event will be
//! published" one atomic fact. The relay then publishes rows in commit order with
//! `Nats-Msg-Id` = event id, so a re-publication after a crash is dropped by JetStream's
//! duplicate window, and consumers deduplicate by event id in any case.
//!
//! Order per complaint: only one relay publishes at a time (a transaction-scoped advisory lock
//! per schema), reading rows by sequence and waiting for each batch's acks before marking it,
//! so events of one complaint reach the stream in the order they committed, whatever the number
//! of replicas.
//!
//! Marking a row published moves it to `outbox_published` (one statement per batch): the outbox
//! holds only what waits, so the relay's read costs the same after millions of events as after
//! ten, and the archive keeps published events for re-publication (ADR 0003).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use prost::Message as _;
use redress_proto::v1;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::nats::Topology;
use crate::telemetry;

/// Header carrying the event type (`complaint.received` …), for consumers that route by header.
pub const EVENT_TYPE_HEADER: &str = "Redress-Event-Type";
/// Header carrying the complaint id, so dashboards can filter without decoding.
pub const COMPLAINT_ID_HEADER: &str = "Redress-Complaint-Id";
/// Header naming the service that wrote the event (for timelines and debugging).
pub const SOURCE_SERVICE_HEADER: &str = "Redress-Source-Service";
/// Header carrying why a message was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "Redress-Dead-Letter-Reason";

/// Writes events into the outbox of the current transaction.
#[derive(Clone, Debug)]
pub struct Outbox {
    topology: Topology,
    source: &'static str,
    wake: Arc<Notify>,
}

/// A message waiting in the outbox: subject, payload and headers as they will be published.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub message_id: String,
    pub complaint_id: String,
    pub subject: String,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// An event that cannot be written to the outbox.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("event {0} has no payload")]
    NoPayload(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl Outbox {
    /// An outbox for events written by the service named `source`.
    pub fn new(topology: Topology, source: &'static str) -> Self {
        Self {
            topology,
            source,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Turns a domain event into the message the relay will publish on
    /// `<prefix>.events.<kind>`, with the current trace context.
    pub fn message_for(&self, event: &v1::Event) -> Result<OutgoingMessage, AppendError> {
        let kind = event
            .kind()
            .ok_or_else(|| AppendError::NoPayload(event.event_id.clone()))?;
        let mut headers: BTreeMap<String, String> =
            telemetry::current_trace_headers().into_iter().collect();
        headers.insert("Content-Type".into(), "application/protobuf".into());
        headers.insert(EVENT_TYPE_HEADER.into(), kind.into());
        headers.insert(COMPLAINT_ID_HEADER.into(), event.complaint_id.clone());
        headers.insert(SOURCE_SERVICE_HEADER.into(), self.source.into());
        Ok(OutgoingMessage {
            message_id: event.event_id.clone(),
            complaint_id: event.complaint_id.clone(),
            subject: self.topology.event_subject(kind),
            payload: event.encode_to_vec(),
            headers,
        })
    }

    /// Appends events to the outbox inside the caller's transaction.
    pub async fn append(
        &self,
        conn: &mut PgConnection,
        events: &[v1::Event],
    ) -> Result<(), AppendError> {
        let messages = events
            .iter()
            .map(|e| self.message_for(e))
            .collect::<Result<Vec<_>, _>>()?;
        self.append_messages(conn, &messages).await
    }

    /// Appends ready-made messages (dead letters, notifications) inside the caller's transaction.
    /// One statement for the whole set: batches are how consumers keep up.
    pub async fn append_messages(
        &self,
        conn: &mut PgConnection,
        messages: &[OutgoingMessage],
    ) -> Result<(), AppendError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(messages.len());
        let mut complaints = Vec::with_capacity(messages.len());
        let mut subjects = Vec::with_capacity(messages.len());
        let mut payloads = Vec::with_capacity(messages.len());
        let mut headers = Vec::with_capacity(messages.len());
        for m in messages {
            ids.push(m.message_id.clone());
            complaints.push(m.complaint_id.clone());
            subjects.push(m.subject.clone());
            payloads.push(m.payload.clone());
            headers.push(serde_json::to_value(&m.headers).unwrap_or_default());
        }
        sqlx::query(
            "INSERT INTO outbox (event_id, complaint_id, subject, payload, headers)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[])
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(ids)
        .bind(complaints)
        .bind(subjects)
        .bind(payloads)
        .bind(headers)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Tells the relay in this process that a commit added rows. Call after `commit()`.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Begins a transaction whose [`Writes::commit`] also wakes the relay, so what it appended
    /// is published at once instead of at the relay's next poll — the one way a request
    /// handler writes state with its events.
    pub async fn begin(&self, pool: &PgPool) -> Result<Writes, sqlx::Error> {
        Ok(Writes {
            tx: pool.begin().await?,
            wake: self.wake.clone(),
        })
    }
}

/// A transaction that may append to the outbox (see [`Outbox::begin`]). It dereferences to the
/// connection, so `&mut tx` goes wherever a `&mut PgConnection` does; dropped uncommitted, it
/// rolls back and wakes nobody.
pub struct Writes {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    wake: Arc<Notify>,
}

impl Writes {
    /// Commits, then wakes the relay.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }
}

impl std::ops::Deref for Writes {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for Writes {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// Rows moved out of the outbox after which the relay vacuums it. The outbox is a queue: every
/// row is deleted within moments, and until a vacuum the dead rows stay in the heap and in the
/// indexes the relay reads. Autovacuum sees to that where it runs promptly; where it is off or
/// behind (it is off on the 2-core bench machine, and a million-complaint fill left 3 million
/// dead rows and 2.5 GB in intake's outbox) the relay's read and the backlog gauge would scan
/// them all. Vacuuming a table that holds only what waits costs little.
const VACUUM_AFTER_ROWS: usize = 20_000;

/// Publishes outbox rows to JetStream.
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    topology: Topology,
    wake: Arc<Notify>,
    poll: Duration,
    batch: i64,
    retention: Duration,
    processed_retention: Duration,
    exit_after_publish: bool,
    /// Rows this relay published whose mark did not commit (the database went away between the
    /// publish and the mark). They are marked, not published again, as soon as the database
    /// answers: JetStream drops a re-publication only within its duplicate window (5 minutes),
    /// and an outage can last longer.
    unmarked: std::sync::Mutex<Vec<i64>>,
}

/// A failed relay round; the rows stay unpublished and are retried.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("publish to {subject}: {message}")]
    Publish { subject: String, message: String },
}

impl Relay {
    pub fn new(pool: PgPool, js: jetstream::Context, outbox: &Outbox, poll: Duration) -> Self {
        Self {
            pool,
            js,
            topology: outbox.topology.clone(),
            wake: outbox.wake.clone(),
            poll,
            batch: 1_000,
            retention: Duration::from_secs(7 * 86_400),
            processed_retention: Duration::from_secs(14 * 86_400),
            exit_after_publish: false,
            unmarked: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// How long published rows are kept for re-publication.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long the schema's consumers remember processed message ids (pruned with the outbox).
    pub fn with_processed_retention(mut self, retention: Duration) -> Self {
        self.processed_retention = retention;
        self
    }

    /// Test-only: exit the process between publishing and marking (see the config flag).
    pub fn with_exit_after_publish(mut self, on: bool) -> Self {
        self.exit_after_publish = on;
        self
    }

    /// Runs until `shutdown`, then publishes what is left once more before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_cleanup = Instant::now();
        let mut moved_since_vacuum = 0;
        loop {
            match self.drain().await {
                Ok(n) => moved_since_vacuum += n,
                Err(e) => tracing::warn!(error = %e, "outbox relay round failed; will retry"),
            }
            if moved_since_vacuum >= VACUUM_AFTER_ROWS {
                moved_since_vacuum = 0;
                if let Err(e) = sqlx::query("VACUUM outbox").execute(&self.pool).await {
                    tracing::warn!(error = %e, "cannot vacuum the outbox");
                }
            }
            if last_cleanup.elapsed() > Duration::from_secs(600) {
                last_cleanup = Instant::now();
                if let Err(e) = self.cleanup().await {
                    tracing::warn!(error = %e, "outbox cleanup failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        if let Err(e) = self.drain().await {
            tracing::warn!(error = %e, "final outbox flush failed; rows stay for the next start");
        }
    }

    /// Publishes batches until nothing is left (or another replica holds the relay lock).
    /// Returns the number of events published.
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut total = 0;
        loop {
            let n = self.publish_batch().await?;
            total += n;
            if n < self.batch as usize {
                break;
            }
        }
        Ok(total)
    }

    /// The `event` label of a published message: the event type of a domain event; for the
    /// other messages the outbox carries (notifications, one subject per person; dead letters,
    /// one per consumer) only what they are, so the label keeps a few values.
    fn kind_label(&self, subject: &str, event_type: Option<&str>) -> String {
        let kind = match event_type {
            Some(kind) => kind,
            None if subject.starts_with(&self.topology.notification_subject("")) => "notification",
            None if subject.starts_with(&self.topology.dead_letter_subject("")) => "dead_letter",
            None => "other",
        };
        kind.to_owned()
    }

    /// Counts what a committed batch published, by kind: `redress_outbox_published_total{event}`
    /// (summed over `event`, the relay's whole output).
    fn count_published(kinds: &[String]) {
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for kind in kinds {
            *by_kind.entry(kind).or_default() += 1;
        }
        for (kind, n) in by_kind {
            metrics::counter!("redress_outbox_published_total", "event" => kind.to_owned())
                .increment(n);
        }
    }

    async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext('redress-outbox:' || current_schema()))",
        )
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(0);
        }
        // First the marks a failed round owes: those rows are in the stream already.
        let owed = self.unmarked.lock().map(|u| u.clone()).unwrap_or_default();
        if !owed.is_empty() {
            mark_published(&mut tx, &owed).await?;
        }
        let rows = sqlx::query(
            "SELECT seq, event_id, subject, payload, headers FROM outbox ORDER BY seq LIMIT $1",
        )
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            self.owed_paid(&owed);
            return Ok(0);
        }

        // Send the whole batch, then await the acks in order: one round trip's latency for the
        // batch instead of one per event.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let event_id: String = row.try_get("event_id")?;
            let subject: String = row.try_get("subject")?;
            let payload: Vec<u8> = row.try_get("payload")?;
            let headers_json: serde_json::Value = row.try_get("headers")?;
            let kind = self.kind_label(
                &subject,
                headers_json.get(EVENT_TYPE_HEADER).and_then(|v| v.as_str()),
            );
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id.as_str());
            if let serde_json::Value::Object(map) = headers_json {
                for (k, v) in map {
                    if let Some(v) = v.as_str() {
                        headers.insert(k.as_str(), v);
                    }
                }
            }
            let ack = self
                .js
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .map_err(|e| RelayError::Publish {
                    subject: subject.clone(),
                    message: e.to_string(),
                })?;
            pending.push((seq, subject, kind, ack));
        }
        let mut published = Vec::with_capacity(pending.len());
        let mut kinds = Vec::with_capacity(pending.len());
        let mut failure = None;
        for (seq, subject, kind, ack) in pending {
            match ack.await {
                Ok(_) => {
                    published.push(seq);
                    kinds.push(kind);
                }
                Err(e) => {
                    failure = Some(RelayError::Publish {
                        subject,
                        message: e.to_string(),
                    });
                    break;
                }
            }
        }
        if self.exit_after_publish {
            tracing::error!(
                published = published.len(),
                "fault injection: exiting before marking the outbox"
            );
            std::process::exit(86);
        }
        let marked = async {
            mark_published(&mut tx, &published).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = marked {
            // Published, not marked: remember them, so the next round marks them instead of
            // publishing them again (possibly after JetStream's duplicate window).
            if let Ok(mut u) = self.unmarked.lock() {
                u.extend(&published);
            }
            return Err(e.into());
        }
        self.owed_paid(&owed);
        Self::count_published(&kinds);
        match failure {
            Some(e) => Err(e),
            None => Ok(published.len()),
        }
    }

    /// Forgets owed marks once a round that made them committed.
    fn owed_paid(&self, owed: &[i64]) {
        if owed.is_empty() {
            return;
        }
        if let Ok(mut u) = self.unmarked.lock() {
            u.retain(|seq| !owed.contains(seq));
        }
    }

    /// Sets `redress_outbox_backlog` (unpublished rows of this schema) every `period`, until
    /// `stop`. One read of the partial index of unpublished rows.
    pub fn watch_backlog(
        &self,
        period: Duration,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let pool = self.pool.clone();
        crate::metrics::sample_every(period, stop, move || {
            let pool = pool.clone();
            async move {
                match backlog(&pool).await {
                    Ok(n) => metrics::gauge!("redress_outbox_backlog").set(n as f64),
                    Err(e) => tracing::debug!(error = %e, "cannot count the outbox backlog"),
                }
            }
        })
    }

    async fn cleanup(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM outbox_published WHERE published_at < now() - make_interval(secs => $1)",
        )
        .bind(self.retention.as_secs_f64())
        .execute(&self.pool)
        .await?;
        crate::consumer::prune_processed(&self.pool, self.processed_retention).await?;
        Ok(())
    }
}

/// Moves published rows from the outbox to the archive, in the relay's transaction: they are
/// never read for publication again, and are kept for the retention period.
async fn mark_published(conn: &mut PgConnection, seqs: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH published AS (DELETE FROM outbox WHERE seq = ANY($1) RETURNING *)
         INSERT INTO outbox_published
             (seq, event_id, complaint_id, subject, payload, headers, created_at)
         SELECT seq, event_id, complaint_id, subject, payload, headers, created_at FROM published",
    )
    .bind(seqs)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unpublished rows waiting, for the backlog gauge.
async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
}
