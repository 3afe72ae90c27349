//! The one error every service's requests and handlers fail with, and its one mapping to a gRPC
//! status and to a consumer's outcome (issue 16).
//!
//! Five services used to carry five enums with the same meaning in different shapes (a list of
//! violations in one, a single one in another, `field`/`reason` elsewhere), each mapped to
//! `tonic::Status` by hand and to the consumer's [`HandleError`] by `anyhow!("{e}")`, which lost
//! the source. Here the meaning is fixed once:
//!
//! | variant | gRPC | in a consumer |
//! | --- | --- | --- |
//! | [`Error::Invalid`] (names each field) | `INVALID_ARGUMENT` | dead letter at once |
//! | [`Error::NotFound`] | `NOT_FOUND` | retried (the event it waits for may come) |
//! | [`Error::PermissionDenied`] | `PERMISSION_DENIED` | retried |
//! | [`Error::FailedPrecondition`] (a [`Refusal`] too) | `FAILED_PRECONDITION` | retried |
//! | [`Error::AlreadyExists`] | `ALREADY_EXISTS` | retried |
//! | [`Error::Db`], [`Error::Outbox`] | `UNAVAILABLE` ("retry") | retried |
//! | [`Error::Internal`] | `INTERNAL` (details only in the log) | retried |
//!
//! A consumer retries all but a malformed message: what it waits for may arrive, and what never
//! will is dead-lettered after the delivery limit with this error as the reason.

use redress_domain::handling::Refusal;
use redress_proto::v1;
use tonic::Status;

use crate::consumer::HandleError;
use crate::outbox::AppendError;
use crate::request::InvalidField;

/// Everything a service's request or event handling can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; each violation names its field. Nothing was changed.
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<v1::FieldViolation>),
    /// What the request names does not exist (the message says what: `complaint cmp_…`).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may not do this here; the message says why.
    #[error("{0}")]
    PermissionDenied(String),
    /// Not possible in the current state (the message names it); nothing was changed.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Someone else holds it (a revisit another agent claimed).
    #[error("{0}")]
    AlreadyExists(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox: {0}")]
    Outbox(#[from] AppendError),
    /// A broken invariant (stored data this build cannot read); details go to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// One invalid field, named.
    pub fn invalid(field: &str, reason: &str) -> Self {
        Error::Invalid(vec![v1::FieldViolation {
            field: field.to_owned(),
            reason: reason.to_owned(),
        }])
    }
}

/// `field: reason; field: reason` — how violations are reported, on every door.
pub fn describe(violations: &[v1::FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<InvalidField> for Error {
    fn from(e: InvalidField) -> Self {
        Error::invalid(e.field, &e.reason)
    }
}

/// A handling command illegal in the complaint's stage; the refusal names the stage.
impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::FailedPrecondition(r.to_string())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::AlreadyExists(m) => Status::already_exists(m),
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

impl From<Error> for HandleError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => HandleError::Permanent(e.to_string()),
            other => HandleError::Transient(anyhow::Error::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_status_and_names_the_field() {
        let s = Status::from(Error::invalid("details.demand", "is required"));
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "invalid request: details.demand: is required");
        let s = Status::from(Error::NotFound("complaint cmp_1".into()));
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::NotFound, "complaint cmp_1 not found")
        );
        let s = Status::from(Error::Db(sqlx::Error::PoolTimedOut));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        let s = Status::from(Error::Internal("stored stage zz".into()));
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::Internal, "internal error")
        );
    }

    #[test]
    fn a_consumer_dead_letters_only_what_can_never_apply_and_keeps_the_source() {
        assert!(matches!(
            HandleError::from(Error::invalid("complaint_id", "empty")),
            HandleError::Permanent(m) if m.contains("complaint_id")
        ));
        let HandleError::Transient(e) = HandleError::from(Error::Db(sqlx::Error::PoolTimedOut))
        else {
            panic!("a database failure is retried");
        };
        assert!(matches!(e.downcast_ref::<Error>(), Some(Error::Db(_))));
    }
}
