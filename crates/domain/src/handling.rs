//! The business department's handling of one complaint as a state machine (DOMAIN §3, §5).
//!
//! The routing service keeps one [`Handling`] per complaint and changes it only through
//! [`Handling::apply`], which either returns the next handling and the [`Effect`]s to publish
//! (each effect is one event of `events.proto`) or a [`Refusal`] naming the current stage — and
//! then nothing changes. The stages:
//!
//! ```text
//! AwaitingConfirmation ─Route→ Routed ─Assign→ Assigned ─Accept→ Accepted
//! Accepted: DecideValidity, RecordCause, GiveFeedback, ReportIntermediate, CreateSubTask…
//! Accepted / ReStudy / Escalated / Reopened ─ProposeResolution→ ResolutionProposed
//! ResolutionProposed ─CustomerResponse(accepted)→ CustomerAccepted ─Resolve→ Resolved ─Close→ Closed
//! ResolutionProposed ─CustomerResponse(rejected)→ ReStudy, or Escalated once rejected
//!     `rejections_before_escalation` times ("customer keeps rejecting → reported upward")
//! Accepted / ResolutionProposed / ReStudy / Reopened ─DeclareCannotSettle→ Escalated
//! Resolved ─Reopen→ Reopened (works like Accepted)
//! ```

use std::fmt;

/// Where the handling stands. Fieldless so that tests can enumerate it; the facts gathered
/// along the way live in [`Handling`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Recorded but not yet confirmed by the customer: "routing waits until … the record is
    /// confirmed" (DOMAIN §1).
    AwaitingConfirmation,
    /// Passed to a business department; no handler yet.
    Routed,
    /// A handler is responsible; the department has not accepted it yet.
    Assigned,
    /// The department accepted it and is working on it.
    Accepted,
    /// A solution was proposed; waiting for the customer's answer.
    ResolutionProposed,
    /// The customer rejected the solution; the department re-studies it (DOMAIN §5).
    ReStudy,
    /// The customer accepted the solution; the improvement is being completed.
    CustomerAccepted,
    /// Escalation was requested to the general manager (DOMAIN §5).
    Escalated,
    /// The final result is on the handling sheet.
    Resolved,
    /// A resolved complaint was opened again; handled like an accepted one.
    Reopened,
    /// No more handling.
    Closed,
}

impl Stage {
    /// Every stage, for exhaustive tests and listings.
    pub const ALL: [Stage; 11] = [
        Stage::AwaitingConfirmation,
        Stage::Routed,
        Stage::Assigned,
        Stage::Accepted,
        Stage::ResolutionProposed,
        Stage::ReStudy,
        Stage::CustomerAccepted,
        Stage::Escalated,
        Stage::Resolved,
        Stage::Reopened,
        Stage::Closed,
    ];

    /// The lower_snake word used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AwaitingConfirmation => "awaiting_confirmation",
            Stage::Routed => "routed",
            Stage::Assigned => "assigned",
            Stage::Accepted => "accepted",
            Stage::ResolutionProposed => "resolution_proposed",
            Stage::ReStudy => "re_study",
            Stage::CustomerAccepted => "customer_accepted",
            Stage::Escalated => "escalated",
            Stage::Resolved => "resolved",
            Stage::Reopened => "reopened",
            Stage::Closed => "closed",
        }
    }

    /// Parses [`Stage::as_str`].
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the complaint counts as open work for its handler (load and queues).
    pub fn is_open(self) -> bool {
        !matches!(self, Stage::Resolved | Stage::Closed)
    }

    /// Stages in which the department works on the complaint (analysis, feedback, sub-tasks).
    fn is_working(self) -> bool {
        matches!(
            self,
            Stage::Accepted
                | Stage::ResolutionProposed
                | Stage::ReStudy
                | Stage::CustomerAccepted
                | Stage::Escalated
                | Stage::Reopened
        )
    }

    /// Stages with a handler (or after acceptance) in which the handler may be changed.
    fn has_handler(self) -> bool {
        self == Stage::Assigned || self.is_working()
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why escalation is requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscalationCause {
    /// "Customer keeps rejecting the solution → reported upward" (DOMAIN §5).
    RepeatedRejection,
    /// "If the department manager cannot settle it, it goes to the general manager" (DOMAIN §5).
    CannotSettle,
}

/// What someone asks the handling to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Pass the confirmed complaint to a department (first routing).
    Route,
    /// Pass it to another department; the handler is cleared and the new department accepts.
    Reroute,
    /// Give a routed complaint without a handler its handler.
    Assign,
    /// Give it to another handler.
    Reassign,
    /// The department accepts it (stops the acceptance clock).
    Accept,
    /// Valid or invalid; invalid makes it class D (DOMAIN §2, §3).
    DecideValidity { valid: bool },
    /// The cause, responsibility and corrective measure of a valid complaint.
    RecordCause,
    /// Feedback to the customer.
    GiveFeedback,
    /// The intermediate result, when it cannot be finished in time (DOMAIN §3).
    ReportIntermediate,
    /// A solution proposed to the customer.
    ProposeResolution,
    /// The customer's answer to the latest proposal.
    CustomerResponse { accepted: bool },
    /// The department manager cannot settle it (DOMAIN §5).
    DeclareCannotSettle,
    /// A share of the work for another department.
    CreateSubTask,
    /// A share is done.
    CompleteSubTask,
    /// The final result is written on the handling sheet.
    Resolve,
    /// A resolved complaint is opened again.
    Reopen,
    /// No more handling.
    Close,
}

impl Command {
    /// One of each command (both values of each flag), for exhaustive tests.
    pub const ALL: [Command; 19] = [
        Command::Route,
        Command::Reroute,
        Command::Assign,
        Command::Reassign,
        Command::Accept,
        Command::DecideValidity { valid: true },
        Command::DecideValidity { valid: false },
        Command::RecordCause,
        Command::GiveFeedback,
        Command::ReportIntermediate,
        Command::ProposeResolution,
        Command::CustomerResponse { accepted: true },
        Command::CustomerResponse { accepted: false },
        Command::DeclareCannotSettle,
        Command::CreateSubTask,
        Command::CompleteSubTask,
        Command::Resolve,
        Command::Reopen,
        Command::Close,
    ];

    /// The command in words, for refusals.
    pub fn name(self) -> &'static str {
        match self {
            Command::Route => "route",
            Command::Reroute => "reroute",
            Command::Assign => "assign",
            Command::Reassign => "reassign",
            Command::Accept => "accept",
            Command::DecideValidity { .. } => "decide validity",
            Command::RecordCause => "record the cause",
            Command::GiveFeedback => "give feedback",
            Command::ReportIntermediate => "report an intermediate result",
            Command::ProposeResolution => "propose a resolution",
            Command::CustomerResponse { .. } => "record the customer's response",
            Command::DeclareCannotSettle => "declare it cannot be settled",
            Command::CreateSubTask => "create a sub-task",
            Command::CompleteSubTask => "complete a sub-task",
            Command::Resolve => "resolve",
            Command::Reopen => "reopen",
            Command::Close => "close",
        }
    }
}

/// What a transition causes; each is one event of `events.proto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `complaint.routed`.
    Routed,
    /// `complaint.assigned`.
    Assigned,
    /// `complaint.accepted`.
    Accepted,
    /// `complaint.validity_decided`; `to_class_d` when it was found invalid.
    ValidityDecided { valid: bool, to_class_d: bool },
    /// `complaint.cause_recorded`.
    CauseRecorded,
    /// `complaint.feedback_given` with its sequence number (1 for the first).
    FeedbackGiven { sequence: u32 },
    /// `complaint.intermediate_result_reported`.
    IntermediateReported,
    /// `complaint.resolution_proposed` with its attempt number (1 for the first).
    ResolutionProposed { attempt: u32 },
    /// `complaint.customer_accepted`.
    CustomerAccepted { attempt: u32 },
    /// `complaint.customer_rejected`.
    CustomerRejected { attempt: u32, rejection_count: u32 },
    /// `complaint.restudy_requested`.
    ReStudyRequested { rejection_count: u32 },
    /// `complaint.escalation_requested`.
    EscalationRequested { cause: EscalationCause },
    /// `complaint.subtask_created`.
    SubTaskCreated,
    /// `complaint.subtask_completed`.
    SubTaskCompleted,
    /// `complaint.resolved`.
    Resolved,
    /// `complaint.reopened`.
    Reopened,
    /// `complaint.closed`.
    Closed,
}

/// A command refused: names the stage the complaint is in, and why. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} while the complaint is {stage}: {reason}", command.name())]
pub struct Refusal {
    pub stage: Stage,
    pub command: Command,
    pub reason: String,
}

/// One complaint's handling: its stage and the facts the rules depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handling {
    pub stage: Stage,
    /// The validity decision; `None` before it is made.
    pub valid: Option<bool>,
    /// Whether the cause was recorded.
    pub cause_recorded: bool,
    /// Feedback given so far.
    pub feedback_count: u32,
    /// Solutions proposed so far (the latest proposal's number).
    pub attempt: u32,
    /// The customer's rejections so far.
    pub rejection_count: u32,
    /// Sub-tasks not yet completed.
    pub open_subtasks: u32,
    /// Rejections after which escalation is requested instead of a re-study (default 2:
    /// "rejected again … → escalation request", issue 4 / DOMAIN §5).
    pub rejections_before_escalation: u32,
}

impl Handling {
    /// A newly received complaint.
    pub fn new(rejections_before_escalation: u32) -> Self {
        Handling {
            stage: Stage::AwaitingConfirmation,
            valid: None,
            cause_recorded: false,
            feedback_count: 0,
            attempt: 0,
            rejection_count: 0,
            open_subtasks: 0,
            rejections_before_escalation: rejections_before_escalation.max(1),
        }
    }

    /// Applies a command: the next handling and its effects, or a refusal naming the stage.
    pub fn apply(self, command: Command) -> Result<(Handling, Vec<Effect>), Refusal> {
        let stage = self.stage;
        let refuse = |reason: &str| Refusal {
            stage,
            command,
            reason: reason.to_owned(),
        };
        let mut next = self.clone();
        let effects = match command {
            Command::Route => {
                if stage != Stage::AwaitingConfirmation {
                    return Err(refuse("it is already routed"));
                }
                next.stage = Stage::Routed;
                vec![Effect::Routed]
            }
            Command::Reroute => {
                if !matches!(
                    stage,
                    Stage::Routed | Stage::Assigned | Stage::Accepted | Stage::ReStudy
                ) {
                    return Err(refuse(
                        "only a routed, assigned, accepted or re-studied complaint can be rerouted",
                    ));
                }
                next.stage = Stage::Routed;
                vec![Effect::Routed]
            }
            Command::Assign => {
                if stage != Stage::Routed {
                    return Err(refuse(
                        "only a routed complaint without a handler can be assigned; use reassign",
                    ));
                }
                next.stage = Stage::Assigned;
                vec![Effect::Assigned]
            }
            Command::Reassign => {
                if !stage.has_handler() {
                    return Err(refuse("it has no handler to replace"));
                }
                vec![Effect::Assigned]
            }
            Command::Accept => {
                if stage != Stage::Assigned {
                    return Err(refuse("only an assigned complaint can be accepted"));
                }
                next.stage = Stage::Accepted;
                vec![Effect::Accepted]
            }
            Command::DecideValidity { valid } => {
                if !matches!(stage, Stage::Accepted | Stage::ReStudy | Stage::Reopened) {
                    return Err(refuse(
                        "validity is decided after acceptance, before a proposal",
                    ));
                }
                if self.valid == Some(valid) {
                    return Err(refuse("that decision is already recorded"));
                }
                next.valid = Some(valid);
                vec![Effect::ValidityDecided {
                    valid,
                    to_class_d: !valid,
                }]
            }
            Command::RecordCause => {
                if !matches!(stage, Stage::Accepted | Stage::ReStudy | Stage::Reopened) {
                    return Err(refuse(
                        "the cause is recorded after acceptance, before a proposal",
                    ));
                }
                if self.valid != Some(true) {
                    return Err(refuse("the complaint must first be decided valid"));
                }
                next.cause_recorded = true;
                vec![Effect::CauseRecorded]
            }
            Command::GiveFeedback => {
                if !stage.is_working() {
                    return Err(refuse("feedback is given while the department handles it"));
                }
                next.feedback_count += 1;
                vec![Effect::FeedbackGiven {
                    sequence: next.feedback_count,
                }]
            }
            Command::ReportIntermediate => {
                if !stage.is_working() {
                    return Err(refuse(
                        "an intermediate result is reported while the department handles it",
                    ));
                }
                vec![Effect::IntermediateReported]
            }
            Command::ProposeResolution => {
                if !matches!(
                    stage,
                    Stage::Accepted | Stage::ReStudy | Stage::Escalated | Stage::Reopened
                ) {
                    return Err(refuse(
                        "a solution is proposed after acceptance, when none awaits an answer",
                    ));
                }
                if self.valid.is_none() {
                    return Err(refuse("validity must be decided first"));
                }
                next.attempt += 1;
                next.stage = Stage::ResolutionProposed;
                vec![Effect::ResolutionProposed {
                    attempt: next.attempt,
                }]
            }
            Command::CustomerResponse { accepted } => {
                if stage != Stage::ResolutionProposed {
                    return Err(refuse("no proposed solution awaits the customer's answer"));
                }
                let attempt = self.attempt;
                if accepted {
                    next.stage = Stage::CustomerAccepted;
                    vec![Effect::CustomerAccepted { attempt }]
                } else {
                    next.rejection_count += 1;
                    let rejection_count = next.rejection_count;
                    let rejected = Effect::CustomerRejected {
                        attempt,
                        rejection_count,
                    };
                    if rejection_count >= self.rejections_before_escalation {
                        next.stage = Stage::Escalated;
                        vec![
                            rejected,
                            Effect::EscalationRequested {
                                cause: EscalationCause::RepeatedRejection,
                            },
                        ]
                    } else {
                        next.stage = Stage::ReStudy;
                        vec![rejected, Effect::ReStudyRequested { rejection_count }]
                    }
                }
            }
            Command::DeclareCannotSettle => {
                if !matches!(
                    stage,
                    Stage::Accepted | Stage::ResolutionProposed | Stage::ReStudy | Stage::Reopened
                ) {
                    return Err(refuse(
                        "only a complaint the department is handling can be declared unsettleable",
                    ));
                }
                next.stage = Stage::Escalated;
                vec![Effect::EscalationRequested {
                    cause: EscalationCause::CannotSettle,
                }]
            }
            Command::CreateSubTask => {
                if !stage.is_working() {
                    return Err(refuse(
                        "sub-tasks are created while the department handles it",
                    ));
                }
                next.open_subtasks += 1;
                vec![Effect::SubTaskCreated]
            }
            Command::CompleteSubTask => {
                if self.open_subtasks == 0 {
                    return Err(refuse("it has no open sub-task"));
                }
                if stage == Stage::Closed {
                    return Err(refuse("it is closed"));
                }
                next.open_subtasks -= 1;
                vec![Effect::SubTaskCompleted]
            }
            Command::Resolve => {
                if !matches!(stage, Stage::CustomerAccepted | Stage::Escalated) {
                    return Err(refuse(
                        "it is resolved once the customer accepted a solution or escalation decided it",
                    ));
                }
                if self.open_subtasks > 0 {
                    return Err(refuse(&format!(
                        "{} sub-task(s) are still open",
                        self.open_subtasks
                    )));
                }
                next.stage = Stage::Resolved;
                vec![Effect::Resolved]
            }
            Command::Reopen => {
                if stage != Stage::Resolved {
                    return Err(refuse("only a resolved complaint can be reopened"));
                }
                next.stage = Stage::Reopened;
                vec![Effect::Reopened]
            }
            Command::Close => {
                if stage != Stage::Resolved {
                    return Err(refuse("only a resolved complaint can be closed"));
                }
                next.stage = Stage::Closed;
                vec![Effect::Closed]
            }
        };
        Ok((next, effects))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stages a command is allowed in (with a handling whose facts permit it: validity
    /// decided valid, one open sub-task, one rejection left). Written as a table, independent
    /// of `apply`'s code, so the exhaustive test compares two statements of the rules.
    fn allowed(stage: Stage, command: Command) -> bool {
        use Stage::*;
        let working = matches!(
            stage,
            Accepted | ResolutionProposed | ReStudy | CustomerAccepted | Escalated | Reopened
        );
        match command {
            Command::Route => stage == AwaitingConfirmation,
            Command::Reroute => matches!(stage, Routed | Assigned | Accepted | ReStudy),
            Command::Assign => stage == Routed,
            Command::Reassign => stage == Assigned || working,
            Command::Accept => stage == Assigned,
            // The fixture is decided valid: deciding valid again is refused as a repeat.
            Command::DecideValidity { valid } => {
                !valid && matches!(stage, Accepted | ReStudy | Reopened)
            }
            Command::RecordCause => matches!(stage, Accepted | ReStudy | Reopened),
            Command::GiveFeedback | Command::ReportIntermediate | Command::CreateSubTask => working,
            Command::ProposeResolution => {
                matches!(stage, Accepted | ReStudy | Escalated | Reopened)
            }
            Command::CustomerResponse { .. } => stage == ResolutionProposed,
            Command::DeclareCannotSettle => {
                matches!(stage, Accepted | ResolutionProposed | ReStudy | Reopened)
            }
            Command::CompleteSubTask => stage != Closed,
            // Blocked by the fixture's open sub-task everywhere.
            Command::Resolve => false,
            Command::Reopen | Command::Close => stage == Resolved,
        }
    }

    fn at(stage: Stage) -> Handling {
        Handling {
            stage,
            valid: Some(true),
            open_subtasks: 1,
            ..Handling::new(2)
        }
    }

    #[test]
    fn every_stage_and_command_pair_is_allowed_or_refused_naming_the_stage() {
        let mut checked = 0;
        for stage in Stage::ALL {
            for command in Command::ALL {
                let before = at(stage);
                match before.clone().apply(command) {
                    Ok((after, effects)) => {
                        assert!(
                            allowed(stage, command),
                            "{command:?} was allowed in {stage}"
                        );
                        assert!(!effects.is_empty(), "{command:?} in {stage} had no effect");
                        // Facts only grow: nothing allowed forgets a decision or a count.
                        assert!(after.feedback_count >= before.feedback_count);
                        assert!(after.rejection_count >= before.rejection_count);
                        assert!(after.attempt >= before.attempt);
                    }
                    Err(refusal) => {
                        assert!(
                            !allowed(stage, command),
                            "{command:?} was refused in {stage}: {refusal}"
                        );
                        assert_eq!(refusal.stage, stage);
                        assert!(refusal.to_string().contains(stage.as_str()), "{refusal}");
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, Stage::ALL.len() * Command::ALL.len());
    }

    #[test]
    fn stage_list_is_complete_and_round_trips() {
        // A new variant must be added to ALL: this match stops compiling otherwise, and the
        // count below catches a missing entry.
        let arity = |s: Stage| match s {
            Stage::AwaitingConfirmation
            | Stage::Routed
            | Stage::Assigned
            | Stage::Accepted
            | Stage::ResolutionProposed
            | Stage::ReStudy
            | Stage::CustomerAccepted
            | Stage::Escalated
            | Stage::Resolved
            | Stage::Reopened
            | Stage::Closed => 1,
        };
        assert_eq!(Stage::ALL.iter().map(|s| arity(*s)).sum::<usize>(), 11);
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stage::parse("nonsense"), None);
    }

    fn run(h: Handling, commands: &[Command]) -> (Handling, Vec<Effect>) {
        let mut h = h;
        let mut all = Vec::new();
        for c in commands {
            let (next, effects) = h.apply(*c).expect("allowed");
            h = next;
            all.extend(effects);
        }
        (h, all)
    }

    #[test]
    fn happy_path_from_receipt_to_resolution() {
        use Command::*;
        let (h, effects) = run(
            Handling::new(2),
            &[
                Route,
                Assign,
                Accept,
                DecideValidity { valid: true },
                RecordCause,
                GiveFeedback,
                ProposeResolution,
                CustomerResponse { accepted: true },
                Resolve,
                Close,
            ],
        );
        assert_eq!(h.stage, Stage::Closed);
        assert!(effects.contains(&Effect::FeedbackGiven { sequence: 1 }));
        assert!(effects.contains(&Effect::CustomerAccepted { attempt: 1 }));
    }

    #[test]
    fn first_rejection_restudies_second_escalates() {
        use Command::*;
        let base = [
            Route,
            Assign,
            Accept,
            DecideValidity { valid: true },
            ProposeResolution,
            CustomerResponse { accepted: false },
        ];
        let (h, effects) = run(Handling::new(2), &base);
        assert_eq!(h.stage, Stage::ReStudy);
        assert!(effects.contains(&Effect::ReStudyRequested { rejection_count: 1 }));
        let (h, effects) = run(
            h,
            &[ProposeResolution, CustomerResponse { accepted: false }],
        );
        assert_eq!(h.stage, Stage::Escalated);
        assert_eq!(
            effects,
            vec![
                Effect::ResolutionProposed { attempt: 2 },
                Effect::CustomerRejected {
                    attempt: 2,
                    rejection_count: 2
                },
                Effect::EscalationRequested {
                    cause: EscalationCause::RepeatedRejection
                }
            ]
        );
    }

    #[test]
    fn invalid_complaint_becomes_class_d_and_has_no_cause() {
        use Command::*;
        let (h, effects) = run(
            Handling::new(2),
            &[Route, Assign, Accept, DecideValidity { valid: false }],
        );
        assert!(effects.contains(&Effect::ValidityDecided {
            valid: false,
            to_class_d: true
        }));
        let refusal = h.apply(RecordCause).expect_err("refused");
        assert_eq!(refusal.stage, Stage::Accepted);
    }

    #[test]
    fn open_subtasks_block_resolution_until_completed() {
        use Command::*;
        let (h, _) = run(
            Handling::new(2),
            &[
                Route,
                Assign,
                Accept,
                DecideValidity { valid: true },
                CreateSubTask,
                ProposeResolution,
                CustomerResponse { accepted: true },
            ],
        );
        let refusal = h.clone().apply(Resolve).expect_err("blocked");
        assert!(refusal.reason.contains("sub-task"), "{refusal}");
        let (h, _) = run(h, &[CompleteSubTask, Resolve]);
        assert_eq!(h.stage, Stage::Resolved);
    }

    #[test]
    fn manager_declaring_cannot_settle_escalates() {
        use Command::*;
        let (h, effects) = run(
            Handling::new(2),
            &[Route, Assign, Accept, DeclareCannotSettle],
        );
        assert_eq!(h.stage, Stage::Escalated);
        assert_eq!(
            effects.last(),
            Some(&Effect::EscalationRequested {
                cause: EscalationCause::CannotSettle
            })
        );
    }
}
