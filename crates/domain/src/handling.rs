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
//!     Resolve needs a feedback with the customer's satisfaction and, for a valid complaint, a
//!     named responsible person or a customer-side cause (DOMAIN §9 "Resolution needs feedback")
//! ResolutionProposed ─CustomerResponse(rejected)→ ReStudy, or Escalated once rejected
//!     `rejections_before_escalation` times ("customer keeps rejecting → reported upward")
//! Accepted / ResolutionProposed / ReStudy / Reopened ─DeclareCannotSettle→ Escalated
//! Resolved / Closed ─Reopen→ Reopened (works like Accepted; a repeat complaint, DOMAIN §9
//!     "Closing": the only way a closed complaint changes)
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
    /// The cause, responsibility and corrective measure of a valid complaint. `accountable`
    /// when it names a responsible person or puts the cause with the customer — what a valid
    /// complaint needs before it is resolved (DOMAIN §9, "Class fines need a named person").
    RecordCause { accountable: bool },
    /// Feedback to the customer; `satisfaction` when the customer's satisfaction with it was
    /// asked and recorded (DOMAIN §3) — what resolution needs (DOMAIN §9).
    GiveFeedback { satisfaction: bool },
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
    /// The final result is written on the handling sheet; `names_person` when the request
    /// itself names the responsible person (the cause may not have named one).
    Resolve { names_person: bool },
    /// A resolved complaint is opened again.
    Reopen,
    /// No more handling.
    Close,
}

impl Command {
    /// One of each command (both values of each flag), for exhaustive tests.
    pub const ALL: [Command; 22] = [
        Command::Route,
        Command::Reroute,
        Command::Assign,
        Command::Reassign,
        Command::Accept,
        Command::DecideValidity { valid: true },
        Command::DecideValidity { valid: false },
        Command::RecordCause { accountable: true },
        Command::RecordCause { accountable: false },
        Command::GiveFeedback { satisfaction: true },
        Command::GiveFeedback {
            satisfaction: false,
        },
        Command::ReportIntermediate,
        Command::ProposeResolution,
        Command::CustomerResponse { accepted: true },
        Command::CustomerResponse { accepted: false },
        Command::DeclareCannotSettle,
        Command::CreateSubTask,
        Command::CompleteSubTask,
        Command::Resolve { names_person: true },
        Command::Resolve {
            names_person: false,
        },
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
            Command::RecordCause { .. } => "record the cause",
            Command::GiveFeedback { .. } => "give feedback",
            Command::ReportIntermediate => "report an intermediate result",
            Command::ProposeResolution => "propose a resolution",
            Command::CustomerResponse { .. } => "record the customer's response",
            Command::DeclareCannotSettle => "declare it cannot be settled",
            Command::CreateSubTask => "create a sub-task",
            Command::CompleteSubTask => "complete a sub-task",
            Command::Resolve { .. } => "resolve",
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
    /// Whether someone answers for the complaint: a responsible person is named, or the cause
    /// lies with the customer. A valid complaint is not resolved without it, so that its class
    /// fine has a person to go to and never falls on the handler by default (DOMAIN §9).
    pub accountable: bool,
    /// Feedback given so far.
    pub feedback_count: u32,
    /// Whether a feedback recorded the customer's satisfaction since the complaint was last
    /// (re)opened. Resolution needs it (DOMAIN §9): the customer is told the result and asked
    /// whether they are satisfied before the sheet is closed. A reopen clears it — the repeat
    /// complaint says the earlier answer no longer holds.
    pub satisfaction_recorded: bool,
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
            accountable: false,
            feedback_count: 0,
            satisfaction_recorded: false,
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
            Command::RecordCause { accountable } => {
                if !matches!(stage, Stage::Accepted | Stage::ReStudy | Stage::Reopened) {
                    return Err(refuse(
                        "the cause is recorded after acceptance, before a proposal",
                    ));
                }
                if self.valid != Some(true) {
                    return Err(refuse("the complaint must first be decided valid"));
                }
                next.cause_recorded = true;
                // The latest cause stands: a re-study may find someone else (or no one).
                next.accountable = accountable;
                vec![Effect::CauseRecorded]
            }
            Command::GiveFeedback { satisfaction } => {
                if !stage.is_working() {
                    return Err(refuse("feedback is given while the department handles it"));
                }
                next.feedback_count += 1;
                next.satisfaction_recorded |= satisfaction;
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
            Command::Resolve { names_person } => {
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
                let missing = self.missing_for_resolution(names_person);
                if !missing.is_empty() {
                    return Err(refuse(&missing.join("; and ")));
                }
                next.stage = Stage::Resolved;
                if names_person {
                    next.accountable = true;
                }
                vec![Effect::Resolved]
            }
            Command::Reopen => {
                if !matches!(stage, Stage::Resolved | Stage::Closed) {
                    return Err(refuse(
                        "only a resolved or closed complaint can be reopened",
                    ));
                }
                next.stage = Stage::Reopened;
                next.satisfaction_recorded = false;
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

    /// What DOMAIN §9 "Resolution needs feedback" still misses, in words for the refusal
    /// (empty when nothing is missing). `names_person` when the resolve request names the
    /// responsible person itself.
    pub fn missing_for_resolution(&self, names_person: bool) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.satisfaction_recorded {
            missing.push(if self.feedback_count == 0 {
                "no feedback was given to the customer: give feedback recording the customer's satisfaction first"
            } else {
                "no feedback recorded the customer's satisfaction: give feedback with the customer's satisfaction first"
            });
        }
        if self.valid == Some(true) && !self.accountable && !names_person {
            missing.push(
                "a valid complaint needs a named responsible person (record the cause naming one, or name one when resolving) or a cause with the customer (misuse or misunderstanding)",
            );
        }
        missing
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
            Command::RecordCause { .. } => matches!(stage, Accepted | ReStudy | Reopened),
            Command::GiveFeedback { .. } | Command::ReportIntermediate | Command::CreateSubTask => {
                working
            }
            Command::ProposeResolution => {
                matches!(stage, Accepted | ReStudy | Escalated | Reopened)
            }
            Command::CustomerResponse { .. } => stage == ResolutionProposed,
            Command::DeclareCannotSettle => {
                matches!(stage, Accepted | ResolutionProposed | ReStudy | Reopened)
            }
            Command::CompleteSubTask => stage != Closed,
            // Blocked by the fixture's open sub-task everywhere.
            Command::Resolve { .. } => false,
            Command::Reopen => matches!(stage, Resolved | Closed),
            Command::Close => stage == Resolved,
        }
    }

    fn at(stage: Stage) -> Handling {
        Handling {
            stage,
            valid: Some(true),
            accountable: true,
            feedback_count: 1,
            satisfaction_recorded: true,
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
                RecordCause { accountable: true },
                GiveFeedback { satisfaction: true },
                ProposeResolution,
                CustomerResponse { accepted: true },
                Resolve {
                    names_person: false,
                },
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
        let refusal = h
            .apply(RecordCause { accountable: true })
            .expect_err("refused");
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
                RecordCause { accountable: true },
                GiveFeedback { satisfaction: true },
                CreateSubTask,
                ProposeResolution,
                CustomerResponse { accepted: true },
            ],
        );
        let resolve = Resolve {
            names_person: false,
        };
        let refusal = h.clone().apply(resolve).expect_err("blocked");
        assert!(refusal.reason.contains("sub-task"), "{refusal}");
        let (h, _) = run(h, &[CompleteSubTask, resolve]);
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

    /// Up to the customer's acceptance of a valid complaint: nothing about feedback or cause.
    fn accepted_by_customer(valid: bool) -> Handling {
        use Command::*;
        run(
            Handling::new(2),
            &[
                Route,
                Assign,
                Accept,
                DecideValidity { valid },
                ProposeResolution,
                CustomerResponse { accepted: true },
            ],
        )
        .0
    }

    const RESOLVE: Command = Command::Resolve {
        names_person: false,
    };

    #[test]
    fn resolution_without_feedback_is_refused_naming_what_is_missing() {
        let h = accepted_by_customer(true);
        let refusal = h.clone().apply(RESOLVE).expect_err("no feedback");
        assert_eq!(refusal.stage, Stage::CustomerAccepted);
        assert!(refusal.reason.contains("no feedback"), "{refusal}");
        assert!(refusal.reason.contains("responsible person"), "{refusal}");
        // Feedback without the customer's satisfaction is not enough either.
        let (h, _) = run(
            h,
            &[Command::GiveFeedback {
                satisfaction: false,
            }],
        );
        let refusal = h.clone().apply(RESOLVE).expect_err("no satisfaction");
        assert!(refusal.reason.contains("satisfaction"), "{refusal}");
        assert!(
            !refusal.reason.contains("no feedback was given"),
            "{refusal}"
        );
        // With satisfaction recorded only the responsible person is missing.
        let (h, _) = run(h, &[Command::GiveFeedback { satisfaction: true }]);
        let refusal = h.clone().apply(RESOLVE).expect_err("no one named");
        assert!(!refusal.reason.contains("feedback"), "{refusal}");
        assert!(refusal.reason.contains("responsible person"), "{refusal}");
        // Naming the person in the resolve request itself suffices.
        let (h, effects) = run(h, &[Command::Resolve { names_person: true }]);
        assert_eq!(h.stage, Stage::Resolved);
        assert_eq!(effects, vec![Effect::Resolved]);
        assert!(h.accountable);
    }

    #[test]
    fn a_cause_naming_someone_or_the_customer_lets_a_valid_complaint_resolve() {
        use Command::*;
        // `accountable` covers both a named person and a customer-side cause; the service
        // decides which request is which.
        let (h, _) = run(
            Handling::new(2),
            &[
                Route,
                Assign,
                Accept,
                DecideValidity { valid: true },
                RecordCause { accountable: true },
                GiveFeedback { satisfaction: true },
                ProposeResolution,
                CustomerResponse { accepted: true },
                RESOLVE,
            ],
        );
        assert_eq!(h.stage, Stage::Resolved);
        // A re-study whose new cause names no one takes that back.
        let (h, _) = run(
            Handling::new(2),
            &[
                Route,
                Assign,
                Accept,
                DecideValidity { valid: true },
                RecordCause { accountable: true },
                RecordCause { accountable: false },
                GiveFeedback { satisfaction: true },
                ProposeResolution,
                CustomerResponse { accepted: true },
            ],
        );
        let refusal = h.apply(RESOLVE).expect_err("no one named");
        assert!(refusal.reason.contains("responsible person"), "{refusal}");
    }

    #[test]
    fn an_invalid_complaint_needs_only_the_feedback() {
        let h = accepted_by_customer(false);
        let refusal = h.clone().apply(RESOLVE).expect_err("no feedback");
        assert!(!refusal.reason.contains("responsible"), "{refusal}");
        let (h, _) = run(h, &[Command::GiveFeedback { satisfaction: true }, RESOLVE]);
        assert_eq!(h.stage, Stage::Resolved);
    }

    #[test]
    fn escalated_complaints_need_the_same_before_resolution() {
        use Command::*;
        let (h, _) = run(
            Handling::new(2),
            &[Route, Assign, Accept, DeclareCannotSettle],
        );
        assert!(h.clone().apply(RESOLVE).is_err());
        let (h, _) = run(
            h,
            &[
                GiveFeedback { satisfaction: true },
                Resolve { names_person: true },
            ],
        );
        assert_eq!(h.stage, Stage::Resolved);
    }

    #[test]
    fn a_closed_complaint_changes_only_by_a_reopen_which_asks_for_feedback_again() {
        use Command::*;
        let (closed, _) = run(
            accepted_by_customer(false),
            &[GiveFeedback { satisfaction: true }, RESOLVE, Close],
        );
        assert_eq!(closed.stage, Stage::Closed);
        for command in Command::ALL {
            let result = closed.clone().apply(command);
            assert_eq!(result.is_ok(), command == Reopen, "{command:?}: {result:?}");
        }
        let (h, effects) = run(closed, &[Reopen]);
        assert_eq!(h.stage, Stage::Reopened);
        assert_eq!(effects, vec![Effect::Reopened]);
        assert!(!h.satisfaction_recorded);
        let (h, _) = run(h, &[ProposeResolution, CustomerResponse { accepted: true }]);
        let refusal = h.clone().apply(RESOLVE).expect_err("feedback again");
        assert!(refusal.reason.contains("satisfaction"), "{refusal}");
        let (h, _) = run(h, &[GiveFeedback { satisfaction: true }, RESOLVE]);
        assert_eq!(h.stage, Stage::Resolved);
    }
}
