//! Routing's errors and their one mapping to gRPC status codes.

use redress_domain::handling::Refusal;
use tonic::Status;

/// Everything a routing operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; names the field. Nothing was changed.
    #[error("invalid request: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// The command is illegal in the complaint's current stage (named in the message).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// Another precondition failed (e.g. the department has no available handler).
    #[error("{0}")]
    Precondition(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox: {0}")]
    Outbox(#[from] redress_platform::outbox::AppendError),
    #[error("internal: {0}")]
    Internal(String),
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
            Error::Refused(_) | Error::Precondition(_) => {
                Status::failed_precondition(e.to_string())
            }
            Error::Db(_) | Error::Outbox(_) => {
                tracing::error!(error = %e, "storage failure");
                Status::unavailable("storage temporarily unavailable; retry")
            }
            Error::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<redress_platform::request::InvalidField> for Error {
    fn from(e: redress_platform::request::InvalidField) -> Self {
        Error::invalid(e.field, &e.reason)
    }
}
