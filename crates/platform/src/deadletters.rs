//! `DeadLetterService`: every service's dead letters, listed, shown and replayed on request —
//! served by the platform next to each service's own gRPC API, on its own schema. The replay
//! itself is done by the consumer that gave up on the message ([`crate::consumer::Replayer`]).

use chrono::{DateTime, Utc};
use redress_proto::v1::{self, dead_letter_service_server::DeadLetterService};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tonic::{Request, Response, Status};

use crate::auth::{self, Role};

/// The gRPC service over one schema's dead letters.
pub struct DeadLetters {
    pub pool: PgPool,
}

const COLUMNS: &str = "consumer, message_id, subject, reason, deliveries, created_at, payload,
    headers, replay_requested_at, replay_requested_by, replayed_at, replay_error";

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn to_proto(r: &PgRow, whole: bool) -> Result<v1::DeadLetter, sqlx::Error> {
    let opt = |c: &str| -> Result<Option<prost_types::Timestamp>, sqlx::Error> {
        Ok(r.try_get::<Option<DateTime<Utc>>, _>(c)?.map(ts))
    };
    let headers: serde_json::Value = r.try_get("headers")?;
    Ok(v1::DeadLetter {
        consumer: r.try_get("consumer")?,
        message_id: r.try_get("message_id")?,
        subject: r.try_get("subject")?,
        reason: r.try_get("reason")?,
        deliveries: r.try_get("deliveries")?,
        created_at: Some(ts(r.try_get("created_at")?)),
        payload: if whole {
            r.try_get("payload")?
        } else {
            Vec::new()
        },
        headers: if whole {
            headers
                .as_object()
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Default::default()
        },
        replay_requested_at: opt("replay_requested_at")?,
        replay_requested_by: r.try_get("replay_requested_by")?,
        replayed_at: opt("replayed_at")?,
        replay_error: r.try_get("replay_error")?,
    })
}

fn internal(e: sqlx::Error) -> Status {
    tracing::error!(error = %e, "dead letters");
    Status::unavailable("the database did not answer; try again")
}

fn named(consumer: &str, message_id: &str) -> Result<(), Status> {
    if consumer.trim().is_empty() {
        return Err(Status::invalid_argument("consumer: is required"));
    }
    if message_id.trim().is_empty() {
        return Err(Status::invalid_argument("message_id: is required"));
    }
    Ok(())
}

impl DeadLetters {
    async fn get(&self, consumer: &str, message_id: &str) -> Result<v1::DeadLetter, Status> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE consumer = $1 AND message_id = $2"
        )))
        .bind(consumer)
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            Status::not_found(format!(
                "no dead letter {message_id} of consumer {consumer}"
            ))
        })?;
        to_proto(&row, true).map_err(internal)
    }
}

#[tonic::async_trait]
impl DeadLetterService for DeadLetters {
    async fn list_dead_letters(
        &self,
        req: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        let r = req.into_inner();
        let limit = i64::from(match r.limit {
            0 => 100,
            n => n.min(1_000),
        });
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM dead_letters
             WHERE ($1 = '' OR consumer = $1) AND ($2 OR replayed_at IS NULL)
             ORDER BY created_at DESC, message_id LIMIT $3"
        )))
        .bind(r.consumer.trim())
        .bind(r.include_replayed)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let dead_letters = rows
            .iter()
            .map(|r| to_proto(r, false))
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        Ok(Response::new(v1::ListDeadLettersResponse { dead_letters }))
    }

    async fn get_dead_letter(
        &self,
        req: Request<v1::GetDeadLetterRequest>,
    ) -> Result<Response<v1::DeadLetter>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        let r = req.into_inner();
        named(&r.consumer, &r.message_id)?;
        Ok(Response::new(self.get(&r.consumer, &r.message_id).await?))
    }

    async fn replay_dead_letter(
        &self,
        req: Request<v1::ReplayDeadLetterRequest>,
    ) -> Result<Response<v1::ReplayDeadLetterResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require(&who, &[Role::Operator])?;
        let r = req.into_inner();
        named(&r.consumer, &r.message_id)?;
        // Already replayed: nothing to do (the message was applied once).
        sqlx::query(
            "UPDATE dead_letters SET replay_requested_at = COALESCE(replay_requested_at, now()),
                replay_requested_by = $3
             WHERE consumer = $1 AND message_id = $2 AND replayed_at IS NULL",
        )
        .bind(&r.consumer)
        .bind(&r.message_id)
        .bind(&who.actor_id)
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        let dead_letter = self.get(&r.consumer, &r.message_id).await?;
        tracing::info!(consumer = %r.consumer, message_id = %r.message_id, by = %who.actor_id,
            "dead letter replay requested");
        Ok(Response::new(v1::ReplayDeadLetterResponse {
            dead_letter: Some(dead_letter),
        }))
    }
}
