//! Who pays, and what counts (DOMAIN §7, §9): the accountability ledger's decisions as plain
//! functions. The escalation service's ledger only stores what these decide.
//!
//! - A missed limit's record falls on the person the SLA monitor named; a revisit nobody
//!   claimed falls on the complaint centre's manager ("A missed revisit is charged to the
//!   revisit's owner (the agent who claimed it, else the complaint centre's manager)"); any
//!   other record without a name is nobody's.
//! - A repeat complaint's doubling falls on whoever carried the class fine: the responsible
//!   person the repeat names, else the one named on the original — never the handler by
//!   default ("the handler is fined only when named").
//! - The doubling is booked at once when the original missed a limit ("applied automatically
//!   when the original missed a limit"), otherwise on a manager's neglect finding.
//! - Complaint fines and overdue records count toward suspension; a doubling or a day of late
//!   acceptance is no new complaint (§7 "three or more complaints against one person in a
//!   month", §9 "the overdue class-D record counts").

use crate::sla::ClockKind;

/// Why a ledger entry was booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The class fine of a complaint the person is responsible for.
    Complaint,
    /// A limit missed without a special reason: a class-D record (DOMAIN §4).
    Overdue,
    /// The extra that doubles the original's fine after a repeat complaint.
    RepeatDoubling,
    /// One started day of late acceptance.
    LateAcceptance,
}

impl Reason {
    /// The stored name.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Complaint => "complaint",
            Reason::Overdue => "overdue",
            Reason::RepeatDoubling => "repeat_doubling",
            Reason::LateAcceptance => "late_acceptance",
        }
    }

    /// Whether the entry is a complaint against the person, counted toward suspension.
    pub fn counts_toward_suspension(self) -> bool {
        matches!(self, Reason::Complaint | Reason::Overdue)
    }
}

/// Who a missed limit's record falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer<'a> {
    /// The person the record names.
    Named(&'a str),
    /// The complaint centre's manager (a revisit nobody claimed).
    CentreManager,
    /// Nobody: the record is not booked.
    Nobody,
}

/// Who pays for a missed `clock` whose record names `named` (empty when nobody was named).
pub fn missed_limit_payer(named: &str, clock: Option<ClockKind>) -> Payer<'_> {
    if !named.is_empty() {
        Payer::Named(named)
    } else if clock == Some(ClockKind::Revisit) {
        Payer::CentreManager
    } else {
        Payer::Nobody
    }
}

/// Who bears a repeat complaint's doubling: the responsible person the repeat names, else the
/// one named on the original; empty when neither names anybody (then nothing is doubled).
pub fn doubling_payer<'a>(named_by_repeat: &'a str, named_on_original: &'a str) -> &'a str {
    if named_by_repeat.is_empty() {
        named_on_original
    } else {
        named_by_repeat
    }
}

/// Whether a repeat complaint's doubling is booked at once: the original missed a limit and
/// somebody bears it.
pub fn doubles_at_once(original_missed_a_limit: bool, payer: &str) -> bool {
    original_missed_a_limit && !payer.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_revisit_nobody_claimed_is_the_centre_managers_and_others_need_a_name() {
        assert_eq!(
            missed_limit_payer("agent-1", Some(ClockKind::Revisit)),
            Payer::Named("agent-1")
        );
        assert_eq!(
            missed_limit_payer("", Some(ClockKind::Revisit)),
            Payer::CentreManager
        );
        assert_eq!(
            missed_limit_payer("", Some(ClockKind::Completion)),
            Payer::Nobody
        );
        assert_eq!(missed_limit_payer("", None), Payer::Nobody);
        assert_eq!(
            missed_limit_payer("handler-1", Some(ClockKind::Acceptance)),
            Payer::Named("handler-1")
        );
    }

    #[test]
    fn the_doubling_falls_on_the_named_person_never_the_handler_by_default() {
        assert_eq!(doubling_payer("resp-2", "resp-1"), "resp-2");
        assert_eq!(doubling_payer("", "resp-1"), "resp-1");
        // Nobody named anywhere: nobody pays (the handler is not a default).
        assert_eq!(doubling_payer("", ""), "");
    }

    #[test]
    fn doubling_is_automatic_only_after_a_missed_limit_and_with_a_payer() {
        assert!(doubles_at_once(true, "resp-1"));
        assert!(!doubles_at_once(false, "resp-1"));
        assert!(!doubles_at_once(true, ""));
    }

    #[test]
    fn only_complaints_and_overdue_records_count_toward_suspension() {
        assert!(Reason::Complaint.counts_toward_suspension());
        assert!(Reason::Overdue.counts_toward_suspension());
        assert!(!Reason::RepeatDoubling.counts_toward_suspension());
        assert!(!Reason::LateAcceptance.counts_toward_suspension());
        assert_eq!(Reason::RepeatDoubling.code(), "repeat_doubling");
    }
}
