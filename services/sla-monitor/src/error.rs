//! The SLA monitor's errors and their one mapping to gRPC status codes.

use redress_proto::v1;
use tonic::Status;

/// Everything an SLA monitor operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; the violation names its field. Nothing was changed.
    #[error("invalid request: {}: {}", .0.field, .0.reason)]
    Invalid(v1::FieldViolation),
    #[error("{0} not found")]
    NotFound(String),
    /// The clock is not in a state the request applies to; names the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox: {0}")]
    Outbox(#[from] redress_platform::outbox::AppendError),
}

impl Error {
    pub fn invalid(field: &str, reason: &str) -> Self {
        Error::Invalid(v1::FieldViolation {
            field: field.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::Db(_) | Error::Outbox(_) => {
                tracing::error!(error = %e, "storage failure");
                Status::unavailable("storage temporarily unavailable; retry")
            }
        }
    }
}

impl From<redress_platform::request::InvalidField> for Error {
    fn from(e: redress_platform::request::InvalidField) -> Self {
        Error::invalid(e.field, &e.reason)
    }
}
