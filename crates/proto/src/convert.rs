//! The one place where domain vocabularies meet their wire enums (issue 16).
//!
//! Each pair is declared once, variant by variant, so adding a value to either side fails to
//! compile here instead of silently falling through a hand-written `match` in some service.
//! What comes off the wire is a bare `i32` that may hold anything (an `UNSPECIFIED`, a value a
//! newer producer added), so that direction is fallible: [`Wire::from_wire`] gives `None` and the
//! caller decides whether that is a bad request, a dead letter or "not given".
//!
//! ```
//! use redress_domain::Class;
//! use redress_proto::{Wire, v1};
//!
//! assert_eq!(v1::Class::from(Class::B), v1::Class::B);
//! assert_eq!(Class::A.to_wire(), v1::Class::A as i32);
//! assert_eq!(Class::from_wire(v1::Class::D as i32), Some(Class::D));
//! assert_eq!(Class::from_wire(v1::Class::Unspecified as i32), None);
//! assert_eq!(Class::from_wire(99), None);
//! ```

use redress_domain::accountability::Reason;
use redress_domain::escalation::Trigger;
use redress_domain::revisit::RevisitKind;
use redress_domain::sla::{ClockKind, ClockState};
use redress_domain::{Class, CustomerType};

use crate::v1;

/// A domain vocabulary with a wire enum: to the `i32` a message field holds, and back.
pub trait Wire: Sized + Copy {
    /// The wire value of a message field.
    fn to_wire(self) -> i32;
    /// The domain value of a message field; `None` for `UNSPECIFIED` or a value this build does
    /// not know.
    fn from_wire(raw: i32) -> Option<Self>;
}

/// The wire value was `UNSPECIFIED` (or unknown): there is no domain value for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} is not given")]
pub struct Unspecified {
    /// Which vocabulary, in words (`class`, `clock`…).
    pub kind: &'static str,
}

macro_rules! wire_pairs {
    ($( $domain:ident <=> $wire:ident ($kind:literal) { $( $d:ident <=> $w:ident ),+ $(,)? } )+) => {$(
        impl From<$domain> for v1::$wire {
            fn from(value: $domain) -> Self {
                match value {
                    $( $domain::$d => v1::$wire::$w ),+
                }
            }
        }

        impl TryFrom<v1::$wire> for $domain {
            type Error = Unspecified;
            fn try_from(value: v1::$wire) -> Result<Self, Unspecified> {
                match value {
                    $( v1::$wire::$w => Ok($domain::$d), )+
                    #[allow(unreachable_patterns)]
                    _ => Err(Unspecified { kind: $kind }),
                }
            }
        }

        impl Wire for $domain {
            fn to_wire(self) -> i32 {
                v1::$wire::from(self) as i32
            }
            fn from_wire(raw: i32) -> Option<Self> {
                v1::$wire::try_from(raw).ok()?.try_into().ok()
            }
        }
    )+};
}

wire_pairs! {
    Class <=> Class ("class") { A <=> A, B <=> B, C <=> C, D <=> D }

    ClockKind <=> SlaClock ("clock") {
        Acceptance <=> Acceptance,
        FirstFeedback <=> FirstFeedback,
        Completion <=> Completion,
        IntermediateResult <=> IntermediateResult,
        Revisit <=> Revisit,
        Confirmation <=> Confirmation,
    }

    ClockState <=> ClockState ("clock state") {
        Running <=> Running,
        Warned <=> Warned,
        Overdue <=> Overdue,
        Met <=> Met,
        Stopped <=> Stopped,
    }

    RevisitKind <=> RevisitKind ("revisit kind") {
        DayAfterAcceptance <=> DayAfterAcceptance,
        AfterResolution <=> AfterResolution,
        AfterOnSiteService <=> AfterOnsiteService,
        WhileWaiting <=> WhileWaiting,
    }

    Trigger <=> EscalationTrigger ("escalation trigger") {
        SlaOverdue <=> SlaOverdue,
        UnresolvedAfterL1 <=> UnresolvedAfterL1,
        ClassAOverdue <=> ClassAOverdue,
        RejectedAgain <=> RejectedAgain,
        CannotSettle <=> CannotSettle,
        GroupRisk <=> GroupRisk,
        MediaRisk <=> MediaRisk,
        RepeatComplaint <=> RepeatComplaint,
        ThreateningCustomer <=> ThreateningCustomer,
        Unacknowledged <=> Unacknowledged,
        VentingAnger <=> VentingAnger,
        BeyondAuthority <=> BeyondAuthority,
        ImportantEvent <=> ImportantEvent,
    }

    Reason <=> AccountabilityReason ("accountability reason") {
        Complaint <=> Complaint,
        Overdue <=> Overdue,
        RepeatDoubling <=> RepeatDoubling,
        LateAcceptance <=> LateAcceptance,
    }

    CustomerType <=> CustomerType ("customer type") {
        Rational <=> Rational,
        Emotional <=> Emotional,
        HardLine <=> HardLine,
        Agitated <=> Agitated,
        Pragmatic <=> Pragmatic,
        Talkative <=> Talkative,
        Venting <=> Venting,
        RightsSeeking <=> RightsSeeking,
        RestrainedAnger <=> RestrainedAnger,
        VentingAnger <=> VentingAnger,
        Threatening <=> Threatening,
    }
}

/// A stored class letter (`A`…`D`) as its wire value; a letter that is not a class (an empty
/// column for a complaint not yet classified) is `UNSPECIFIED`, never a guess.
pub fn class_letter_to_wire(letter: &str) -> i32 {
    Class::parse(letter).map_or(v1::Class::Unspecified as i32, Wire::to_wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every domain value goes to the wire and comes back as itself, and no two share a wire
    /// value.
    fn round_trips<T: Wire + PartialEq + std::fmt::Debug>(all: &[T]) {
        let mut seen = std::collections::HashSet::new();
        for &v in all {
            let raw = v.to_wire();
            assert_ne!(raw, 0, "{v:?} is sent as UNSPECIFIED");
            assert!(seen.insert(raw), "{v:?} shares wire value {raw}");
            assert_eq!(T::from_wire(raw), Some(v));
        }
        assert_eq!(T::from_wire(0), None, "UNSPECIFIED has no domain value");
        assert_eq!(T::from_wire(i32::MAX), None, "an unknown value has none");
    }

    #[test]
    fn every_vocabulary_round_trips() {
        round_trips(Class::ALL);
        round_trips(&ClockKind::ALL);
        round_trips(&[
            ClockState::Running,
            ClockState::Warned,
            ClockState::Overdue,
            ClockState::Met,
            ClockState::Stopped,
        ]);
        round_trips(&[
            RevisitKind::DayAfterAcceptance,
            RevisitKind::AfterResolution,
            RevisitKind::AfterOnSiteService,
            RevisitKind::WhileWaiting,
        ]);
        round_trips(CustomerType::ALL);
        round_trips(&[
            Reason::Complaint,
            Reason::Overdue,
            Reason::RepeatDoubling,
            Reason::LateAcceptance,
        ]);
        round_trips(&[
            Trigger::SlaOverdue,
            Trigger::UnresolvedAfterL1,
            Trigger::ClassAOverdue,
            Trigger::RejectedAgain,
            Trigger::CannotSettle,
            Trigger::GroupRisk,
            Trigger::MediaRisk,
            Trigger::RepeatComplaint,
            Trigger::ThreateningCustomer,
            Trigger::Unacknowledged,
            Trigger::VentingAnger,
            Trigger::BeyondAuthority,
            Trigger::ImportantEvent,
        ]);
    }

    #[test]
    fn a_stored_letter_that_is_no_class_is_unspecified_not_c() {
        assert_eq!(class_letter_to_wire("B"), v1::Class::B as i32);
        assert_eq!(class_letter_to_wire(""), v1::Class::Unspecified as i32);
        assert_eq!(class_letter_to_wire("Z"), v1::Class::Unspecified as i32);
    }

    #[test]
    fn unspecified_is_refused_by_name() {
        let e = Class::try_from(v1::Class::Unspecified).unwrap_err();
        assert_eq!(e.to_string(), "class is not given");
    }
}
