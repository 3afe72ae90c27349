//! The complaint registry: each complaint's current summary and its full timeline, for staff
//! and dashboards (`GetComplaint`, `ListComplaints`).
//!
//! It is built from the events of every other service as they arrive on `<prefix>.events.<kind>`,
//! and from intake's own events ([`OWN_KINDS`]) in the transaction that writes them
//! ([`record_own`]): intake does not read its own events back from the bus, which halves the
//! messages it handles per complaint. Both go through the same [`Entry`] code. Applying an
//! event is idempotent twice over: the consumer skips event ids it has processed, and the
//! timeline has a unique event id.

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_platform::consumer::{HandleError, Handler, Incoming};
use redress_proto::v1::{self, event::Payload};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::Error;
use crate::submission::ts;

/// Applies events to the registry.
pub struct Registry;

/// One event as the registry reads it.
struct Entry<'a> {
    event: &'a v1::Event,
    payload: &'a Payload,
    occurred_at: DateTime<Utc>,
}

impl<'a> Entry<'a> {
    /// `None` for events that belong to no complaint (rejections, organisation changes).
    fn of(event: &'a v1::Event) -> Result<Option<Entry<'a>>, String> {
        if event.complaint_id.is_empty() {
            return Ok(None);
        }
        let Some(payload) = event.payload.as_ref() else {
            return Err("event without payload".into());
        };
        let occurred_at = event
            .occurred_at
            .as_ref()
            .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .unwrap_or_else(Utc::now);
        Ok(Some(Entry {
            event,
            payload,
            occurred_at,
        }))
    }

    /// The summary columns and the satisfaction field, after the timeline row is in.
    async fn apply(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let payload = self.payload;
        apply_to_summary(conn, &self.event.complaint_id, payload, self.occurred_at).await?;
        if let Payload::SatisfactionReported(s) = payload {
            sqlx::query("UPDATE complaints SET satisfaction = $2 WHERE complaint_id = $1")
                .bind(&self.event.complaint_id)
                .bind(if s.satisfied {
                    "satisfied"
                } else {
                    "dissatisfied"
                })
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// The kinds intake itself writes. Their timeline entries are written with them
/// ([`record_own`]); the registry's consumer does not subscribe to them.
pub const OWN_KINDS: &[&str] = &[
    "complaint.received",
    "complaint.rejected",
    "complaint.confirmed",
    "complaint.classified",
    "complaint.reclassified",
];

/// What the registry's consumer subscribes to: every other service's events.
pub fn subjects(topology: &redress_platform::nats::Topology) -> Vec<String> {
    redress_proto::every_kind()
        .into_iter()
        .filter(|k| !OWN_KINDS.contains(k))
        .map(|k| topology.event_subject(k))
        .collect()
}

/// Adds intake's own events to the registry inside the transaction that writes them.
pub async fn record_own(conn: &mut PgConnection, events: &[v1::Event]) -> Result<(), Error> {
    apply_events(conn, events).await?.map_err(Error::Internal)
}

/// Applies events to the registry: every timeline row in one insert, then the summaries in
/// the events' order (most events change no summary column and cost nothing more). The inner
/// error is an event that can never be applied.
async fn apply_events(
    conn: &mut PgConnection,
    events: &[v1::Event],
) -> Result<Result<(), String>, sqlx::Error> {
    let mut entries = Vec::with_capacity(events.len());
    for e in events {
        match Entry::of(e) {
            Ok(entry) => entries.extend(entry),
            Err(reason) => return Ok(Err(reason)),
        }
    }
    insert_timeline(conn, &entries).await?;
    for entry in &entries {
        entry.apply(conn).await?;
    }
    Ok(Ok(()))
}

/// Adds the entries' timeline rows in one statement (a row already there is left as it is).
async fn insert_timeline(
    conn: &mut PgConnection,
    entries: &[Entry<'_>],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut complaints = Vec::with_capacity(entries.len());
    let mut ids = Vec::with_capacity(entries.len());
    let mut kinds = Vec::with_capacity(entries.len());
    let mut times = Vec::with_capacity(entries.len());
    let mut actor_ids = Vec::with_capacity(entries.len());
    let mut actor_names = Vec::with_capacity(entries.len());
    let mut actor_roles = Vec::with_capacity(entries.len());
    let mut summaries = Vec::with_capacity(entries.len());
    let mut producers = Vec::with_capacity(entries.len());
    for e in entries {
        let actor = e.event.actor.clone().unwrap_or_default();
        complaints.push(e.event.complaint_id.clone());
        ids.push(e.event.event_id.clone());
        kinds.push(e.payload.kind().to_owned());
        times.push(e.occurred_at);
        actor_ids.push(actor.id);
        actor_names.push(actor.display_name);
        actor_roles.push(actor.role);
        summaries.push(summary(e.payload));
        producers.push(e.event.producer.clone());
    }
    sqlx::query(
        "INSERT INTO timeline (complaint_id, event_id, kind, occurred_at, actor_id, actor_name,
            actor_role, summary, source_service)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
            $6::text[], $7::int4[], $8::text[], $9::text[])
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(complaints)
    .bind(ids)
    .bind(kinds)
    .bind(times)
    .bind(actor_ids)
    .bind(actor_names)
    .bind(actor_roles)
    .bind(summaries)
    .bind(producers)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message's event.
fn decode(msg: &Incoming<'_>) -> Result<v1::Event, HandleError> {
    v1::Event::decode(msg.payload).map_err(|e| HandleError::Permanent(format!("not an Event: {e}")))
}

#[async_trait::async_trait]
impl Handler for Registry {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = decode(msg)?;
        apply_events(conn, std::slice::from_ref(&event))
            .await?
            .map_err(HandleError::Permanent)
    }

    /// The whole batch through [`apply_events`]: one insert for every timeline row.
    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Incoming<'_>],
    ) -> Result<(), HandleError> {
        let events = msgs
            .iter()
            .map(|m| decode(m))
            .collect::<Result<Vec<_>, _>>()?;
        apply_events(conn, &events)
            .await?
            .map_err(HandleError::Permanent)
    }
}

/// Keeps the summary columns current. Events may arrive before intake's own row exists (they
/// are published by other services); such updates touch no row and the timeline still has them.
async fn apply_to_summary(
    conn: &mut PgConnection,
    complaint_id: &str,
    payload: &Payload,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (status, department, assignee, overdue): (
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Option<bool>,
    ) = match payload {
        Payload::ComplaintRouted(r) => (Some("routed"), Some(&r.department_id), None, None),
        Payload::ComplaintAssigned(a) => (
            Some("assigned"),
            Some(&a.department_id),
            Some(&a.assignee_id),
            None,
        ),
        Payload::AcceptedByDepartment(_) => (Some("accepted"), None, None, None),
        Payload::FeedbackGiven(_)
        | Payload::IntermediateResultReported(_)
        | Payload::CauseRecorded(_)
        | Payload::ValidityDecided(_) => (Some("in_progress"), None, None, None),
        Payload::ResolutionProposed(_) => (Some("solution_proposed"), None, None, None),
        Payload::CustomerRejected(_) | Payload::ReStudyRequested(_) => {
            (Some("restudy"), None, None, None)
        }
        Payload::EscalationRequested(_) | Payload::EscalationRaised(_) => {
            (Some("escalated"), None, None, None)
        }
        Payload::Resolved(_) => (Some("resolved"), None, None, Some(false)),
        Payload::Reopened(_) | Payload::RepeatComplaint(_) => (Some("reopened"), None, None, None),
        Payload::Closed(_) => (Some("closed"), None, None, None),
        Payload::SlaOverdue(_) => (None, None, None, Some(true)),
        _ => (None, None, None, None),
    };
    if status.is_none() && department.is_none() && assignee.is_none() && overdue.is_none() {
        return Ok(());
    }
    // Status only moves forward in time: an older event delivered late does not overwrite it.
    sqlx::query(
        "UPDATE complaints SET
            status = CASE WHEN $2::text IS NOT NULL AND updated_at <= $6 THEN $2 ELSE status END,
            department_id = COALESCE($3, department_id),
            assignee_id = COALESCE($4, assignee_id),
            overdue = COALESCE($5, overdue),
            updated_at = GREATEST(updated_at, $6)
         WHERE complaint_id = $1",
    )
    .bind(complaint_id)
    .bind(status)
    .bind(department.filter(|d| !d.is_empty()))
    .bind(assignee.filter(|a| !a.is_empty()))
    .bind(overdue)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One line for a timeline entry, in words a supervisor reads.
pub fn summary(payload: &Payload) -> String {
    payload.describe()
}

/// `GetComplaint`: the record, its state and its whole timeline.
pub async fn get(pool: &PgPool, complaint_id: &str) -> Result<v1::ComplaintView, Error> {
    // One snapshot for the row and its timeline, so the status matches the entries shown.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "SELECT complaint_id, number, details, acknowledgement, class, status, department_id,
                assignee_id, overdue, confirmed, received_at, satisfaction
         FROM complaints WHERE complaint_id = $1",
    )
    .bind(complaint_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::NotFound(complaint_id.to_owned()))?;
    let details = v1::ComplaintDetails::decode(row.try_get::<Vec<u8>, _>("details")?.as_slice())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let ack = v1::Acknowledgement::decode(row.try_get::<Vec<u8>, _>("acknowledgement")?.as_slice())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let class: String = row.try_get("class")?;
    let timeline = sqlx::query(
        "SELECT event_id, kind, occurred_at, actor_id, actor_name, actor_role, summary, source_service
         FROM timeline WHERE complaint_id = $1 ORDER BY occurred_at, seq",
    )
    .bind(complaint_id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| -> Result<v1::TimelineEntry, sqlx::Error> {
        Ok(v1::TimelineEntry {
            event_id: r.try_get("event_id")?,
            kind: r.try_get("kind")?,
            occurred_at: Some(ts(r.try_get("occurred_at")?)),
            actor: Some(v1::Actor {
                id: r.try_get("actor_id")?,
                display_name: r.try_get("actor_name")?,
                role: r.try_get("actor_role")?,
            }),
            summary: r.try_get("summary")?,
            source_service: r.try_get("source_service")?,
        })
    })
    .collect::<Result<Vec<_>, _>>()?;
    Ok(v1::ComplaintView {
        complaint_id: row.try_get("complaint_id")?,
        number: row.try_get("number")?,
        details: Some(details),
        class: class_number(&class),
        status: row.try_get("status")?,
        department_id: row
            .try_get::<Option<String>, _>("department_id")?
            .unwrap_or_default(),
        assignee_id: row
            .try_get::<Option<String>, _>("assignee_id")?
            .unwrap_or_default(),
        overdue: row.try_get("overdue")?,
        promises: ack.promises,
        confirmed: row.try_get("confirmed")?,
        timeline,
        classification_reasons: ack.classification_reasons,
        guidance: ack.guidance,
        received_at: Some(ts(row.try_get("received_at")?)),
        satisfaction: row.try_get("satisfaction")?,
    })
}

fn class_number(class: &str) -> i32 {
    v1::Class::from_str_name(&format!("CLASS_{class}")).unwrap_or(v1::Class::Unspecified) as i32
}

/// Largest page `ListComplaints` returns.
pub const MAX_PAGE: u32 = 200;

/// `ListComplaints`: newest first, filtered, keyset-paginated on `(received_at, complaint_id)`
/// so page 1,000 costs what page 1 costs.
pub async fn list(
    pool: &PgPool,
    req: &v1::ListComplaintsRequest,
) -> Result<v1::ListComplaintsResponse, Error> {
    let page = req.page.clone().unwrap_or_default();
    let size = match page.page_size {
        0 => 50,
        n => n.min(MAX_PAGE),
    } as i64;
    let cursor = if page.page_token.is_empty() {
        None
    } else {
        Some(parse_token(&page.page_token)?)
    };
    let class = match v1::Class::try_from(req.class) {
        Ok(v1::Class::Unspecified) => None,
        Ok(c) => Some(c.as_str_name().trim_start_matches("CLASS_").to_owned()),
        Err(_) => return Err(Error::invalid("class", "unknown class")),
    };
    let channel = match v1::Channel::try_from(req.channel) {
        Ok(v1::Channel::Unspecified) => None,
        Ok(c) => Some(
            c.as_str_name()
                .trim_start_matches("CHANNEL_")
                .to_ascii_lowercase(),
        ),
        Err(_) => return Err(Error::invalid("channel", "unknown channel")),
    };
    let time =
        |t: &Option<prost_types::Timestamp>, field: &str| -> Result<Option<DateTime<Utc>>, Error> {
            t.as_ref()
                .map(|t| {
                    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
                        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
                })
                .transpose()
        };
    let from = time(&req.received_from, "received_from")?;
    let to = time(&req.received_to, "received_to")?;
    // Only the filters given become predicates, so each one can use its index and the cursor
    // is an index condition: page 1,000 reads what page 1 reads.
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "SELECT complaint_id, number, details, acknowledgement, class, status, channel,
                department_id, assignee_id, overdue, received_at, category
         FROM complaints WHERE true",
    );
    if !req.status.is_empty() {
        q.push(" AND status = ").push_bind(&req.status);
    }
    if let Some(class) = class {
        q.push(" AND class = ").push_bind(class);
    }
    if !req.department_id.is_empty() {
        q.push(" AND department_id = ")
            .push_bind(&req.department_id);
    }
    if let Some(channel) = channel {
        q.push(" AND channel = ").push_bind(channel);
    }
    match req.overdue {
        Some(true) => {
            q.push(" AND overdue");
        }
        Some(false) => {
            q.push(" AND NOT overdue");
        }
        None => {}
    }
    if let Some(from) = from {
        q.push(" AND received_at >= ").push_bind(from);
    }
    if let Some(to) = to {
        q.push(" AND received_at < ").push_bind(to);
    }
    if let Some((at, id)) = &cursor {
        q.push(" AND (received_at, complaint_id) < (")
            .push_bind(*at)
            .push(", ")
            .push_bind(id.clone())
            .push(")");
    }
    q.push(" ORDER BY received_at DESC, complaint_id DESC LIMIT ")
        .push_bind(size + 1);
    let rows = q.build().fetch_all(pool).await?;
    let more = rows.len() as i64 > size;
    let mut complaints = Vec::with_capacity(rows.len());
    for r in rows.iter().take(size as usize) {
        let details = v1::ComplaintDetails::decode(r.try_get::<Vec<u8>, _>("details")?.as_slice())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let ack =
            v1::Acknowledgement::decode(r.try_get::<Vec<u8>, _>("acknowledgement")?.as_slice())
                .map_err(|e| Error::Internal(e.to_string()))?;
        let class: String = r.try_get("class")?;
        let channel: String = r.try_get("channel")?;
        complaints.push(v1::ComplaintSummary {
            complaint_id: r.try_get("complaint_id")?,
            number: r.try_get("number")?,
            class: class_number(&class),
            status: r.try_get("status")?,
            channel: v1::Channel::from_str_name(&format!(
                "CHANNEL_{}",
                channel.to_ascii_uppercase()
            ))
            .unwrap_or(v1::Channel::Unspecified) as i32,
            customer_name: details
                .customer
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            department_id: r
                .try_get::<Option<String>, _>("department_id")?
                .unwrap_or_default(),
            assignee_id: r
                .try_get::<Option<String>, _>("assignee_id")?
                .unwrap_or_default(),
            overdue: r.try_get("overdue")?,
            received_at: Some(ts(r.try_get("received_at")?)),
            completion_due: ack.promises.and_then(|p| p.completion_due),
            category: r.try_get("category")?,
            description_excerpt: details.description.chars().take(80).collect(),
        });
    }
    let next_page_token = match (more, rows.get(size as usize - 1)) {
        (true, Some(last)) => {
            let at: DateTime<Utc> = last.try_get("received_at")?;
            let id: String = last.try_get("complaint_id")?;
            redress_platform::pagination::token(at, &id)
        }
        _ => String::new(),
    };
    Ok(v1::ListComplaintsResponse {
        complaints,
        next_page_token,
    })
}

fn parse_token(token: &str) -> Result<(DateTime<Utc>, String), Error> {
    redress_platform::pagination::parse(token)
        .ok_or_else(|| Error::invalid("page.page_token", "is not a token this service issued"))
}
