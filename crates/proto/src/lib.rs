//! Generated protobuf messages and gRPC clients and servers for the Redress contracts
//! (`proto/redress/complaints/v1/*.proto`, package `redress.complaints.v1`).
//!
//! - [`v1`]: the messages, the event envelope [`v1::Event`] with its payloads, and one client
//!   and server module per service (`v1::intake_service_server`, `v1::intake_service_client`,
//!   and likewise for routing, SLA monitor, escalation and revisit).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for `tonic-reflection`.
//! - [`convert`]: domain vocabularies (class, clock, customer type…) to and from their wire
//!   enums, declared once ([`Wire`]).
//! - [`json`]: events in the proto3 JSON mapping, personal data masked, for the board's gateway.
//! - [`catalogue`]: the AsyncAPI document of every subject, generated from the contracts.
//! - [`org`]: the organisation file (departments, staff, routing rules) routing seeds from and
//!   `redress org` applies and exports.
//! - [`prost`], [`prost_types`] and [`tonic`] are re-exported so the whole workspace builds
//!   against the same versions.
//!
//! Every event payload has a dotted kind (`complaint.received`, `sla.overdue`, …), given by
//! [`v1::event::Payload::kind`]: the suffix of the NATS subject it is published on.

pub mod catalogue;
pub mod convert;
mod describe;
pub mod json;
pub mod org;
mod personal;

pub use convert::Wire;
pub use prost;
pub use prost_types;
pub use tonic;

/// Version of the event schema written into [`v1::Event::schema_version`].
pub const SCHEMA_VERSION: u32 = 1;

/// The encoded `google.protobuf.FileDescriptorSet` of all contracts (with their imports and
/// comments), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/redress_descriptor.bin"));

/// Package `redress.complaints.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    rustdoc::all
)]
pub mod v1 {
    tonic::include_proto!("redress.complaints.v1");
}

impl v1::event::Payload {
    /// The event's kind: a dotted `group.event` pair, used as the suffix of the NATS subject the
    /// event is published on and as the `kind` of timeline entries.
    ///
    /// The match is exhaustive on purpose: a new event type does not compile until it has a kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        use v1::event::Payload as P;
        match self {
            P::ComplaintReceived(_) => "complaint.received",
            P::ComplaintRejected(_) => "complaint.rejected",
            P::ComplaintConfirmed(_) => "complaint.confirmed",
            P::ComplaintClassified(_) => "complaint.classified",
            P::ComplaintReclassified(_) => "complaint.reclassified",
            P::ComplaintRouted(_) => "complaint.routed",
            P::ComplaintAssigned(_) => "complaint.assigned",
            P::AcceptedByDepartment(_) => "complaint.accepted",
            P::ValidityDecided(_) => "complaint.validity_decided",
            P::CauseRecorded(_) => "complaint.cause_recorded",
            P::FeedbackGiven(_) => "complaint.feedback_given",
            P::IntermediateResultReported(_) => "complaint.intermediate_result_reported",
            P::ResolutionProposed(_) => "complaint.resolution_proposed",
            P::CustomerAccepted(_) => "complaint.customer_accepted",
            P::CustomerRejected(_) => "complaint.customer_rejected",
            P::ReStudyRequested(_) => "complaint.restudy_requested",
            P::EscalationRequested(_) => "complaint.escalation_requested",
            P::Resolved(_) => "complaint.resolved",
            P::Reopened(_) => "complaint.reopened",
            P::Closed(_) => "complaint.closed",
            P::SubTaskCreated(_) => "complaint.subtask_created",
            P::SubTaskCompleted(_) => "complaint.subtask_completed",
            P::SlaWarning(_) => "sla.warning",
            P::SlaOverdue(_) => "sla.overdue",
            P::SpecialReasonRecorded(_) => "sla.special_reason_recorded",
            P::EscalationRaised(_) => "escalation.raised",
            P::EscalationAcknowledged(_) => "escalation.acknowledged",
            P::EscalationDecided(_) => "escalation.decided",
            P::NotificationSent(_) => "notification.sent",
            P::NotificationDelivered(_) => "notification.delivered",
            P::NotificationFailed(_) => "notification.failed",
            P::RevisitScheduled(_) => "revisit.scheduled",
            P::RevisitCompleted(_) => "revisit.completed",
            P::RepeatComplaint(_) => "complaint.repeat",
            P::SatisfactionReported(_) => "complaint.satisfaction_reported",
            P::AccountabilityRecorded(_) => "accountability.recorded",
            P::StaffSuspended(_) => "staff.suspended",
            P::DepartmentUpserted(_) => "department.upserted",
            P::StaffUpserted(_) => "staff.upserted",
            P::RevisitClaimed(_) => "revisit.claimed",
            P::RevisitSignedOff(_) => "revisit.signed_off",
            P::BusinessVolumeEntered(_) => "department.business_volume_entered",
        }
    }
}

impl v1::Event {
    /// The kind of the event's payload (see [`v1::event::Payload::kind`]); `None` when the
    /// payload is missing, e.g. an event from a newer schema whose payload this build does not
    /// know.
    #[must_use]
    pub fn kind(&self) -> Option<&'static str> {
        self.payload.as_ref().map(v1::event::Payload::kind)
    }
}

/// Every event kind, in the order of the `payload` oneof: for consumers that subscribe to all
/// events but a few (the subjects are `<prefix>.events.<kind>`).
#[must_use]
pub fn every_kind() -> Vec<&'static str> {
    all_payloads()
        .iter()
        .map(v1::event::Payload::kind)
        .collect()
}

/// Every event kind but those in `skip`: the filter of a consumer that takes almost everything.
#[must_use]
pub fn every_kind_except(skip: &[&str]) -> Vec<&'static str> {
    every_kind()
        .into_iter()
        .filter(|k| !skip.contains(k))
        .collect()
}

/// One value of every payload variant. The compiler cannot check that this list is
/// complete; `every_payload_variant_is_listed` compares its length with the `payload` oneof
/// in the descriptors.
fn all_payloads() -> Vec<v1::event::Payload> {
    use v1::event::Payload;
    vec![
        Payload::ComplaintReceived(Default::default()),
        Payload::ComplaintRejected(Default::default()),
        Payload::ComplaintConfirmed(Default::default()),
        Payload::ComplaintClassified(Default::default()),
        Payload::ComplaintReclassified(Default::default()),
        Payload::ComplaintRouted(Default::default()),
        Payload::ComplaintAssigned(Default::default()),
        Payload::AcceptedByDepartment(Default::default()),
        Payload::ValidityDecided(Default::default()),
        Payload::CauseRecorded(Default::default()),
        Payload::FeedbackGiven(Default::default()),
        Payload::IntermediateResultReported(Default::default()),
        Payload::ResolutionProposed(Default::default()),
        Payload::CustomerAccepted(Default::default()),
        Payload::CustomerRejected(Default::default()),
        Payload::ReStudyRequested(Default::default()),
        Payload::EscalationRequested(Default::default()),
        Payload::Resolved(Default::default()),
        Payload::Reopened(Default::default()),
        Payload::Closed(Default::default()),
        Payload::SubTaskCreated(Default::default()),
        Payload::SubTaskCompleted(Default::default()),
        Payload::SlaWarning(Default::default()),
        Payload::SlaOverdue(Default::default()),
        Payload::SpecialReasonRecorded(Default::default()),
        Payload::EscalationRaised(Default::default()),
        Payload::EscalationAcknowledged(Default::default()),
        Payload::EscalationDecided(Default::default()),
        Payload::NotificationSent(Default::default()),
        Payload::NotificationDelivered(Default::default()),
        Payload::NotificationFailed(Default::default()),
        Payload::RevisitScheduled(Default::default()),
        Payload::RevisitCompleted(Default::default()),
        Payload::RepeatComplaint(Default::default()),
        Payload::SatisfactionReported(Default::default()),
        Payload::AccountabilityRecorded(Default::default()),
        Payload::StaffSuspended(Default::default()),
        Payload::DepartmentUpserted(Default::default()),
        Payload::StaffUpserted(Default::default()),
        Payload::RevisitClaimed(Default::default()),
        Payload::RevisitSignedOff(Default::default()),
        Payload::BusinessVolumeEntered(Default::default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::all_payloads;
    use super::v1::{self, event::Payload};
    use prost::Message;
    use std::collections::HashSet;

    /// Number of fields in the `Event.payload` oneof, read from the descriptor set, so the
    /// list above cannot silently miss a variant.
    fn oneof_field_count() -> usize {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let event = fds
            .file
            .iter()
            .filter(|f| f.package() == "redress.complaints.v1")
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == "Event")
            .expect("Event message in descriptors");
        let payload_index = event
            .oneof_decl
            .iter()
            .position(|o| o.name() == "payload")
            .expect("payload oneof") as i32;
        event
            .field
            .iter()
            .filter(|f| f.oneof_index == Some(payload_index))
            .count()
    }

    fn is_valid_kind(kind: &str) -> bool {
        let Some((group, name)) = kind.split_once('.') else {
            return false;
        };
        let part_ok =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        part_ok(group) && part_ok(name)
    }

    #[test]
    fn every_payload_variant_is_listed() {
        assert_eq!(all_payloads().len(), oneof_field_count());
    }

    #[test]
    fn kinds_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for payload in all_payloads() {
            let kind = payload.kind();
            assert!(
                is_valid_kind(kind),
                "kind {kind:?} must match ^[a-z_]+\\.[a-z_]+$"
            );
            assert!(seen.insert(kind), "kind {kind:?} is used twice");
        }
    }

    #[test]
    fn kind_checker_rejects_bad_kinds() {
        for bad in [
            "complaint",
            "Complaint.received",
            "a.b.c",
            ".x",
            "x.",
            "sla-x.y",
            "a.b1",
        ] {
            assert!(!is_valid_kind(bad), "{bad:?} should be rejected");
        }
        assert!(is_valid_kind("complaint.validity_decided"));
    }

    #[test]
    fn event_kind_follows_payload() {
        let mut event = v1::Event::default();
        assert_eq!(event.kind(), None);
        event.payload = Some(Payload::SlaOverdue(v1::SlaOverdue::default()));
        assert_eq!(event.kind(), Some("sla.overdue"));
    }

    #[test]
    fn event_round_trips_through_protobuf() {
        let event = v1::Event {
            event_id: "evt_1".into(),
            complaint_id: "cmp_1".into(),
            schema_version: super::SCHEMA_VERSION,
            payload: Some(Payload::ComplaintRejected(v1::ComplaintRejected {
                violations: vec![v1::FieldViolation {
                    field: "details.customer.phone".into(),
                    reason: "required".into(),
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        let decoded = v1::Event::decode(event.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, event);
        assert_eq!(decoded.kind(), Some("complaint.rejected"));
    }

    #[test]
    fn descriptor_set_holds_every_service() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let services: HashSet<_> = fds
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
            .collect();
        for name in [
            "IntakeService",
            "RoutingService",
            "SlaMonitorService",
            "EscalationService",
            "RevisitService",
            "DeadLetterService",
        ] {
            assert!(services.contains(name), "{name} missing from descriptors");
        }
    }
}
