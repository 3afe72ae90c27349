//! Routing's consumer: intake's `complaint.received` / `complaint.confirmed` /
//! `complaint.reclassified`, escalation's `staff.suspended`, and revisit's `complaint.reopened`
//! (a dissatisfied customer's repeat complaint puts the resolved or closed complaint back in
//! handling), `revisit.completed` and `revisit.signed_off` (a resolved complaint is closed once
//! a revisit finds the customer satisfied or the department manager signs one off: DOMAIN §9
//! "Closing", ADR 0018).
//!
//! DOMAIN §1: "routing waits until the required fields are complete and the record is
//! confirmed"; a submission that arrives already confirmed is routed on receipt. Received and
//! confirmed may be applied in either order (two replicas share the consumer), so each marks
//! its half on the complaint's row and whichever completes the pair routes it — under the row
//! lock, and only from `awaiting_confirmation`, so redelivery or a race routes it once.

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_domain::handling::{Command, Stage};
use redress_platform::consumer::{HandleError, Handler, Incoming};
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::commands::{self, Ctx};
use crate::error::Error;
use crate::events::{from_ts, system_actor};
use crate::org;

/// The consumer.
pub struct IntakeEvents {
    pub ctx: Ctx,
}

fn class_letter(c: i32) -> &'static str {
    match v1::Class::try_from(c) {
        Ok(v1::Class::A) => "A",
        Ok(v1::Class::B) => "B",
        Ok(v1::Class::D) => "D",
        _ => "C",
    }
}

fn transient(e: Error) -> HandleError {
    HandleError::Transient(anyhow::anyhow!("{e}"))
}

#[async_trait::async_trait]
impl Handler for IntakeEvents {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = v1::Event::decode(msg.payload)
            .map_err(|e| HandleError::Permanent(format!("not an Event: {e}")))?;
        let at = event
            .occurred_at
            .as_ref()
            .and_then(from_ts)
            .unwrap_or_else(|| self.ctx.clock.now());
        match event.payload.as_ref() {
            Some(Payload::ComplaintReceived(r)) => {
                self.received(conn, &event, r, at).await?;
                self.maybe_route(conn, &event).await
            }
            Some(Payload::ComplaintConfirmed(_)) => {
                sqlx::query(
                    "INSERT INTO handling (complaint_id, stage, confirmed, updated_at)
                     VALUES ($1, 'awaiting_confirmation', true, $2)
                     ON CONFLICT (complaint_id) DO UPDATE SET confirmed = true",
                )
                .bind(&event.complaint_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                self.maybe_route(conn, &event).await
            }
            Some(Payload::ComplaintReclassified(r)) => {
                let due = r
                    .promises
                    .as_ref()
                    .and_then(|p| p.completion_due.as_ref())
                    .and_then(from_ts);
                // Applied before `complaint.received` (out of order), it leaves a row that
                // `received` completes without overwriting the class.
                sqlx::query(
                    "INSERT INTO handling (complaint_id, stage, class, completion_due,
                        reclassified_at, updated_at)
                     VALUES ($1, 'awaiting_confirmation', $2, $3, $4, $4)
                     ON CONFLICT (complaint_id) DO UPDATE SET class = EXCLUDED.class,
                        completion_due = COALESCE(EXCLUDED.completion_due, handling.completion_due),
                        reclassified_at = EXCLUDED.reclassified_at
                     WHERE handling.reclassified_at IS NULL
                        OR handling.reclassified_at <= EXCLUDED.reclassified_at",
                )
                .bind(&event.complaint_id)
                .bind(class_letter(r.to_class))
                .bind(due)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
            Some(Payload::StaffSuspended(s)) => {
                org::suspend(conn, &s.person_id).await?;
                Ok(())
            }
            Some(Payload::Reopened(_)) => self.reopened(conn, &event, at).await,
            Some(Payload::RevisitCompleted(c)) => {
                if !c.reached {
                    return Ok(());
                }
                // Satisfied with nothing new to answer: the revisits are done. New issues wait
                // for the department manager's sign-off (DOMAIN §6).
                let done = c.satisfied && !c.new_issues;
                let note = format!("revisit {}: the customer is satisfied", c.revisit_id);
                self.after_revisit(
                    conn,
                    &event,
                    Some(c.satisfied),
                    done.then_some(note),
                    &c.revisit_id,
                    at,
                )
                .await
            }
            Some(Payload::RevisitSignedOff(s)) => {
                let note = if s.result.is_empty() {
                    format!("revisit {} signed off by {}", s.revisit_id, s.manager_id)
                } else {
                    format!(
                        "revisit {} signed off by {}: {}",
                        s.revisit_id, s.manager_id, s.result
                    )
                };
                self.after_revisit(conn, &event, None, Some(note), &s.revisit_id, at)
                    .await
            }
            _ => Ok(()),
        }
    }
}

impl IntakeEvents {
    /// A repeat complaint reopened the complaint (ADR 0011): its handling resumes with the same
    /// department and handler, who must propose a solution again. The event is the revisit
    /// service's; routing only follows it, so it emits nothing. A complaint routing does not
    /// hold as resolved (still in handling, or closed) is left as it is.
    async fn reopened(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let Some(mut rec) = commands::load(conn, &event.complaint_id)
            .await
            .map_err(transient)?
        else {
            return Ok(());
        };
        if !matches!(rec.stage, Stage::Resolved | Stage::Closed) {
            tracing::debug!(
                stage = rec.stage.as_str(),
                "reopened: not resolved or closed here; unchanged"
            );
            return Ok(());
        }
        commands::apply(&self.ctx, &mut rec, Command::Reopen).map_err(transient)?;
        rec.closed_at = None;
        commands::save(conn, &rec, at).await.map_err(transient)?;
        Ok(())
    }

    /// A revisit's outcome (`satisfied`, when it reached the customer) or its sign-off. Keeps
    /// the customer's latest satisfaction; with `close_note`, closes the complaint if routing
    /// holds it as resolved — in this transaction, with its `complaint.closed` in the outbox.
    /// A complaint still in handling (a revisit while the customer waits), already closed, or
    /// unknown is not closed, so redelivery or a second revisit closes nothing twice.
    async fn after_revisit(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
        satisfied: Option<bool>,
        close_note: Option<String>,
        revisit_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let Some(mut rec) = commands::load(conn, &event.complaint_id)
            .await
            .map_err(transient)?
        else {
            return Ok(());
        };
        if satisfied.is_some() {
            rec.satisfied = satisfied;
        }
        let mut events = Vec::new();
        if let Some(note) = close_note
            && rec.stage == Stage::Resolved
        {
            let now = self.ctx.clock.now();
            let closed = commands::close(
                &self.ctx,
                &mut rec,
                &note,
                revisit_id,
                &system_actor(),
                &event.event_id,
                now,
            )
            .map_err(transient)?;
            events.push(closed);
        }
        if satisfied.is_none() && events.is_empty() {
            return Ok(());
        }
        commands::save(conn, &rec, at).await.map_err(transient)?;
        self.ctx
            .outbox
            .append(conn, &events)
            .await
            .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }

    /// Records what intake received (once; a later copy changes nothing).
    async fn received(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
        r: &v1::ComplaintReceived,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let Some(details) = r.details.as_ref() else {
            return Err(HandleError::Permanent(
                "complaint.received without details".into(),
            ));
        };
        if event.complaint_id.is_empty() {
            return Err(HandleError::Permanent(
                "complaint.received without complaint id".into(),
            ));
        }
        let completion_due = r
            .promises
            .as_ref()
            .and_then(|p| p.completion_due.as_ref())
            .and_then(from_ts);
        let actions = r
            .guidance
            .as_ref()
            .map(|g| g.actions.clone())
            .unwrap_or_default();
        let customer_name = details
            .customer
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        sqlx::query(
            "INSERT INTO handling (complaint_id, stage, received, confirmed, number, class, details,
                guidance_actions, category, group_complaint, customers_affected, media_risk,
                customer_name, customer_type, received_at, completion_due, updated_at)
             VALUES ($1, 'awaiting_confirmation', true, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                $13, $14, $13)
             ON CONFLICT (complaint_id) DO UPDATE SET received = true,
                confirmed = handling.confirmed OR EXCLUDED.confirmed, number = EXCLUDED.number,
                class = CASE WHEN handling.reclassified_at IS NULL THEN EXCLUDED.class
                             ELSE handling.class END,
                details = EXCLUDED.details,
                guidance_actions = EXCLUDED.guidance_actions, category = EXCLUDED.category,
                group_complaint = EXCLUDED.group_complaint,
                customers_affected = EXCLUDED.customers_affected, media_risk = EXCLUDED.media_risk,
                customer_name = EXCLUDED.customer_name, customer_type = EXCLUDED.customer_type,
                received_at = EXCLUDED.received_at,
                completion_due = CASE WHEN handling.reclassified_at IS NULL
                                      THEN EXCLUDED.completion_due
                                      ELSE COALESCE(handling.completion_due, EXCLUDED.completion_due) END
             WHERE NOT handling.received",
        )
        .bind(&event.complaint_id)
        .bind(r.confirmed)
        .bind(&r.complaint_number)
        .bind(class_letter(r.class))
        .bind(details.encode_to_vec())
        .bind(&actions)
        .bind(&details.category)
        .bind(details.group_complaint)
        .bind(i32::try_from(details.customers_affected.max(1)).unwrap_or(i32::MAX))
        .bind(details.media_risk)
        .bind(customer_name)
        .bind(details.customer_type)
        .bind(at)
        .bind(completion_due)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Routes and assigns the complaint once both halves are in.
    async fn maybe_route(
        &self,
        conn: &mut PgConnection,
        event: &v1::Event,
    ) -> Result<(), HandleError> {
        let ctx = &self.ctx;
        let Some(mut rec) = commands::load(conn, &event.complaint_id)
            .await
            .map_err(transient)?
        else {
            return Ok(());
        };
        let ready: (bool, bool) =
            sqlx::query_as("SELECT received, confirmed FROM handling WHERE complaint_id = $1")
                .bind(&event.complaint_id)
                .fetch_one(&mut *conn)
                .await?;
        if ready != (true, true) || rec.stage != Stage::AwaitingConfirmation {
            return Ok(());
        }
        let Some(details) = rec.details.clone() else {
            return Ok(());
        };
        let Some((department, rule, reason)) = org::route(conn, &details).await? else {
            return Err(HandleError::Transient(anyhow::anyhow!(
                "no routing rule matches, no default department is configured and no \
                 department is marked as the complaint centre (service_centre)"
            )));
        };
        let now = ctx.clock.now();
        let events = commands::route_and_assign(
            ctx,
            conn,
            &mut rec,
            Command::Route,
            &department,
            &rule,
            &reason,
            &system_actor(),
            &event.event_id,
            now,
        )
        .await
        .map_err(transient)?;
        let mut events = events;
        if reason == org::UNROUTABLE {
            // Parked with the centre: its manager is told, so somebody routes it by hand.
            let causation = events
                .first()
                .map(|e| e.event_id.clone())
                .unwrap_or_default();
            let mut request = commands::escalation_request(
                &rec,
                v1::EscalationReason::ImportantEvent,
                "No routing rule matched and no default department is set; the complaint waits \
                 in the complaint centre's queue to be routed by hand.",
            );
            if let Payload::EscalationRequested(r) = &mut request {
                r.target_level = 1; // the centre's manager, not the general manager
            }
            events.push(crate::events::event(
                &rec.complaint_id,
                now,
                &system_actor(),
                &causation,
                request,
            ));
        }
        ctx.outbox
            .append(conn, &events)
            .await
            .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }
}
