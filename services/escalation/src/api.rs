//! The gRPC door: `EscalationService` — list, acknowledge and decide escalations.
//!
//! DOMAIN §5: the general manager "coordinates and gives the final decision"; every escalation
//! is "recorded when sent, seen and acted on". Acknowledging stops the re-sends and the climb for
//! want of acknowledgement; a decision at the top of the ladder is final and closes the
//! complaint's other open escalations.

use chrono::{DateTime, Utc};
use redress_domain::EscalationId;
use redress_domain::escalation::{self as rules, State};
use redress_platform::access::{self, Place, Reach};
use redress_platform::auth::{self, Identity, Role};
use redress_platform::outbox::Writes;
use redress_proto::Wire as _;
use redress_proto::v1::{self, escalation_service_server::EscalationService, event::Payload};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use tonic::{Request, Response, Status};

use crate::envelope::{PRODUCER, ts};
use crate::error::Error;
use crate::ladder::Ladder;
use redress_platform::pagination::{Key, Kind, Page};

/// The gRPC service.
pub struct Api {
    pub pool: PgPool,
    pub ladder: Ladder,
    pub ledger: crate::ledger::Ledger,
}

const COLUMNS: &str = "e.escalation_id, e.complaint_id, e.complaint_number, e.level, e.trigger,
    e.recipient_id, e.department_id, e.class, e.state, e.summary, e.raised_at, e.acknowledge_by,
    e.acknowledged_at, e.instructions, e.decided_at, e.decided_by, e.decision,
    EXISTS (SELECT 1 FROM notifications n JOIN deliveries d ON d.notification_id = n.notification_id
            WHERE n.escalation_id = e.escalation_id AND d.status = 'delivered') AS delivered,
    (SELECT COALESCE(jsonb_agg(jsonb_build_object('trigger', c.trigger, 'clock', c.clock,
                'summary', c.summary, 'added_at', c.added_at) ORDER BY c.added_at, c.step_key),
            '[]'::jsonb)
     FROM escalation_causes c WHERE c.escalation_id = e.escalation_id) AS causes";

/// The causes an escalation gathered, from the `causes` column (a JSON array, oldest first).
fn causes(r: &PgRow) -> Result<Vec<v1::EscalationCause>, sqlx::Error> {
    let json: serde_json::Value = r.try_get("causes")?;
    let field = |c: &serde_json::Value, k: &str| c.get(k).cloned().unwrap_or_default();
    Ok(json
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| v1::EscalationCause {
            trigger: field(c, "trigger").as_i64().unwrap_or(0) as i32,
            clock: field(c, "clock").as_i64().unwrap_or(0) as i32,
            summary: field(c, "summary").as_str().unwrap_or_default().to_owned(),
            added_at: field(c, "added_at")
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| ts(t.to_utc())),
        })
        .collect())
}

fn state_proto(code: &str) -> v1::EscalationState {
    match State::parse(code) {
        Some(State::Raised) => v1::EscalationState::Raised,
        Some(State::Acknowledged) => v1::EscalationState::Acknowledged,
        Some(State::Decided) => v1::EscalationState::Decided,
        Some(State::Superseded) => v1::EscalationState::Superseded,
        Some(State::Closed) => v1::EscalationState::Closed,
        None => v1::EscalationState::Unspecified,
    }
}

fn state_code(s: v1::EscalationState) -> Option<&'static str> {
    Some(match s {
        v1::EscalationState::Unspecified => return None,
        v1::EscalationState::Raised => State::Raised.code(),
        v1::EscalationState::Acknowledged => State::Acknowledged.code(),
        v1::EscalationState::Decided => State::Decided.code(),
        v1::EscalationState::Superseded => State::Superseded.code(),
        v1::EscalationState::Closed => State::Closed.code(),
    })
}

fn to_proto(r: &PgRow) -> Result<v1::Escalation, sqlx::Error> {
    let opt_ts = |c: &str| -> Result<Option<prost_types::Timestamp>, sqlx::Error> {
        Ok(r.try_get::<Option<DateTime<Utc>>, _>(c)?.map(ts))
    };
    Ok(v1::Escalation {
        escalation_id: r.try_get("escalation_id")?,
        complaint_id: r.try_get("complaint_id")?,
        complaint_number: r.try_get("complaint_number")?,
        level: u32::try_from(r.try_get::<i32, _>("level")?).unwrap_or(0),
        trigger: r.try_get("trigger")?,
        recipient_id: r.try_get("recipient_id")?,
        department_id: r.try_get("department_id")?,
        class: r.try_get("class")?,
        state: state_proto(&r.try_get::<String, _>("state")?) as i32,
        summary: r.try_get("summary")?,
        raised_at: opt_ts("raised_at")?,
        acknowledge_by: opt_ts("acknowledge_by")?,
        acknowledged_at: opt_ts("acknowledged_at")?,
        instructions: r.try_get("instructions")?,
        decided_at: opt_ts("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        decision: r.try_get("decision")?,
        notification_delivered: r.try_get("delivered")?,
        causes: causes(r)?,
    })
}

async fn load(conn: &mut PgConnection, id: &str, lock: bool) -> Result<v1::Escalation, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM escalations e WHERE e.escalation_id = $1{}",
        if lock { " FOR UPDATE OF e" } else { "" }
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("escalation {id}")))?;
    Ok(to_proto(&row)?)
}

fn escalation_id(raw: &str) -> Result<String, Error> {
    EscalationId::parse(raw)
        .map(|id| id.to_string())
        .map_err(|e| Error::invalid("escalation_id", &e.to_string()))
}

/// The recipient acts on their own escalation; the general manager, who gives the final
/// decision (DOMAIN §5), on any. Operators administer the system and decide nothing.
fn may_act(who: &Identity, e: &v1::Escalation) -> Result<(), Error> {
    if who.actor_id == e.recipient_id || who.role == Role::GeneralManager {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "escalation {} is addressed to {}",
            e.escalation_id, e.recipient_id
        )))
    }
}

fn current(e: &v1::Escalation) -> State {
    State::parse(
        &e.state()
            .as_str_name()
            .replace("ESCALATION_STATE_", "")
            .to_lowercase(),
    )
    .unwrap_or(State::Closed)
}

impl Api {
    /// A transaction whose commit also publishes the events it appended.
    async fn begin(&self) -> Result<redress_platform::outbox::Writes, Error> {
        Ok(self.ladder.outbox.begin(&self.pool).await?)
    }

    /// Commits a command: its event with the state change, then the escalation as it now is.
    async fn finish(
        &self,
        mut tx: Writes,
        id: &str,
        ev: v1::Event,
    ) -> Result<v1::Escalation, Error> {
        self.ladder.outbox.append(&mut tx, &[ev]).await?;
        let after = load(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok(after)
    }
}

#[tonic::async_trait]
impl EscalationService for Api {
    async fn list_escalations(
        &self,
        req: Request<v1::ListEscalationsRequest>,
    ) -> Result<Response<v1::ListEscalationsResponse>, Status> {
        let who = auth::identity(&req)?;
        let reach = Reach::of(&who);
        let (all, department, actor) = reach.sql();
        let r = req.into_inner();
        let page = Page::read(r.page.as_ref(), 500, &[Kind::Time, Kind::Text])?;
        let state = state_code(
            v1::EscalationState::try_from(r.state)
                .map_err(|_| Error::invalid("state", "unknown state"))?,
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM escalations e
             WHERE ($1 = '' OR e.recipient_id = $1) AND ($2 = '' OR e.department_id = $2)
               AND ($3::text IS NULL OR e.state = $3) AND ($4 = '' OR e.complaint_id = $4)
               AND ($7 OR e.department_id = ANY($8) OR e.recipient_id = $9)
               AND ($6::timestamptz IS NULL OR (e.raised_at, e.escalation_id) < ($6, $10))
             ORDER BY e.raised_at DESC, e.escalation_id DESC LIMIT $5"
        )))
        .bind(&r.recipient_id)
        .bind(&r.department_id)
        .bind(state)
        .bind(&r.complaint_id)
        .bind(page.fetch())
        .bind(page.time(0))
        .bind(all)
        .bind(department)
        .bind(actor)
        .bind(page.text(1))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::from)?;
        let (rows, next_page_token) = page
            .finish(rows, |r| {
                Ok::<_, sqlx::Error>(vec![
                    Key::Time(r.try_get("raised_at")?),
                    Key::Text(r.try_get("escalation_id")?),
                ])
            })
            .map_err(Error::from)?;
        let escalations = rows
            .iter()
            .map(to_proto)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::from)?;
        Ok(Response::new(v1::ListEscalationsResponse {
            escalations,
            next_page_token,
        }))
    }

    async fn acknowledge(
        &self,
        req: Request<v1::AcknowledgeRequest>,
    ) -> Result<Response<v1::AcknowledgeResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        let id = escalation_id(&r.escalation_id)?;
        let mut tx = self.begin().await?;
        let e = load(&mut tx, &id, true).await?;
        may_act(&who, &e)?;
        rules::acknowledge(current(&e)).map_err(|t| Error::FailedPrecondition(t.to_string()))?;
        let now = self.ladder.now();
        sqlx::query(
            "UPDATE escalations SET state = 'acknowledged', acknowledged_at = $2,
                instructions = $3, resend_at = NULL WHERE escalation_id = $1",
        )
        .bind(&id)
        .bind(now)
        .bind(r.instructions.trim())
        .execute(&mut *tx)
        .await
        .map_err(Error::from)?;
        let ev = PRODUCER.event(
            &e.complaint_id,
            now,
            &who.to_actor(),
            "",
            Payload::EscalationAcknowledged(v1::EscalationAcknowledged {
                escalation_id: id.clone(),
                acknowledged_by: who.actor_id.clone(),
                instructions: r.instructions.trim().to_owned(),
                level: e.level,
            }),
        );
        let after = self.finish(tx, &id, ev).await?;
        Ok(Response::new(v1::AcknowledgeResponse {
            escalation: Some(after),
        }))
    }

    async fn decide(
        &self,
        req: Request<v1::DecideRequest>,
    ) -> Result<Response<v1::DecideResponse>, Status> {
        let who = auth::identity(&req)?;
        let r = req.into_inner();
        let id = escalation_id(&r.escalation_id)?;
        let decision = r.decision.trim();
        if decision.is_empty() {
            return Err(Error::invalid("decision", "is required").into());
        }
        let mut tx = self.begin().await?;
        let e = load(&mut tx, &id, true).await?;
        may_act(&who, &e)?;
        rules::decide(current(&e)).map_err(|t| Error::FailedPrecondition(t.to_string()))?;
        let now = self.ladder.now();
        let final_decision = rules::is_final(&self.ladder.policy, e.level);
        sqlx::query(
            "UPDATE escalations SET state = 'decided', decided_at = $2, decided_by = $3,
                decision = $4, resend_at = NULL, raise_at = NULL,
                acknowledged_at = COALESCE(acknowledged_at, $2) WHERE escalation_id = $1",
        )
        .bind(&id)
        .bind(now)
        .bind(&who.actor_id)
        .bind(decision)
        .execute(&mut *tx)
        .await
        .map_err(Error::from)?;
        if final_decision {
            // DOMAIN §5: the general manager's decision is final for the complaint.
            sqlx::query(
                "UPDATE escalations SET state = 'closed', resend_at = NULL, raise_at = NULL
                 WHERE complaint_id = $1 AND escalation_id <> $2
                   AND state IN ('raised', 'acknowledged')",
            )
            .bind(&e.complaint_id)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(Error::from)?;
        }
        let ev = PRODUCER.event(
            &e.complaint_id,
            now,
            &who.to_actor(),
            "",
            Payload::EscalationDecided(v1::EscalationDecided {
                escalation_id: id.clone(),
                decided_by: who.actor_id.clone(),
                decision: decision.to_owned(),
                level: e.level,
                final_decision,
            }),
        );
        let after = self.finish(tx, &id, ev).await?;
        Ok(Response::new(v1::DecideResponse {
            escalation: Some(after),
        }))
    }

    async fn set_business_volume(
        &self,
        req: Request<v1::SetBusinessVolumeRequest>,
    ) -> Result<Response<v1::SetBusinessVolumeResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator, Role::GeneralManager])?;
        let r = req.into_inner();
        let department = r.department_id.trim();
        if department.is_empty() {
            return Err(Error::invalid("department_id", "is required").into());
        }
        if redress_domain::penalty::month_bounds(&self.ladder.policy, &r.month).is_none() {
            return Err(Error::invalid("month", "must be a month written YYYY-MM").into());
        }
        let volume = i64::try_from(r.volume)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| Error::invalid("volume", "must be between 1 and 2^63-1"))?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT volume FROM business_volumes WHERE department_id = $1 AND month = $2
             FOR UPDATE",
        )
        .bind(department)
        .bind(&r.month)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::from)?;
        sqlx::query(
            "INSERT INTO business_volumes (department_id, month, volume, set_by, set_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (department_id, month) DO UPDATE SET
                volume = EXCLUDED.volume, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
        )
        .bind(department)
        .bind(&r.month)
        .bind(volume)
        .bind(&who.actor_id)
        .bind(self.ladder.now())
        .execute(&mut *tx)
        .await
        .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(v1::SetBusinessVolumeResponse {
            previous_volume: previous.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        }))
    }

    async fn monthly_report(
        &self,
        req: Request<v1::MonthlyReportRequest>,
    ) -> Result<Response<v1::MonthlyReportResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(
            &who,
            &[
                Role::Operator,
                Role::GeneralManager,
                Role::DepartmentManager,
            ],
        )?;
        let r = req.into_inner();
        // A department manager reports on their own departments, one at a time.
        if who.role == Role::DepartmentManager
            && !who.departments.iter().any(|d| d == r.department_id.trim())
        {
            return Err(Status::permission_denied(format!(
                "{} reports on their own departments only ({}): give department_id",
                who.actor_id,
                who.departments.join(", ")
            )));
        }
        let format = v1::ReportFormat::try_from(r.format)
            .map_err(|_| Error::invalid("format", "unknown format"))?;
        let report = crate::report::monthly(
            &self.pool,
            &self.ladder.policy,
            &r.month,
            r.department_id.trim(),
            format == v1::ReportFormat::Csv,
        )
        .await?;
        Ok(Response::new(report))
    }

    async fn record_neglect_finding(
        &self,
        req: Request<v1::RecordNeglectFindingRequest>,
    ) -> Result<Response<v1::RecordNeglectFindingResponse>, Status> {
        let who = auth::identity(&req)?;
        // DOMAIN §9: doubling without a missed limit is "a manager's finding of neglect".
        auth::require(&who, &[Role::DepartmentManager, Role::GeneralManager])?;
        let r = req.into_inner();
        let original = redress_domain::ComplaintId::parse(r.original_complaint_id.trim())
            .map_err(|e| Error::invalid("original_complaint_id", &e.to_string()))?;
        let finding = r.finding.trim();
        if finding.is_empty() {
            return Err(Error::invalid("finding", "is required").into());
        }
        let mut tx = self.begin().await?;
        let repeat: Option<(String, i32, String)> = sqlx::query_as(
            "SELECT person_id, class, department_id FROM repeats WHERE original_complaint_id = $1
             ORDER BY month LIMIT 1",
        )
        .bind(original.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::from)?;
        if let Some((_, _, department)) = &repeat
            && !access::acts_for_department(&who, Place::new(department, ""))
        {
            return Err(access::outside(&who, original.as_str()));
        }
        let Some((person, class, _)) = repeat else {
            return Err(Error::FailedPrecondition(format!(
                "no repeat complaint is recorded about {original}"
            ))
            .into());
        };
        if person.is_empty() || redress_domain::Class::from_wire(class).is_none() {
            return Err(Error::FailedPrecondition(format!(
                "the repeat complaint about {original} names no responsible person or class"
            ))
            .into());
        }
        let (extra, newly_booked) = self
            .ledger
            .double(
                &mut tx,
                &original,
                &person,
                class,
                "",
                &format!("neglect finding by {}: {finding}", who.actor_id),
                self.ladder.now(),
                &who.to_actor(),
            )
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(v1::RecordNeglectFindingResponse {
            person_id: person,
            extra_fen: extra.fen(),
            newly_booked,
        }))
    }
}
