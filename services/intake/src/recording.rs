//! Recording a complaint, confirming it, and changing its class: intake's state changes.
//!
//! Each change and the events it causes commit together (the outbox), and each is safe to
//! repeat: a submission is keyed by the integrator's `(source system, external id)`, so the
//! same submission sent twice, fifty times at once, or again after a crash yields one complaint
//! and the same acknowledgement.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::{
    Class, Classification, Clock, ComplaintId, ComplaintRecord, Policy, Promises, Reclassification,
};
use redress_platform::outbox::Outbox;
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::envelope::PRODUCER;
use crate::error::Error;
use crate::store;
use crate::submission::{normalised_details, ts};

/// Intake's rules bound to its policy, clock and outbox.
#[derive(Clone)]
pub struct Recorder {
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub outbox: Outbox,
}

/// The customer-facing reason for the limits, and the limits, as protobuf.
pub fn promises_proto(policy: &Policy, class: Class, p: &Promises) -> v1::Promises {
    v1::Promises {
        acceptance_due: Some(ts(p.acceptance_due)),
        first_feedback_due: Some(ts(p.first_feedback_due)),
        completion_due: Some(ts(p.completion_due)),
        intermediate_due: Some(ts(p.intermediate_due)),
        reason: redress_domain::explain(policy, class),
    }
}

fn guidance(record: &ComplaintRecord) -> Option<v1::Guidance> {
    let t = record.customer_type?;
    let g = t.guidance();
    Some(v1::Guidance {
        customer_type: t.to_wire(),
        recommended_response: g.text.to_owned(),
        actions: g
            .actions
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .collect(),
    })
}

impl Recorder {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Writes intake's events: to the outbox, and to the registry's timelines.
    pub async fn append(&self, conn: &mut PgConnection, events: &[v1::Event]) -> Result<(), Error> {
        self.outbox.append(conn, events).await?;
        crate::registry::record_own(conn, &self.policy, events).await
    }

    /// Records a validated complaint, or returns the acknowledgement of the one already
    /// recorded under the same submission key (with `duplicate` set).
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        original: &v1::ComplaintDetails,
        record: ComplaintRecord,
        actor: &v1::Actor,
    ) -> Result<v1::Acknowledgement, Error> {
        if let Some(ack) =
            find_by_key(conn, &record.source.system, &record.source.external_id).await?
        {
            return Ok(ack);
        }
        let draft = self.draft(original, record, actor.clone());
        let Some(number) = insert_new(conn, std::slice::from_ref(&draft))
            .await?
            .remove(0)
        else {
            // A concurrent submission with the same key committed first: answer with the
            // original acknowledgement.
            return find_by_key(
                conn,
                &draft.record.source.system,
                &draft.record.source.external_id,
            )
            .await?
            .ok_or_else(|| Error::Internal("submission key vanished".into()));
        };
        let (ack, events) = draft.recorded(number);
        self.append(conn, &events).await?;
        Ok(ack)
    }

    /// Classifies a validated complaint and prepares its row, acknowledgement and events; nothing
    /// is written yet. Recording many at once ([`insert_new`]) is how the bus door keeps up.
    pub fn draft(
        &self,
        original: &v1::ComplaintDetails,
        record: ComplaintRecord,
        actor: v1::Actor,
    ) -> Draft {
        let classification: Classification = record.classify(&self.policy);
        let class = classification.class;
        let promises = redress_domain::promises(&self.policy, class, record.received_at);
        let reasons: Vec<String> = classification
            .reasons
            .iter()
            .map(|r| r.text.clone())
            .collect();
        // The number comes from a sequence inside the INSERT, so it is stored outside the
        // acknowledgement bytes and put back when the acknowledgement is read.
        let ack = v1::Acknowledgement {
            complaint_id: ComplaintId::new_at(record.received_at).to_string(),
            complaint_number: String::new(),
            class: class.to_wire(),
            classification_reasons: reasons,
            promises: Some(promises_proto(&self.policy, class, &promises)),
            guidance: guidance(&record),
            duplicate: false,
            confirmed: record.is_confirmed(),
            received_at: Some(ts(record.received_at)),
        };
        // The number's date is the day of the policy's calendar, as the reports count days: a
        // complaint received at 06:47 in Beijing on 2 December is RD20261202-…, not of the
        // 1st, which it still is in UTC.
        let local_day = record
            .received_at
            .with_timezone(&self.policy.calendar.timezone)
            .format("%Y%m%d");
        Draft {
            number_prefix: format!("RD{local_day}-"),
            details: normalised_details(original, &record),
            record,
            class,
            ack,
            actor,
        }
    }

    /// Records the customer's confirmation. Confirming twice changes nothing the second time.
    pub async fn confirm(
        &self,
        conn: &mut PgConnection,
        complaint_id: &ComplaintId,
        confirmation: &v1::Confirmation,
        actor: &v1::Actor,
    ) -> Result<v1::ConfirmResponse, Error> {
        let (confirmed, ack) = store::lock_confirmation(conn, complaint_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("complaint {complaint_id}")))?;
        let ack = v1::Acknowledgement::decode(ack.as_slice())
            .map_err(|e| Error::Internal(e.to_string()))?;
        if confirmed {
            return Ok(v1::ConfirmResponse {
                already_confirmed: true,
                promises: ack.promises,
            });
        }
        let now = self.now();
        let method = v1::ConfirmationMethod::try_from(confirmation.method)
            .ok()
            .filter(|m| *m != v1::ConfirmationMethod::Unspecified)
            .ok_or_else(|| {
                Error::invalid(
                    "confirmation.method",
                    "is required: signature, verbal or phone",
                )
            })?;
        let at = match &confirmation.confirmed_at {
            None => now,
            Some(t) => {
                let at =
                    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
                        .ok_or_else(|| {
                            Error::invalid("confirmation.confirmed_at", "is not a valid timestamp")
                        })?;
                if at > now + chrono::Duration::minutes(5) {
                    return Err(Error::invalid(
                        "confirmation.confirmed_at",
                        "is in the future",
                    ));
                }
                at
            }
        };
        if confirmation.note.chars().count() > self.policy.fields.description {
            return Err(Error::invalid("confirmation.note", "is too long"));
        }
        store::mark_confirmed(conn, complaint_id, now).await?;
        let e = PRODUCER.event(
            complaint_id.as_str(),
            at,
            actor,
            "",
            Payload::ComplaintConfirmed(v1::ComplaintConfirmed {
                method: method as i32,
                confirmed_at: Some(ts(at)),
                note: confirmation.note.clone(),
            }),
        );
        self.append(conn, std::slice::from_ref(&e)).await?;
        Ok(v1::ConfirmResponse {
            already_confirmed: false,
            promises: ack.promises,
        })
    }

    /// Overrides the class with a reason (DOMAIN §2: "Staff may override the class with a
    /// reason, kept in the history"). The limits are recomputed from the time of receipt.
    /// A closed complaint is refused: "a closed complaint changes only when a repeat complaint
    /// reopens it" (DOMAIN §9 "Closing"); the registry's status is routing's stage as far as
    /// intake has heard it.
    pub async fn reclassify(
        &self,
        conn: &mut PgConnection,
        complaint_id: &ComplaintId,
        to: Class,
        reason: &str,
        actor: &v1::Actor,
    ) -> Result<v1::ReclassifyResponse, Error> {
        let (class, received_at, status) = store::lock_class(conn, complaint_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("complaint {complaint_id}")))?;
        let from = Class::parse(class.as_str()).map_err(|e| Error::Internal(e.to_string()))?;
        if status == "closed" {
            return Err(Error::FailedPrecondition(format!(
                "complaint {complaint_id} is closed: only a repeat complaint reopens it"
            )));
        }
        let change = Reclassification::new(from, to, reason)
            .map_err(|e| Error::invalid("reason", &e.to_string()))?;
        if reason.chars().count() > self.policy.fields.description {
            return Err(Error::invalid("reason", "is too long"));
        }
        let promises = redress_domain::promises(&self.policy, to, received_at);
        let promises_pb = promises_proto(&self.policy, to, &promises);
        let now = self.now();
        store::set_class(conn, complaint_id, to.as_str(), now).await?;
        let e = PRODUCER.event(
            complaint_id.as_str(),
            now,
            actor,
            "",
            Payload::ComplaintReclassified(v1::ComplaintReclassified {
                from_class: change.from().to_wire(),
                to_class: change.to().to_wire(),
                reason: change.reason().to_owned(),
                promises: Some(promises_pb.clone()),
            }),
        );
        self.append(conn, std::slice::from_ref(&e)).await?;
        Ok(v1::ReclassifyResponse {
            promises: Some(promises_pb),
            previous_class: from.to_wire(),
        })
    }
}

/// A classified complaint, ready to be written.
pub struct Draft {
    record: ComplaintRecord,
    details: v1::ComplaintDetails,
    class: Class,
    /// Complete but for the number.
    ack: v1::Acknowledgement,
    actor: v1::Actor,
    /// `RD` and the day of receipt in the policy's time zone; the sequence follows.
    number_prefix: String,
}

impl Draft {
    /// The acknowledgement and the events of the draft once recorded under `number`:
    /// `complaint.received`, `complaint.classified`, and `complaint.confirmed` when the record
    /// was confirmed on submission.
    pub fn recorded(self, number: String) -> (v1::Acknowledgement, Vec<v1::Event>) {
        let Draft {
            record,
            details,
            class,
            mut ack,
            actor,
            ..
        } = self;
        ack.complaint_number = number.clone();
        let at = record.received_at;
        let received = PRODUCER.event(
            &ack.complaint_id,
            at,
            &actor,
            "",
            Payload::ComplaintReceived(v1::ComplaintReceived {
                details: Some(details.clone()),
                complaint_number: number,
                class: class.to_wire(),
                classification_reasons: ack.classification_reasons.clone(),
                promises: ack.promises.clone(),
                guidance: ack.guidance.clone(),
                confirmed: record.is_confirmed(),
            }),
        );
        let classified = PRODUCER.event(
            &ack.complaint_id,
            at,
            &actor,
            &received.event_id,
            Payload::ComplaintClassified(v1::ComplaintClassified {
                class: class.to_wire(),
                reasons: ack.classification_reasons.clone(),
                promises: ack.promises.clone(),
            }),
        );
        let mut events = vec![received, classified];
        if let (Some(c), Some(orig)) = (record.confirmation, details.confirmation.as_ref()) {
            events.push(PRODUCER.event(
                &ack.complaint_id,
                c.confirmed_at,
                &actor,
                &events[0].event_id,
                Payload::ComplaintConfirmed(v1::ComplaintConfirmed {
                    method: orig.method,
                    confirmed_at: Some(ts(c.confirmed_at)),
                    note: orig.note.clone(),
                }),
            ));
        }
        (ack, events)
    }

    /// The integrator's key.
    pub fn key(&self) -> (&str, &str) {
        (&self.record.source.system, &self.record.source.external_id)
    }

    /// The row the draft is recorded as.
    fn row(&self) -> store::NewComplaint {
        let r = &self.record;
        store::NewComplaint {
            complaint_id: self.ack.complaint_id.clone(),
            source_system: r.source.system.clone(),
            external_id: r.source.external_id.clone(),
            details: self.details.encode_to_vec(),
            acknowledgement: self.ack.encode_to_vec(),
            class: self.class.as_str().to_owned(),
            status: if r.is_confirmed() {
                "confirmed"
            } else {
                "received"
            },
            channel: r.channel.as_str().to_owned(),
            category: r.category.clone().unwrap_or_default(),
            confirmed: r.is_confirmed(),
            received_at: r.received_at,
            number_prefix: self.number_prefix.clone(),
        }
    }
}

/// Inserts the drafts' rows in one statement. For each draft, in order: its complaint number,
/// or `None` when its submission key was already recorded (earlier, or by an earlier draft of
/// the same call) — a duplicate inserts nothing.
pub async fn insert_new(
    conn: &mut PgConnection,
    drafts: &[Draft],
) -> Result<Vec<Option<String>>, Error> {
    let rows: Vec<store::NewComplaint> = drafts.iter().map(Draft::row).collect();
    Ok(store::insert_new(conn, &rows).await?)
}

/// The acknowledgement stored under a submission key, marked as a duplicate.
async fn find_by_key(
    conn: &mut PgConnection,
    system: &str,
    external_id: &str,
) -> Result<Option<v1::Acknowledgement>, Error> {
    match store::ack_by_key(conn, system, external_id).await? {
        None => Ok(None),
        Some((bytes, number)) => {
            let mut ack = stored_ack(&bytes, number)?;
            ack.duplicate = true;
            Ok(Some(ack))
        }
    }
}

/// A stored acknowledgement with its complaint number put back.
pub fn stored_ack(bytes: &[u8], number: String) -> Result<v1::Acknowledgement, Error> {
    let mut ack = v1::Acknowledgement::decode(bytes)
        .map_err(|e| Error::Internal(format!("stored acknowledgement: {e}")))?;
    ack.complaint_number = number;
    Ok(ack)
}
