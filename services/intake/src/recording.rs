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
use sqlx::{PgConnection, Row};

use crate::envelope::PRODUCER;
use crate::error::Error;
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
        Draft {
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
        complaint_id: &str,
        confirmation: &v1::Confirmation,
        actor: &v1::Actor,
    ) -> Result<v1::ConfirmResponse, Error> {
        let row = sqlx::query(
            "SELECT confirmed, acknowledgement FROM complaints WHERE complaint_id = $1 FOR UPDATE",
        )
        .bind(complaint_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("complaint {complaint_id}")))?;
        let confirmed: bool = row.try_get("confirmed")?;
        let ack =
            v1::Acknowledgement::decode(row.try_get::<Vec<u8>, _>("acknowledgement")?.as_slice())
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
        sqlx::query("UPDATE complaints SET confirmed = true, status = CASE WHEN status = 'received' THEN 'confirmed' ELSE status END, updated_at = $2 WHERE complaint_id = $1")
            .bind(complaint_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        let e = PRODUCER.event(
            complaint_id,
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
        complaint_id: &str,
        to: Class,
        reason: &str,
        actor: &v1::Actor,
    ) -> Result<v1::ReclassifyResponse, Error> {
        let row = sqlx::query(
            "SELECT class, received_at, status FROM complaints WHERE complaint_id = $1 FOR UPDATE",
        )
        .bind(complaint_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("complaint {complaint_id}")))?;
        let from = Class::parse(row.try_get::<String, _>("class")?.as_str())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let received_at: DateTime<Utc> = row.try_get("received_at")?;
        if row.try_get::<String, _>("status")? == "closed" {
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
        sqlx::query("UPDATE complaints SET class = $2, updated_at = $3 WHERE complaint_id = $1")
            .bind(complaint_id)
            .bind(to.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        let e = PRODUCER.event(
            complaint_id,
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
}

/// Inserts the drafts' rows in one statement. For each draft, in order: its complaint number,
/// or `None` when its submission key was already recorded (earlier, or by an earlier draft of
/// the same call) — a duplicate inserts nothing.
pub async fn insert_new(
    conn: &mut PgConnection,
    drafts: &[Draft],
) -> Result<Vec<Option<String>>, Error> {
    let n = drafts.len();
    let (mut ids, mut systems, mut externals, mut details, mut acks) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (
        mut classes,
        mut statuses,
        mut channels,
        mut categories,
        mut confirmed,
        mut received,
        mut prefixes,
    ) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for d in drafts {
        let r = &d.record;
        ids.push(d.ack.complaint_id.clone());
        systems.push(r.source.system.clone());
        externals.push(r.source.external_id.clone());
        details.push(d.details.encode_to_vec());
        acks.push(d.ack.encode_to_vec());
        classes.push(d.class.as_str().to_owned());
        statuses.push(
            if r.is_confirmed() {
                "confirmed"
            } else {
                "received"
            }
            .to_owned(),
        );
        channels.push(r.channel.as_str().to_owned());
        categories.push(r.category.clone().unwrap_or_default());
        confirmed.push(r.is_confirmed());
        received.push(r.received_at);
        prefixes.push(format!("RD{}-", r.received_at.format("%Y%m%d")));
    }
    // WITH ORDINALITY keeps the drafts' order, so numbers follow arrival and a repeated key
    // within the call keeps its first draft.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO complaints (complaint_id, number, source_system, external_id, details,
            acknowledgement, class, status, channel, category, confirmed, received_at, updated_at)
         SELECT id, prefix || lpad(nextval('complaint_number_seq')::text, 6, '0'), sys, ext, det,
            ack, cls, st, ch, cat, conf, rec, rec
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::bool[], $11::timestamptz[], $12::text[])
            WITH ORDINALITY AS t(id, sys, ext, det, ack, cls, st, ch, cat, conf, rec, prefix, i)
         ORDER BY i
         ON CONFLICT (source_system, external_id) DO NOTHING
         RETURNING complaint_id, number",
    )
    .bind(&ids)
    .bind(&systems)
    .bind(&externals)
    .bind(&details)
    .bind(&acks)
    .bind(&classes)
    .bind(&statuses)
    .bind(&channels)
    .bind(&categories)
    .bind(&confirmed)
    .bind(&received)
    .bind(&prefixes)
    .fetch_all(conn)
    .await?;
    let mut numbers: std::collections::HashMap<String, String> = rows.into_iter().collect();
    Ok(ids.iter().map(|id| numbers.remove(id)).collect())
}

/// The acknowledgement stored under a submission key, marked as a duplicate.
async fn find_by_key(
    conn: &mut PgConnection,
    system: &str,
    external_id: &str,
) -> Result<Option<v1::Acknowledgement>, Error> {
    let row: Option<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT acknowledgement, number FROM complaints WHERE source_system = $1 AND external_id = $2",
    )
    .bind(system)
    .bind(external_id)
    .fetch_optional(conn)
    .await?;
    match row {
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
