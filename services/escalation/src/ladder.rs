//! Raising an escalation step: the row, its named recipient, its one notification (stored,
//! published on `<prefix>.notifications.<person>`, queued per channel) and its events — all on
//! the caller's transaction.
//!
//! DOMAIN §5: "Every escalation is a notification to a named person, recorded when sent, seen
//! and acted on." Exactly once: a step has a `step_key` (unique), a notification is unique per
//! (escalation, recipient), and a delivery per (notification, channel, send); a redelivered or
//! repeated cause, a restart or a second replica finds the key taken and does nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_domain::escalation::{self as rules, Trigger};
use redress_domain::{Clock, ComplaintId, EscalationId, NotificationId, Policy};
use redress_platform::metrics::AfterCommit;
use redress_platform::outbox::{Outbox, OutgoingMessage};
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::envelope::{PRODUCER, ts};
use crate::settings::Settings;
use crate::store::escalations::{self, NewCause, NewEscalation};
use crate::store::{complaints, notifications};

/// Why a step could not be raised.
#[derive(Debug, thiserror::Error)]
pub enum RaiseError {
    /// Nobody holds the rung's role yet (routing's organisation events not seen); retried.
    #[error("no {role} known for complaint {complaint_id}")]
    NoRecipient {
        role: String,
        complaint_id: ComplaintId,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Outbox(#[from] redress_platform::outbox::AppendError),
}

/// One step to raise.
pub struct Step {
    pub complaint_id: ComplaintId,
    pub level: u32,
    pub trigger: Trigger,
    /// Unique name of the step: the same cause always yields the same key.
    pub step_key: String,
    /// The SLA clock concerned (proto value), 0 otherwise.
    pub clock: i32,
    /// The complaint's class (proto value) when the cause says; else the stored one.
    pub class: i32,
    /// The department when the cause says; else the stored one.
    pub department_id: String,
    /// Why, in words for the recipient.
    pub summary: String,
    /// Start the "still unresolved → next level" timer.
    pub unresolved_timer: bool,
    /// Whether the escalation may go up on its own ([`rules::may_climb`]): false for a missed
    /// limit other than completion.
    pub may_climb: bool,
    /// The event that caused it (empty for timers).
    pub causation_id: String,
}

/// The ladder bound to its policy, clock, outbox and channels.
#[derive(Clone)]
pub struct Ladder {
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub outbox: Outbox,
    pub settings: Arc<Settings>,
    /// Names of the channels each notification is delivered through.
    pub channels: Arc<Vec<String>>,
}

/// The trigger an escalation request's reason stands for.
pub fn trigger_for_reason(reason: v1::EscalationReason) -> Trigger {
    use v1::EscalationReason as R;
    match reason {
        R::RejectedAgain => Trigger::RejectedAgain,
        R::CannotSettle | R::Unspecified => Trigger::CannotSettle,
        R::UnsatisfiedAfterHandling | R::BeyondAuthority => Trigger::BeyondAuthority,
        R::GroupRisk => Trigger::GroupRisk,
        R::MediaRisk => Trigger::MediaRisk,
        R::ThreateningCustomer => Trigger::ThreateningCustomer,
        R::VentingAnger => Trigger::VentingAnger,
        R::ImportantEvent => Trigger::ImportantEvent,
    }
}

/// A subject token for a person id: NATS tokens cannot hold `.`, `*`, `>` or whitespace.
pub fn subject_token(person: &str) -> String {
    person
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect()
}

struct Recipient {
    id: String,
    name: String,
    phone: String,
    email: String,
}

impl Ladder {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Who holds `role` for this complaint.
    async fn recipient(
        &self,
        conn: &mut PgConnection,
        role: &str,
        complaint_id: &ComplaintId,
        department_id: &str,
    ) -> Result<Option<Recipient>, sqlx::Error> {
        let id: Option<String> = match role {
            "department_manager" => {
                complaints::department_manager(conn, complaint_id, department_id).await?
            }
            "general_manager" => match &self.settings.general_manager_id {
                Some(id) => Some(id.clone()),
                None => complaints::latest_with_role(conn, v1::Role::GeneralManager).await?,
            },
            "service_centre_manager" => complaints::service_centre_manager(conn).await?,
            _ => None,
        };
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        // Someone routing never described is still named, by id, and reached by the channels.
        Ok(Some(match complaints::contact(conn, &id).await? {
            Some(c) => Recipient {
                name: c.name,
                phone: c.phone,
                email: c.email,
                id,
            },
            None => Recipient {
                name: id.clone(),
                phone: String::new(),
                email: String::new(),
                id,
            },
        }))
    }

    /// Raises one step, once. Returns the new escalation's id, or `None` when the step was
    /// raised before, or joined an escalation the complaint already has at that level
    /// ([`rules::joining`]: a later missed limit is added to it without a new notification).
    /// Counted in the metrics once the caller's transaction commits.
    pub async fn raise(
        &self,
        conn: &mut PgConnection,
        after_commit: &AfterCommit,
        step: Step,
    ) -> Result<Option<String>, RaiseError> {
        // One complaint's causes are raised one at a time, across replicas: two clocks missed
        // together must not both find "no escalation yet" and notify twice.
        escalations::lock_complaint(conn, &step.complaint_id).await?;
        if escalations::step_taken(conn, &step.step_key).await? {
            return Ok(None);
        }
        if self.join(conn, &step).await? {
            return Ok(None);
        }
        let (number, stored_class, stored_department) =
            match complaints::known(conn, &step.complaint_id).await? {
                Some(k) => (k.number, k.class, k.department_id),
                None => (String::new(), 0, String::new()),
            };
        let class = if step.class != 0 {
            step.class
        } else {
            stored_class
        };
        let department_id = if step.department_id.is_empty() {
            stored_department
        } else {
            step.department_id.clone()
        };
        let role = rules::role_at(&self.policy, step.level).unwrap_or("general_manager");
        let Some(recipient) = self
            .recipient(conn, role, &step.complaint_id, &department_id)
            .await?
        else {
            return Err(RaiseError::NoRecipient {
                role: role.to_owned(),
                complaint_id: step.complaint_id,
            });
        };

        let now = self.now();
        let escalation_id = EscalationId::new().to_string();
        let acknowledge_by = rules::acknowledge_by(&self.policy, now);
        let resend_at = rules::resend_at(&self.policy, now);
        let raise_at = if step.unresolved_timer && step.may_climb {
            rules::unresolved_raise_at(&self.policy, step.level, now)
        } else {
            None
        };
        let inserted = escalations::insert(
            conn,
            &NewEscalation {
                escalation_id: &escalation_id,
                step_key: &step.step_key,
                complaint_id: &step.complaint_id,
                complaint_number: &number,
                level: step.level,
                trigger: step.trigger.to_wire(),
                recipient_id: &recipient.id,
                recipient_name: &recipient.name,
                department_id: &department_id,
                class,
                clock: step.clock,
                summary: &step.summary,
                raised_at: now,
                acknowledge_by,
                resend_at,
                raise_at,
                may_climb: step.may_climb,
            },
        )
        .await?;
        if !inserted {
            return Ok(None);
        }
        self.add_cause(conn, &escalation_id, &step, now).await?;

        let raised = v1::EscalationRaised {
            escalation_id: escalation_id.clone(),
            level: step.level,
            trigger: step.trigger.to_wire(),
            recipient_id: recipient.id.clone(),
            department_id: department_id.clone(),
            class,
            summary: step.summary.clone(),
            clock: step.clock,
            acknowledge_by: Some(ts(acknowledge_by)),
            recipient_name: recipient.name.clone(),
        };
        let body = serde_json::json!({
            "escalation_id": escalation_id,
            "complaint_id": step.complaint_id.as_str(),
            "complaint_number": number,
            "level": step.level,
            "role": role,
            "trigger": step.trigger.code(),
            "recipient_id": recipient.id,
            "recipient_name": recipient.name,
            "recipient_phone": recipient.phone,
            "recipient_email": recipient.email,
            "department_id": department_id,
            "class": v1::Class::try_from(class).map(|c| c.as_str_name()).unwrap_or(""),
            "summary": step.summary,
            "raised_at": now.to_rfc3339(),
            "acknowledge_by": acknowledge_by.to_rfc3339(),
        });
        let notification_id = NotificationId::new().to_string();
        notifications::insert(
            conn,
            &notification_id,
            &escalation_id,
            &recipient.id,
            &body,
            now,
        )
        .await?;
        let actor = PRODUCER.system_actor();
        let mut events = vec![PRODUCER.event(
            step.complaint_id.as_str(),
            now,
            &actor,
            &step.causation_id,
            Payload::EscalationRaised(raised),
        )];
        events.extend(
            self.send(
                conn,
                after_commit,
                &Send {
                    notification_id: &notification_id,
                    escalation_id: &escalation_id,
                    complaint_id: &step.complaint_id,
                    recipient_id: &recipient.id,
                    body: &body,
                    round: 1,
                    causation_id: &step.causation_id,
                },
            )
            .await?,
        );
        self.outbox.append(conn, &events).await?;
        let trigger = step.trigger.code();
        after_commit.defer(move || {
            metrics::counter!("redress_escalation_raised_total", "trigger" => trigger).increment(1);
        });
        tracing::info!(%escalation_id, complaint_id = %step.complaint_id, level = step.level,
            trigger = step.trigger.code(), recipient = %recipient.id, "escalation raised");
        Ok(Some(escalation_id))
    }

    /// DOMAIN §9 "The ladder climbs per complaint, not per clock": adds the step to the
    /// escalation the complaint already has at its level, if [`rules::joining`] lets it — no new
    /// notification. A missed completion limit joining lets that escalation climb from now on,
    /// and starts its "still unresolved" timer. Whether it joined.
    async fn join(&self, conn: &mut PgConnection, step: &Step) -> Result<bool, RaiseError> {
        let any_missed_limit = match rules::joining(step.trigger) {
            rules::Joining::Own => return Ok(false),
            rules::Joining::Open => false,
            rules::Joining::OpenOrMissedLimit => true,
        };
        let missed_limit = [
            Trigger::SlaOverdue.to_wire(),
            Trigger::ClassAOverdue.to_wire(),
        ];
        let found = escalations::joinable(
            conn,
            &step.complaint_id,
            step.level,
            any_missed_limit,
            &missed_limit,
        )
        .await?;
        let Some(escalations::Joinable {
            escalation_id,
            open,
        }) = found
        else {
            return Ok(false);
        };
        let now = self.now();
        self.add_cause(conn, &escalation_id, step, now).await?;
        if step.may_climb && open {
            let raise_at = if step.unresolved_timer {
                rules::unresolved_raise_at(&self.policy, step.level, now)
            } else {
                None
            };
            escalations::let_climb(conn, &escalation_id, raise_at).await?;
        }
        tracing::info!(%escalation_id, complaint_id = %step.complaint_id, level = step.level,
            trigger = step.trigger.code(), "cause added to the complaint's escalation");
        Ok(true)
    }

    /// Records one cause of an escalation (its record shows them all, oldest first).
    async fn add_cause(
        &self,
        conn: &mut PgConnection,
        escalation_id: &str,
        step: &Step,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        escalations::add_cause(
            conn,
            &NewCause {
                step_key: &step.step_key,
                escalation_id,
                trigger: step.trigger.to_wire(),
                clock: step.clock,
                summary: &step.summary,
                added_at: at,
            },
        )
        .await
    }

    /// One send of a notification (`round` 1 the first, then re-sends): published on the
    /// recipient's subject, queued for every channel, and a `notification.sent` event returned.
    /// Each queued delivery counts as `redress_notifications_total{channel, status="pending"}`
    /// once the caller's transaction commits.
    pub async fn send(
        &self,
        conn: &mut PgConnection,
        after_commit: &AfterCommit,
        s: &Send<'_>,
    ) -> Result<Vec<v1::Event>, RaiseError> {
        let now = self.now();
        let mut body = s.body.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("notification_id".into(), s.notification_id.into());
            obj.insert("send".into(), s.round.into());
        }
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        let mut headers = BTreeMap::new();
        headers.insert("Content-Type".to_owned(), "application/json".to_owned());
        headers.insert(
            "Redress-Notification-Id".to_owned(),
            s.notification_id.to_owned(),
        );
        let message = OutgoingMessage {
            message_id: format!("{}-{}", s.notification_id, s.round),
            complaint_id: s.complaint_id.to_string(),
            subject: self
                .outbox
                .topology()
                .notification_subject(&subject_token(s.recipient_id)),
            payload,
            headers,
        };
        self.outbox.append_messages(conn, &[message]).await?;
        for channel in self.channels.iter() {
            let queued =
                notifications::queue(conn, s.notification_id, channel, s.round, now).await?;
            if queued {
                let channel = channel.clone();
                after_commit.defer(move || count_notification(channel, "pending"));
            }
        }
        Ok(vec![PRODUCER.event(
            s.complaint_id.as_str(),
            now,
            &PRODUCER.system_actor(),
            s.causation_id,
            Payload::NotificationSent(v1::NotificationSent {
                notification_id: s.notification_id.to_owned(),
                recipient_id: s.recipient_id.to_owned(),
                channel: "nats".to_owned(),
                attempt: s.round,
                escalation_id: s.escalation_id.to_owned(),
            }),
        )])
    }
}

/// `redress_notifications_total{channel, status}`: deliveries queued (`pending`), then
/// `delivered` or `failed` for good. Call only after the change committed.
pub fn count_notification(channel: String, status: &'static str) {
    metrics::counter!("redress_notifications_total", "channel" => channel, "status" => status)
        .increment(1);
}

/// One send of a notification.
pub struct Send<'a> {
    pub notification_id: &'a str,
    pub escalation_id: &'a str,
    pub complaint_id: &'a ComplaintId,
    pub recipient_id: &'a str,
    pub body: &'a serde_json::Value,
    pub round: u32,
    pub causation_id: &'a str,
}
