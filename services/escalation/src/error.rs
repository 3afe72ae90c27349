//! Escalation's errors and their one mapping to gRPC status codes.

use tonic::Status;

/// Everything an escalation command or query can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; the message names the field. Nothing was changed.
    #[error("invalid request: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("escalation {0} not found")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// An illegal state change; the message names the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox: {0}")]
    Outbox(#[from] redress_platform::outbox::AppendError),
}

impl Error {
    pub fn invalid(field: &str, reason: &str) -> Self {
        Error::Invalid {
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { .. } => Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::Db(_) | Error::Outbox(_) => {
                tracing::error!(error = %e, "storage failure");
                Status::unavailable("storage temporarily unavailable; retry")
            }
        }
    }
}
