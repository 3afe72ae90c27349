//! The bus door: call-centre systems publish submissions to `<prefix>.intake.submit`.
//!
//! Same gate and same recording as gRPC `Submit`. A submission that cannot be accepted —
//! wrong content type, garbage bytes, unknown fields, invalid values — changes nothing but
//! produces one `complaint.rejected` event with the integrator's key (when it could be read)
//! and every reason, so the integrator learns what to fix. Rejection is an outcome, not a
//! failure: the message is acknowledged, never retried or dead-lettered.
//!
//! Submissions arrive in bursts (a call centre's backlog after an outage), so a batch of them is
//! recorded with one insert for all the complaints, one for all their events and one for all
//! their timeline entries ([`Handler::handle_batch`]); a single message takes the same steps one
//! at a time.

use redress_domain::ComplaintRecord;
use redress_platform::consumer::{HandleError, Handler, Incoming};
use redress_platform::outbox::OutgoingMessage;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::envelope::PRODUCER;
use crate::recording::{Draft, Recorder, insert_new};
use crate::submission::{self, Encoding, Violation};

/// Applies bus submissions.
pub struct BusDoor {
    pub recorder: Recorder,
}

/// What the gate made of one message.
enum Checked {
    Valid {
        details: v1::ComplaintDetails,
        record: ComplaintRecord,
        actor: v1::Actor,
    },
    /// The rejection event, and its reasons for the log.
    Rejected { event: v1::Event, reasons: String },
}

impl BusDoor {
    /// Decodes and validates a message: a complaint to record, or its rejection event. No
    /// effect of its own: it runs before the consumer knows whether the message is a duplicate
    /// ([`Handler::prepare`]); [`BusDoor::checked`] logs and counts what is applied.
    fn check(&self, msg: &Incoming<'_>) -> Checked {
        let actor = v1::Actor {
            id: "bus".into(),
            display_name: "call-centre integration (bus)".into(),
            role: v1::Role::Integration as i32,
        };
        let request = Encoding::from_content_type(msg.header("Content-Type"))
            .and_then(|enc| submission::decode_body(msg.payload, enc));
        let details = match request {
            Ok(v1::SubmitRequest { details: Some(d) }) => d,
            Ok(v1::SubmitRequest { details: None }) => {
                let v = vec![Violation {
                    field: "details".into(),
                    reason: "is required".into(),
                }];
                return self.rejected(None, v, msg, &actor);
            }
            Err(v) => return self.rejected(None, vec![v], msg, &actor),
        };
        let actor = v1::Actor {
            id: details
                .key
                .as_ref()
                .map(|k| k.source_system.clone())
                .unwrap_or_default(),
            ..actor
        };
        match submission::validate(&self.recorder.policy, &details, self.recorder.now()) {
            Ok(record) => Checked::Valid {
                details,
                record,
                actor,
            },
            Err(v) => self.rejected(details.key.clone(), v, msg, &actor),
        }
    }

    fn rejected(
        &self,
        key: Option<v1::SubmissionKey>,
        violations: Vec<Violation>,
        msg: &Incoming<'_>,
        actor: &v1::Actor,
    ) -> Checked {
        let reasons = redress_platform::error::describe(&violations);
        let event = PRODUCER.event(
            "",
            self.recorder.now(),
            actor,
            &msg.message_id,
            Payload::ComplaintRejected(v1::ComplaintRejected {
                key,
                violations,
                subject: msg.subject.to_owned(),
                message_id: msg.message_id.clone(),
            }),
        );
        Checked::Rejected { event, reasons }
    }

    /// The message as checked before the transaction ([`Handler::prepare`]), or checked now
    /// when nothing prepared it; a rejection is logged and counted here, where it is applied.
    fn checked(&self, msg: &Incoming<'_>) -> Checked {
        let checked = msg
            .take_prepared::<Checked>()
            .unwrap_or_else(|| self.check(msg));
        if let Checked::Rejected { reasons, .. } = &checked {
            tracing::info!(message_id = %msg.message_id, %reasons, "submission rejected");
            msg.after_commit.defer(|| {
                metrics::counter!("redress_intake_rejected_total", "door" => "bus").increment(1);
            });
        }
        checked
    }

    /// The outbox messages of `events`, built in the submission's span so they continue the
    /// trace the integration started.
    fn messages(
        &self,
        msg: &Incoming<'_>,
        events: &[v1::Event],
    ) -> Result<Vec<OutgoingMessage>, HandleError> {
        let outbox = &self.recorder.outbox;
        msg.span().in_scope(|| {
            events
                .iter()
                .map(|e| outbox.message_for(e).map_err(HandleError::from))
                .collect()
        })
    }
}

fn count_recorded(msg: &Incoming<'_>) {
    msg.after_commit.defer(|| {
        metrics::counter!("redress_intake_recorded_total", "door" => "bus").increment(1);
    });
}

#[async_trait::async_trait]
impl Handler for BusDoor {
    /// Decoding and validation, outside the consumer's transaction.
    fn prepare(&self, msg: &Incoming<'_>) {
        msg.set_prepared(self.check(msg));
    }

    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        match self.checked(msg) {
            Checked::Rejected { event, .. } => {
                self.recorder.outbox.append(conn, &[event]).await?;
            }
            Checked::Valid {
                details,
                record,
                actor,
            } => {
                let ack = self
                    .recorder
                    .record(conn, &details, record, &actor)
                    .await
                    .map_err(|e| HandleError::Transient(e.into()))?;
                if !ack.duplicate {
                    count_recorded(msg);
                }
            }
        }
        Ok(())
    }

    /// The whole batch in three statements: one insert of every new complaint (a key already
    /// recorded, or repeated within the batch, inserts nothing, as one at a time), one insert of
    /// every event, in the messages' order.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        let mut per_message: Vec<Vec<OutgoingMessage>> = Vec::with_capacity(msgs.len());
        let mut drafts: Vec<Draft> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            match self.checked(msg) {
                Checked::Rejected { event, .. } => per_message.push(self.messages(msg, &[event])?),
                Checked::Valid {
                    details,
                    record,
                    actor,
                } => {
                    drafts.push(self.recorder.draft(&details, record, actor));
                    owners.push(i);
                    per_message.push(Vec::new());
                }
            }
        }
        let numbers = insert_new(conn, &drafts)
            .await
            .map_err(|e| HandleError::Transient(e.into()))?;
        let mut recorded: Vec<v1::Event> = Vec::new();
        for ((draft, i), number) in drafts.into_iter().zip(owners).zip(numbers) {
            // None: the key was recorded before; a duplicate submission changes nothing.
            if let Some(number) = number {
                let (_, events) = draft.recorded(number);
                per_message[i] = self.messages(msgs[i], &events)?;
                count_recorded(msgs[i]);
                recorded.extend(events);
            }
        }
        let outgoing: Vec<OutgoingMessage> = per_message.into_iter().flatten().collect();
        self.recorder
            .outbox
            .append_messages(conn, &outgoing)
            .await?;
        // ADR 0017: intake's own events go into the timeline with them, here as on every other
        // path (`Recorder::append`): one insert for the batch's entries.
        crate::registry::record_own(conn, &self.recorder.policy, &recorded)
            .await
            .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }
}
