//! Intake's errors and their one mapping to gRPC status codes.

use redress_proto::v1;
use tonic::Status;

/// Everything an intake operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; each violation names its field. Nothing was changed.
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<v1::FieldViolation>),
    #[error("complaint {0} not found")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Not possible in the complaint's current stage; nothing was changed.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox: {0}")]
    Outbox(#[from] redress_platform::outbox::AppendError),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, reason: &str) -> Self {
        Error::Invalid(vec![v1::FieldViolation {
            field: field.to_owned(),
            reason: reason.to_owned(),
        }])
    }
}

/// `field: reason; field: reason` — the form both doors report violations in.
pub fn describe(violations: &[v1::FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
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
