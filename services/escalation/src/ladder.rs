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
use redress_domain::{Clock, EscalationId, NotificationId, Policy};
use redress_platform::metrics::AfterCommit;
use redress_platform::outbox::{Outbox, OutgoingMessage};
use redress_proto::Wire as _;
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, Row};

use crate::envelope::{PRODUCER, ts};
use crate::settings::Settings;

/// Why a step could not be raised.
#[derive(Debug, thiserror::Error)]
pub enum RaiseError {
    /// Nobody holds the rung's role yet (routing's organisation events not seen); retried.
    #[error("no {role} known for complaint {complaint_id}")]
    NoRecipient { role: String, complaint_id: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Outbox(#[from] redress_platform::outbox::AppendError),
}

/// One step to raise.
pub struct Step {
    pub complaint_id: String,
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
        complaint_id: &str,
        department_id: &str,
    ) -> Result<Option<Recipient>, sqlx::Error> {
        let id: Option<String> = match role {
            // The complaint's department manager; before routing — no department yet — the
            // complaint centre's manager: unconfirmed complaints belong to the centre (DOMAIN §9).
            "department_manager" => {
                sqlx::query_scalar(
                    "SELECT COALESCE(NULLIF(c.department_manager_id, ''),
                        NULLIF(d.manager_id, ''),
                        CASE WHEN COALESCE(NULLIF($2, ''), c.department_id, '') = '' THEN
                            (SELECT manager_id FROM departments
                             WHERE service_centre AND manager_id <> ''
                             ORDER BY department_id LIMIT 1)
                        END)
                     FROM (SELECT $1::text AS complaint_id) k
                     LEFT JOIN complaints c ON c.complaint_id = k.complaint_id
                     LEFT JOIN departments d ON d.department_id =
                         COALESCE(NULLIF($2, ''), c.department_id)",
                )
                .bind(complaint_id)
                .bind(department_id)
                .fetch_one(&mut *conn)
                .await?
            }
            "general_manager" => match &self.settings.general_manager_id {
                Some(id) => Some(id.clone()),
                None => {
                    sqlx::query_scalar(
                        "SELECT staff_id FROM staff WHERE role = $1 AND NOT on_leave
                         ORDER BY updated_at DESC, staff_id LIMIT 1",
                    )
                    .bind(v1::Role::GeneralManager as i32)
                    .fetch_optional(&mut *conn)
                    .await?
                }
            },
            "service_centre_manager" => {
                sqlx::query_scalar(
                    "SELECT staff_id FROM staff WHERE role = $1 AND NOT on_leave
                     UNION ALL SELECT manager_id FROM departments WHERE service_centre
                     LIMIT 1",
                )
                .bind(v1::Role::ServiceCentreManager as i32)
                .fetch_optional(&mut *conn)
                .await?
            }
            _ => None,
        };
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT name, phone, email FROM staff WHERE staff_id = $1")
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(Some(match row {
            Some(r) => Recipient {
                name: r.try_get("name")?,
                phone: r.try_get("phone")?,
                email: r.try_get("email")?,
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
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('escalation/' || $1))")
            .bind(&step.complaint_id)
            .execute(&mut *conn)
            .await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM escalation_causes WHERE step_key = $1)
                OR EXISTS (SELECT 1 FROM escalations WHERE step_key = $1)",
        )
        .bind(&step.step_key)
        .fetch_one(&mut *conn)
        .await?;
        if exists {
            return Ok(None);
        }
        if self.join(conn, &step).await? {
            return Ok(None);
        }
        let known = sqlx::query(
            "SELECT number, class, department_id FROM complaints WHERE complaint_id = $1",
        )
        .bind(&step.complaint_id)
        .fetch_optional(&mut *conn)
        .await?;
        let (number, stored_class, stored_department) = match known {
            Some(r) => (
                r.try_get::<String, _>("number")?,
                r.try_get::<i32, _>("class")?,
                r.try_get::<String, _>("department_id")?,
            ),
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
        let inserted = sqlx::query(
            "INSERT INTO escalations (escalation_id, step_key, complaint_id, complaint_number,
                level, trigger, recipient_id, recipient_name, department_id, class, clock, state,
                summary, raised_at, acknowledge_by, resend_at, raise_at, may_climb)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,'raised',$12,$13,$14,$15,$16,$17)
             ON CONFLICT (step_key) DO NOTHING",
        )
        .bind(&escalation_id)
        .bind(&step.step_key)
        .bind(&step.complaint_id)
        .bind(&number)
        .bind(i32::try_from(step.level).unwrap_or(i32::MAX))
        .bind(step.trigger.to_wire())
        .bind(&recipient.id)
        .bind(&recipient.name)
        .bind(&department_id)
        .bind(class)
        .bind(step.clock)
        .bind(&step.summary)
        .bind(now)
        .bind(acknowledge_by)
        .bind(resend_at)
        .bind(raise_at)
        .bind(step.may_climb)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
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
            "complaint_id": step.complaint_id,
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
        sqlx::query(
            "INSERT INTO notifications (notification_id, escalation_id, recipient_id, body,
                created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&notification_id)
        .bind(&escalation_id)
        .bind(&recipient.id)
        .bind(&body)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let actor = PRODUCER.system_actor();
        let mut events = vec![PRODUCER.event(
            &step.complaint_id,
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
        let found = sqlx::query(
            "SELECT escalation_id, state IN ('raised', 'acknowledged') AS open
             FROM escalations
             WHERE complaint_id = $1 AND level = $2
               AND (state IN ('raised', 'acknowledged') OR ($3 AND trigger = ANY($4)))
             ORDER BY (state IN ('raised', 'acknowledged')) DESC, raised_at DESC
             LIMIT 1 FOR UPDATE",
        )
        .bind(&step.complaint_id)
        .bind(i32::try_from(step.level).unwrap_or(i32::MAX))
        .bind(any_missed_limit)
        .bind(&missed_limit[..])
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = found else {
            return Ok(false);
        };
        let escalation_id: String = row.try_get("escalation_id")?;
        let open: bool = row.try_get("open")?;
        let now = self.now();
        self.add_cause(conn, &escalation_id, step, now).await?;
        if step.may_climb && open {
            let raise_at = if step.unresolved_timer {
                rules::unresolved_raise_at(&self.policy, step.level, now)
            } else {
                None
            };
            sqlx::query(
                "UPDATE escalations SET may_climb = true, raise_at = COALESCE(raise_at, $2)
                 WHERE escalation_id = $1",
            )
            .bind(&escalation_id)
            .bind(raise_at)
            .execute(&mut *conn)
            .await?;
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
        sqlx::query(
            "INSERT INTO escalation_causes (step_key, escalation_id, trigger, clock, summary,
                added_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (step_key) DO NOTHING",
        )
        .bind(&step.step_key)
        .bind(escalation_id)
        .bind(step.trigger.to_wire())
        .bind(step.clock)
        .bind(&step.summary)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(())
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
            complaint_id: s.complaint_id.to_owned(),
            subject: self
                .outbox
                .topology()
                .notification_subject(&subject_token(s.recipient_id)),
            payload,
            headers,
        };
        self.outbox.append_messages(conn, &[message]).await?;
        for channel in self.channels.iter() {
            let queued = sqlx::query(
                "INSERT INTO deliveries (notification_id, channel, round, next_attempt_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(s.notification_id)
            .bind(channel)
            .bind(i32::try_from(s.round).unwrap_or(i32::MAX))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if queued == 1 {
                let channel = channel.clone();
                after_commit.defer(move || count_notification(channel, "pending"));
            }
        }
        Ok(vec![PRODUCER.event(
            s.complaint_id,
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
    pub complaint_id: &'a str,
    pub recipient_id: &'a str,
    pub body: &'a serde_json::Value,
    pub round: u32,
    pub causation_id: &'a str,
}
