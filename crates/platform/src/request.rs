//! Reading a request's ids, one way in every service.

use redress_domain::ComplaintId;

/// A request field that is not valid: which one, and why. Each service turns it into its own
/// `InvalidArgument` error naming the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

/// Parses a request's `complaint_id` and names the complaint on the current span (the gRPC
/// call's), so every log line the call writes carries it beside the trace id.
pub fn complaint_id(raw: &str) -> Result<String, InvalidField> {
    let id = ComplaintId::parse(raw)
        .map_err(|e| InvalidField {
            field: "complaint_id",
            reason: e.to_string(),
        })?
        .to_string();
    tracing::Span::current().record("complaint_id", id.as_str());
    Ok(id)
}
