//! What the service tests used to write each for itself (issue 16): publishing under a chosen
//! message id, the events of one complaint, the dead letters — and the barriers that make an
//! absence check final without a fixed wait: a consumer that has acknowledged everything, an
//! outbox with nothing left to relay.

use std::time::Duration;

use async_nats::jetstream::consumer::{Info, PullConsumer};
use prost::Message as _;
use redress_proto::v1;

use crate::{TestBed, eventually, poll};

/// The header a dead letter carries its reason in.
pub const DEAD_LETTER_REASON: &str = "Redress-Dead-Letter-Reason";

/// The reason a dead letter gives (its `Redress-Dead-Letter-Reason` header), empty without one.
pub fn dead_letter_reason(message: &async_nats::Message) -> String {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(DEAD_LETTER_REASON))
        .map(|r| r.as_str().to_owned())
        .unwrap_or_default()
}

impl TestBed {
    /// Publishes `event` on `<prefix>.events.<kind>` under message id `msg_id`: another id than
    /// the event's is a re-publication JetStream cannot deduplicate (a consumer must).
    pub async fn publish_event_as(&self, event: &v1::Event, msg_id: &str) {
        self.publish_with(event, msg_id, async_nats::HeaderMap::new())
            .await;
    }

    /// Publishes `event` as [`TestBed::publish_event`] does, with `headers` besides (a
    /// `traceparent`, …).
    pub async fn publish_event_with(&self, event: &v1::Event, headers: async_nats::HeaderMap) {
        self.publish_with(event, &event.event_id, headers).await;
    }

    async fn publish_with(
        &self,
        event: &v1::Event,
        msg_id: &str,
        mut headers: async_nats::HeaderMap,
    ) {
        let kind = event.kind().expect("event with a payload");
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        self.js
            .publish_with_headers(
                format!("{}.events.{kind}", self.prefix),
                headers,
                event.encode_to_vec().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("stored");
    }

    /// Submits `body` through intake's bus door (`<prefix>.intake.submit`) with `headers`
    /// (`Content-Type`, `traceparent`, …), as the call centre's integration would, and waits
    /// until JetStream stored it.
    pub async fn submit_on_bus(&self, headers: async_nats::HeaderMap, body: Vec<u8>) {
        self.js
            .publish_with_headers(
                format!("{}.intake.submit", self.prefix),
                headers,
                body.into(),
            )
            .await
            .expect("publish")
            .await
            .expect("stored");
    }

    /// The events on `<prefix>.events.<kind_filter>` about `complaint_id`, waiting until at
    /// least `at_least` arrived or `within` passed.
    pub async fn events_of(
        &self,
        kind_filter: &str,
        complaint_id: &str,
        at_least: usize,
        within: Duration,
    ) -> Vec<v1::Event> {
        poll(
            within,
            async || {
                self.events(kind_filter, 0, Duration::ZERO)
                    .await
                    .into_iter()
                    .filter(|e| e.complaint_id == complaint_id)
                    .collect::<Vec<_>>()
            },
            |got| got.len() >= at_least,
        )
        .await
    }

    /// The stream dead letters go to (`<PREFIX>_DEADLETTER`).
    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DEADLETTER", self.prefix.to_ascii_uppercase())
    }

    /// The stream bus submissions go to (`<PREFIX>_INTAKE`).
    pub fn intake_stream(&self) -> String {
        format!("{}_INTAKE", self.prefix.to_ascii_uppercase())
    }

    /// Every consumer's dead letters (subject `<prefix>.deadletter.<consumer>`, the reason in
    /// [`dead_letter_reason`]), waiting until at least `at_least` arrived or `within` passed.
    pub async fn dead_letters(
        &self,
        at_least: usize,
        within: Duration,
    ) -> Vec<async_nats::Message> {
        self.read_stream(
            &self.dead_letter_stream(),
            &format!("{}.deadletter.>", self.prefix),
            at_least,
            within,
        )
        .await
    }

    /// Waits until the durable consumer `durable` (`intake-submissions`, `routing-intake-events`,
    /// …) has every message of its subjects delivered and acknowledged — handled and committed —
    /// and returns its state. The barrier for "nothing more comes of what was published": once a
    /// later message is acknowledged, so is every earlier one. Panics after `within`.
    pub async fn consumed(&self, durable: &str, within: Duration) -> Info {
        let streams = [self.events_stream(), self.intake_stream()];
        eventually(
            &format!("{durable} to acknowledge everything"),
            within,
            async || {
                for stream in &streams {
                    let got: Result<PullConsumer, _> =
                        self.js.get_consumer_from_stream(durable, stream).await;
                    let Ok(mut c) = got else {
                        continue;
                    };
                    let info = c.info().await.ok()?.clone();
                    return (info.num_pending == 0 && info.num_ack_pending == 0).then_some(info);
                }
                None
            },
        )
        .await
    }

    /// Waits until every durable consumer on the bed's streams has acknowledged everything:
    /// the whole system at rest. A benchmark that first fills the system must wait for this, or
    /// it times its run against the services still digesting the fill.
    pub async fn all_consumed(&self, within: Duration) {
        use futures::TryStreamExt as _;
        let streams = [self.events_stream(), self.intake_stream()];
        eventually(
            "every consumer to acknowledge everything",
            within,
            async || {
                for stream in &streams {
                    let Ok(s) = self.js.get_stream(stream).await else {
                        continue;
                    };
                    let infos: Vec<Info> = s.consumers().try_collect().await.ok()?;
                    if infos
                        .iter()
                        .any(|i| i.num_pending > 0 || i.num_ack_pending > 0)
                    {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await
    }

    /// Waits until the outbox of the service whose schema is `schema` (`intake`, `sla_monitor`,
    /// …) has nothing left to relay: every event a committed change wrote is on the stream then.
    /// With [`TestBed::consumed`] before it, the events that came of the consumed messages are
    /// all there to read. Panics after `within`.
    pub async fn outbox_flushed(&self, schema: &str, within: Duration) {
        let mut conn = self.db.connect().await;
        let sql = format!("SELECT count(*) FROM {schema}.outbox");
        eventually(&format!("{schema}'s outbox relayed"), within, async || {
            let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_one(&mut conn)
                .await
                .ok()?;
            (left == 0).then_some(())
        })
        .await;
    }
}
