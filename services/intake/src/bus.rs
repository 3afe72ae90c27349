//! The bus door: call-centre systems publish submissions to `<prefix>.intake.submit`.
//!
//! Same gate and same recording as gRPC `Submit`. A submission that cannot be accepted —
//! wrong content type, garbage bytes, unknown fields, invalid values — changes nothing but
//! produces one `complaint.rejected` event with the integrator's key (when it could be read)
//! and every reason, so the integrator learns what to fix. Rejection is an outcome, not a
//! failure: the message is acknowledged, never retried or dead-lettered.

use redress_platform::consumer::{HandleError, Handler, Incoming};
use redress_proto::v1::{self, event::Payload};
use sqlx::PgConnection;

use crate::error::Error;
use crate::recording::{Recorder, event};
use crate::submission::{self, Encoding, Violation};

/// Applies bus submissions.
pub struct BusDoor {
    pub recorder: Recorder,
}

impl BusDoor {
    async fn reject(
        &self,
        conn: &mut PgConnection,
        key: Option<v1::SubmissionKey>,
        violations: Vec<Violation>,
        msg: &Incoming<'_>,
        actor: &v1::Actor,
    ) -> Result<(), HandleError> {
        tracing::info!(message_id = %msg.message_id, reasons = %crate::error::describe(&violations), "submission rejected");
        msg.after_commit.defer(|| {
            metrics::counter!("redress_intake_rejected_total", "door" => "bus").increment(1);
        });
        let e = event(
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
        self.recorder.outbox.append(conn, &[e]).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for BusDoor {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
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
                return self.reject(conn, None, v, msg, &actor).await;
            }
            Err(v) => return self.reject(conn, None, vec![v], msg, &actor).await,
        };
        let actor = v1::Actor {
            id: details
                .key
                .as_ref()
                .map(|k| k.source_system.clone())
                .unwrap_or_default(),
            ..actor
        };
        let record =
            match submission::validate(&self.recorder.policy, &details, self.recorder.now()) {
                Ok(r) => r,
                Err(v) => return self.reject(conn, details.key.clone(), v, msg, &actor).await,
            };
        match self.recorder.record(conn, &details, record, &actor).await {
            Ok(ack) => {
                if !ack.duplicate {
                    msg.after_commit.defer(|| {
                        metrics::counter!("redress_intake_recorded_total", "door" => "bus")
                            .increment(1);
                    });
                }
                Ok(())
            }
            Err(Error::Invalid(v)) => self.reject(conn, details.key.clone(), v, msg, &actor).await,
            Err(e) => Err(HandleError::Transient(e.into())),
        }
    }
}
