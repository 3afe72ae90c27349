//! DOMAIN §9 "The registry is the single view of a complaint", as a property of the whole
//! system: random sequences of commands (accept, validity, cause, feedback, intermediate result,
//! propose, the customer's answer, cannot settle, resolve, revisit outcomes with and without a
//! repeat complaint, close, reclassify) drive one complaint at a time through the five real
//! services on a real NATS JetStream and PostgreSQL. After every step the test waits until the
//! services have caught up and checks that intake's `GetComplaint`, routing's `GetHandling`,
//! the SLA monitor's `GetSlaStatus` and escalation's `ListEscalations` tell the same story —
//! and the story routing's own state machine (`redress_domain::handling`) predicts.
//!
//! Most steps are legal in the complaint's stage; some are not, and those must be refused and
//! change nothing anywhere.
//!
//! Reproduce a failing sequence with `REDRESS_CONSISTENCY_SEED=<seed printed>
//! REDRESS_CONSISTENCY_CASES=1`; run more with a larger `REDRESS_CONSISTENCY_CASES` (default 3)
//! or `REDRESS_CONSISTENCY_STEPS` (default 30 steps per sequence). A sequence of 30 steps takes
//! about ten seconds on two cores; nextest stops a test after three minutes, so a long hunt runs
//! several seeds rather than one huge case count.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use redress_domain::handling::{Command, Handling, Stage};
use redress_proto::v1::{
    self, escalation_service_client::EscalationServiceClient,
    intake_service_client::IntakeServiceClient, revisit_service_client::RevisitServiceClient,
    routing_service_client::RoutingServiceClient,
    sla_monitor_service_client::SlaMonitorServiceClient,
};
use redress_test_support::{TestBed, authed, poll};
use tonic::transport::Channel;

const AGENT: &str = "test-agent-token";
const HANDLER: &str = "test-handler-token";
const MANAGER: &str = "test-manager-token";
/// How long the services get to catch up after one step before the views must agree.
const CATCH_UP: Duration = Duration::from_secs(20);

/// Limits of hours, each class its own, so a changed class shows in every due time and no limit
/// is missed while the test runs (SLA timing is `one_late_complaint.rs`'s business).
const POLICY: &str = r#"
[limits]
acceptance = "2h"
[limits.completion]
A = "8h"
B = "24h"
C = "48h"
D = "72h"
[escalation]
l2_after = "1h"
unacknowledged_resend_after = "10h"
unacknowledged_raise_after = "10h"
"#;

/// The common organisation plus a technician of another department, the person a cause or a
/// resolution names: the class fines the sequences book fall on them, so after three in the
/// month it is they who are suspended (DOMAIN §7), not handler-1, who must stay available to be
/// assigned every sequence's complaint.
fn organisation() -> String {
    format!(
        "{}{}",
        common::SEED,
        r#"
[[departments]]
id = "dept-field"
name = "Field Service"
manager_id = "manager-1"

[[staff]]
id = "tech-1"
name = "Technician One"
department_id = "dept-field"
role = "handler"
"#
    )
}

/// Who a cause or a resolution names as responsible.
const RESPONSIBLE: &str = "tech-1";

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence, with
/// no dependency and nothing to keep in step with another crate's algorithm.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// One step of a sequence.
#[derive(Clone, Copy, Debug)]
enum Step {
    Accept,
    Validity(bool),
    /// A cause naming a person (or with the customer) when `true`; the network otherwise.
    Cause(bool),
    /// Feedback, with the customer's satisfaction when asked.
    Feedback(Option<bool>),
    Intermediate,
    Propose,
    Respond(bool),
    CannotSettle,
    /// Resolve, naming the responsible person in the request when `true`.
    Resolve(bool),
    Close,
    Reclassify(v1::Class),
    Revisit(Outcome),
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Unreached,
    Satisfied,
    Dissatisfied,
    /// Dissatisfied and complains again: a repeat complaint.
    Repeat,
}

impl Step {
    /// Routing's command for this step; `None` for steps outside routing's state machine.
    fn command(self) -> Option<Command> {
        Some(match self {
            Step::Accept => Command::Accept,
            Step::Validity(valid) => Command::DecideValidity { valid },
            Step::Cause(accountable) => Command::RecordCause { accountable },
            Step::Feedback(s) => Command::GiveFeedback {
                satisfaction: s.is_some(),
            },
            Step::Intermediate => Command::ReportIntermediate,
            Step::Propose => Command::ProposeResolution,
            Step::Respond(accepted) => Command::CustomerResponse { accepted },
            Step::CannotSettle => Command::DeclareCannotSettle,
            Step::Resolve(names_person) => Command::Resolve { names_person },
            Step::Close => Command::Close,
            Step::Reclassify(_) | Step::Revisit(_) => return None,
        })
    }
}

/// What the test expects of the complaint: routing's state machine plus the facts other
/// services add.
#[derive(Clone, Debug)]
struct Model {
    handling: Handling,
    /// `None` when only routing knows it (a valid finding after an invalid one).
    class: Option<v1::Class>,
    satisfied: Option<bool>,
    /// Escalation triggers the complaint must have raised by now.
    triggers: BTreeSet<i32>,
    /// Whether the department accepted it: accepting again is answered, and changes nothing.
    accepted: bool,
}

/// What the services must do with a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Accept it and change the complaint as the model now says.
    Change,
    /// Refuse it, changing nothing.
    Refuse,
    /// Answer it, changing nothing (a second acceptance).
    Nothing,
}

impl Model {
    fn stage(&self) -> Stage {
        self.handling.stage
    }
    fn resolved(&self) -> bool {
        matches!(self.stage(), Stage::Resolved | Stage::Closed)
    }
}

struct Clients {
    intake: IntakeServiceClient<Channel>,
    routing: RoutingServiceClient<Channel>,
    sla: SlaMonitorServiceClient<Channel>,
    escalation: EscalationServiceClient<Channel>,
    revisit: RevisitServiceClient<Channel>,
}

/// The four answers about one complaint.
#[derive(Debug, Clone, PartialEq)]
struct Views {
    view: v1::ComplaintView,
    handling: v1::GetHandlingResponse,
    sla: v1::GetSlaStatusResponse,
    escalations: Vec<v1::Escalation>,
}

impl Views {
    /// The state the answers describe, to compare before and after a refused step: without
    /// what moves with the wall clock (time left), what a service writes down after the fact
    /// (a notification's delivery) and the timeline (an earlier step's entry may still be on
    /// its way; a refused step's own entries are looked for by time, [`no_entries_from`]).
    fn still(&self) -> Views {
        let mut v = self.clone();
        for c in &mut v.sla.clocks {
            c.time_left = None;
        }
        // Two revisit clocks come in no set order.
        v.sla.clocks.sort_by_key(|c| {
            (
                c.clock,
                c.started_at.map(|t| (t.seconds, t.nanos)),
                c.due_at.map(|t| (t.seconds, t.nanos)),
            )
        });
        for e in &mut v.escalations {
            e.notification_delivered = false;
        }
        v.view.timeline.clear();
        v
    }
}

impl Clients {
    async fn views(&mut self, id: &str) -> Result<Views, String> {
        let view = self
            .intake
            .get_complaint(authed(
                AGENT,
                v1::GetComplaintRequest {
                    complaint_id: id.to_owned(),
                },
            ))
            .await
            .map_err(|e| format!("GetComplaint: {e}"))?
            .into_inner();
        let handling = self
            .routing
            .get_handling(authed(
                AGENT,
                v1::GetHandlingRequest {
                    complaint_id: id.to_owned(),
                },
            ))
            .await
            .map_err(|e| format!("GetHandling: {e}"))?
            .into_inner();
        let sla = self
            .sla
            .get_sla_status(authed(
                AGENT,
                v1::GetSlaStatusRequest {
                    complaint_id: id.to_owned(),
                },
            ))
            .await
            .map_err(|e| format!("GetSlaStatus: {e}"))?
            .into_inner();
        let escalations = self
            .escalation
            .list_escalations(authed(
                "test-gm-token",
                v1::ListEscalationsRequest {
                    complaint_id: id.to_owned(),
                    page: Some(v1::PageRequest {
                        page_size: 100,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .map_err(|e| format!("ListEscalations: {e}"))?
            .into_inner()
            .escalations;
        Ok(Views {
            view,
            handling,
            sla,
            escalations,
        })
    }

    /// Polls until the four views agree with each other and with the model, or `CATCH_UP`
    /// passes; then the last disagreement is the failure.
    async fn caught_up(&mut self, id: &str, model: &mut Model, trail: &str) -> Views {
        let outcome = poll(
            CATCH_UP,
            async || {
                let v = self.views(id).await?;
                agree(&v, model).map(|()| v)
            },
            Result::is_ok,
        )
        .await;
        match outcome {
            Ok(v) => {
                // A valid finding after an invalid one: routing's class is the truth, and the
                // others now agree with it.
                model.class = Some(v.handling.class());
                v
            }
            Err(why) => panic!("the views disagree after {trail}:\n  {why}"),
        }
    }

    /// Once caught up, polls until the state stops moving (the same [`Views::still`] three
    /// reads in a row, 100 ms apart, within `CATCH_UP`) and returns it.
    async fn settled(&mut self, id: &str, model: &mut Model, trail: &str) -> Views {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        let mut last = self.caught_up(id, model, trail).await.still();
        let mut same = 0;
        while same < 2 && tokio::time::Instant::now() < deadline {
            // The poll interval of a stability check (three equal reads in a row), not a wait.
            tokio::time::sleep(redress_test_support::EVERY).await;
            let now = self.caught_up(id, model, trail).await.still();
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        last
    }

    /// The complaint's revisits waiting for an outcome (scheduled or unreached), newest due
    /// first.
    async fn open_revisits(&mut self, id: &str) -> Vec<v1::Revisit> {
        let mut all = self
            .revisit
            .list_due_revisits(authed(
                AGENT,
                v1::ListDueRevisitsRequest {
                    due_before: Some(prost_types::Timestamp {
                        seconds: 4_102_444_800,
                        nanos: 0,
                    }),
                    page: Some(v1::PageRequest {
                        page_size: 200,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("list due revisits")
            .into_inner()
            .revisits;
        all.retain(|r| {
            r.complaint_id == id
                && matches!(
                    r.state(),
                    v1::RevisitState::Scheduled | v1::RevisitState::Unreached
                )
        });
        all
    }
}

fn due(sla: &v1::GetSlaStatusResponse, clock: v1::SlaClock) -> Option<prost_types::Timestamp> {
    sla.clocks
        .iter()
        .find(|c| c.clock() == clock)
        .and_then(|c| c.due_at)
}

fn satisfaction_word(s: Option<bool>) -> &'static str {
    match s {
        None => "",
        Some(true) => "satisfied",
        Some(false) => "dissatisfied",
    }
}

/// Triggers of missed limits and their climbs: at most one open per level (DOMAIN §9 "the
/// ladder climbs per complaint, not per clock").
const MISSED_LIMIT: [v1::EscalationTrigger; 3] = [
    v1::EscalationTrigger::SlaOverdue,
    v1::EscalationTrigger::ClassAOverdue,
    v1::EscalationTrigger::UnresolvedAfterL1,
];

/// Every check, as one message naming each disagreement (empty when all agree).
fn agree(v: &Views, model: &Model) -> Result<(), String> {
    let mut bad = Vec::new();
    let (view, h, sla) = (&v.view, &v.handling, &v.sla);
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    // Class: registry, routing, SLA monitor — and the model where it knows.
    check(
        view.class() == h.class() && h.class() == sla.class(),
        format!(
            "class: registry {:?}, routing {:?}, SLA monitor {:?}",
            view.class(),
            h.class(),
            sla.class()
        ),
    );
    if let Some(class) = model.class {
        check(
            h.class() == class,
            format!("class {:?}, expected {class:?}", h.class()),
        );
    }
    // Stage: the registry's status is routing's stage.
    check(
        view.status == h.stage,
        format!("stage: registry {:?}, routing {:?}", view.status, h.stage),
    );
    check(
        h.stage == model.stage().as_str(),
        format!("stage {:?}, expected {:?}", h.stage, model.stage().as_str()),
    );
    // Handler and department.
    check(
        view.assignee_id == h.assignee_id && h.assignee_id == "handler-1",
        format!(
            "handler: registry {:?}, routing {:?}",
            view.assignee_id, h.assignee_id
        ),
    );
    check(
        view.department_id == h.department_id,
        format!(
            "department: registry {:?}, routing {:?}",
            view.department_id, h.department_id
        ),
    );
    // The registry's due times are the SLA monitor's clocks.
    match view.promises.as_ref() {
        None => check(false, "registry without promises".into()),
        Some(p) => {
            for (clock, registry) in [
                (v1::SlaClock::Acceptance, p.acceptance_due),
                (v1::SlaClock::FirstFeedback, p.first_feedback_due),
                (v1::SlaClock::Completion, p.completion_due),
                (v1::SlaClock::IntermediateResult, p.intermediate_due),
            ] {
                let monitor = due(sla, clock);
                check(
                    registry == monitor,
                    format!("{clock:?} due: registry {registry:?}, SLA monitor {monitor:?}"),
                );
            }
        }
    }
    // Satisfaction: registry, routing and what the customer last said.
    check(
        view.satisfaction == satisfaction_word(h.satisfied),
        format!(
            "satisfaction: registry {:?}, routing {:?}",
            view.satisfaction, h.satisfied
        ),
    );
    check(
        h.satisfied == model.satisfied,
        format!(
            "satisfaction {:?}, expected {:?}",
            h.satisfied, model.satisfied
        ),
    );
    // Routing's facts as its state machine predicts.
    let m = &model.handling;
    check(
        (h.valid, h.feedback_count, h.attempt, h.rejection_count)
            == (m.valid, m.feedback_count, m.attempt, m.rejection_count),
        format!(
            "handling facts (valid, feedback, attempt, rejections) = {:?}, expected {:?}",
            (h.valid, h.feedback_count, h.attempt, h.rejection_count),
            (m.valid, m.feedback_count, m.attempt, m.rejection_count)
        ),
    );
    // Limits of hours: nothing is late anywhere.
    check(!view.overdue, "the registry says overdue".into());
    check(
        sla.clocks
            .iter()
            .all(|c| c.state() != v1::ClockState::Overdue),
        "an SLA clock is overdue".into(),
    );
    // Escalations: about this complaint, the triggers the steps raise and no others, at most one
    // open per level for missed limits, none open once resolved.
    let open = |e: &&v1::Escalation| {
        matches!(
            e.state(),
            v1::EscalationState::Raised | v1::EscalationState::Acknowledged
        )
    };
    for e in &v.escalations {
        check(
            e.complaint_id == view.complaint_id,
            format!("escalation {} of another complaint", e.escalation_id),
        );
    }
    let triggers: BTreeSet<i32> = v
        .escalations
        .iter()
        .map(|e| e.trigger)
        .filter(|t| *t != v1::EscalationTrigger::Unacknowledged as i32)
        .collect();
    check(
        triggers == model.triggers,
        format!(
            "escalation triggers {:?}, expected {:?}",
            names(&triggers),
            names(&model.triggers)
        ),
    );
    for level in v
        .escalations
        .iter()
        .map(|e| e.level)
        .collect::<BTreeSet<_>>()
    {
        let n = v
            .escalations
            .iter()
            .filter(open)
            .filter(|e| e.level == level && MISSED_LIMIT.contains(&e.trigger()))
            .count();
        check(
            n <= 1,
            format!("{n} open missed-limit escalations at level {level}"),
        );
    }
    if model.resolved() {
        let still: Vec<_> = v
            .escalations
            .iter()
            .filter(open)
            .map(|e| (e.escalation_id.as_str(), e.trigger()))
            .collect();
        check(
            still.is_empty(),
            format!("escalations open after resolution: {still:?}"),
        );
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("\n  "))
    }
}

fn names(triggers: &BTreeSet<i32>) -> Vec<String> {
    triggers
        .iter()
        .map(|t| {
            v1::EscalationTrigger::try_from(*t)
                .map(|t| t.as_str_name().to_owned())
                .unwrap_or_else(|_| t.to_string())
        })
        .collect()
}

/// Picks the next step: one legal in the model's stage most of the time (nine in ten), else
/// any step, legal or not.
fn pick(rng: &mut Rng, model: &Model, revisits: usize) -> Step {
    let classes = [v1::Class::A, v1::Class::B, v1::Class::C, v1::Class::D];
    let outcomes = [
        Outcome::Unreached,
        Outcome::Satisfied,
        Outcome::Dissatisfied,
        Outcome::Repeat,
    ];
    // Weighted by kind: the steps legal in every working stage (intermediate result, cannot
    // settle) would otherwise crowd out the ones that move the complaint along.
    let any = |rng: &mut Rng| -> Step {
        match rng.below(22) {
            0 | 1 => Step::Accept,
            2 | 3 => Step::Validity(rng.chance(60)),
            4 | 5 => Step::Cause(rng.chance(70)),
            6 | 7 => Step::Feedback(match rng.below(3) {
                0 => None,
                1 => Some(true),
                _ => Some(false),
            }),
            8 => Step::Intermediate,
            9 | 10 => Step::Propose,
            11..=13 => Step::Respond(rng.chance(60)),
            14 => Step::CannotSettle,
            15 | 16 => Step::Resolve(rng.chance(30)),
            17 => Step::Close,
            18 => Step::Reclassify(classes[rng.below(4)]),
            _ => Step::Revisit(outcomes[rng.below(4)]),
        }
    };
    let legal = |step: Step| -> bool {
        match step {
            Step::Reclassify(to) => Some(to) != model.class && model.stage() != Stage::Closed,
            Step::Revisit(_) => revisits > 0,
            s => s
                .command()
                .is_some_and(|c| model.handling.clone().apply(c).is_ok()),
        }
    };
    if rng.chance(10) {
        return any(rng);
    }
    for _ in 0..200 {
        let step = any(rng);
        if legal(step) {
            return step;
        }
    }
    any(rng)
}

/// Sends one step; `Ok` when the service accepted it.
async fn send(c: &mut Clients, id: &str, step: Step) -> Result<(), tonic::Status> {
    let cid = || id.to_owned();
    match step {
        Step::Accept => c
            .routing
            .accept_complaint(authed(
                HANDLER,
                v1::AcceptComplaintRequest {
                    complaint_id: cid(),
                },
            ))
            .await
            .map(drop),
        Step::Validity(valid) => c
            .routing
            .decide_validity(authed(
                HANDLER,
                v1::DecideValidityRequest {
                    complaint_id: cid(),
                    valid,
                    explanation: if valid {
                        "the line card failed".into()
                    } else {
                        "the outage was announced; the contract excludes it".into()
                    },
                },
            ))
            .await
            .map(drop),
        Step::Cause(accountable) => c
            .routing
            .record_cause(authed(
                HANDLER,
                v1::RecordCauseRequest {
                    complaint_id: cid(),
                    cause: "the line card alarm was not acted on".into(),
                    responsibility: if accountable {
                        v1::Responsibility::CompanyStaff
                    } else {
                        v1::Responsibility::CompanyNetwork
                    } as i32,
                    responsible_person_id: if accountable {
                        RESPONSIBLE.into()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Step::Feedback(satisfied) => c
            .routing
            .give_feedback(authed(
                HANDLER,
                v1::GiveFeedbackRequest {
                    complaint_id: cid(),
                    channel: v1::ReplyChannel::Phone as i32,
                    content: "A technician is booked.".into(),
                    satisfied,
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Step::Intermediate => c
            .routing
            .report_intermediate_result(authed(
                HANDLER,
                v1::ReportIntermediateResultRequest {
                    complaint_id: cid(),
                    content: "Parts ordered.".into(),
                    expected_completion_at: None,
                },
            ))
            .await
            .map(drop),
        Step::Propose => c
            .routing
            .propose_resolution(authed(
                HANDLER,
                v1::ProposeResolutionRequest {
                    complaint_id: cid(),
                    solution: "Replace the line card.".into(),
                    remedies: vec![],
                },
            ))
            .await
            .map(drop),
        Step::Respond(accepted) => c
            .routing
            .record_customer_response(authed(
                HANDLER,
                v1::RecordCustomerResponseRequest {
                    complaint_id: cid(),
                    accepted,
                    reason: if accepted {
                        String::new()
                    } else {
                        "too slow".into()
                    },
                },
            ))
            .await
            .map(drop),
        Step::CannotSettle => c
            .routing
            .declare_cannot_settle(authed(
                MANAGER,
                v1::DeclareCannotSettleRequest {
                    complaint_id: cid(),
                    reason: "beyond the department's authority".into(),
                },
            ))
            .await
            .map(drop),
        Step::Resolve(names_person) => c
            .routing
            .resolve(authed(
                HANDLER,
                v1::ResolveRequest {
                    complaint_id: cid(),
                    result: "Line card replaced.".into(),
                    responsible_person_id: if names_person {
                        RESPONSIBLE.into()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Step::Close => c
            .routing
            .close(authed(
                MANAGER,
                v1::CloseRequest {
                    complaint_id: cid(),
                    note: "done".into(),
                },
            ))
            .await
            .map(drop),
        Step::Reclassify(class) => c
            .intake
            .reclassify(authed(
                AGENT,
                v1::ReclassifyRequest {
                    complaint_id: cid(),
                    class: class as i32,
                    reason: "a manager's finding on the customer's situation".into(),
                },
            ))
            .await
            .map(drop),
        Step::Revisit(outcome) => {
            let Some(r) = c.open_revisits(id).await.into_iter().next() else {
                return Err(tonic::Status::failed_precondition("no open revisit"));
            };
            c.revisit
                .claim_revisit(authed(
                    AGENT,
                    v1::ClaimRevisitRequest {
                        revisit_id: r.revisit_id.clone(),
                    },
                ))
                .await?;
            let reached = !matches!(outcome, Outcome::Unreached);
            let satisfied = matches!(outcome, Outcome::Satisfied);
            let again = matches!(outcome, Outcome::Repeat);
            c.revisit
                .record_outcome(authed(
                    AGENT,
                    v1::RecordOutcomeRequest {
                        revisit_id: r.revisit_id,
                        reached,
                        satisfied,
                        feelings: if reached {
                            "calm".into()
                        } else {
                            String::new()
                        },
                        remaining_dissatisfaction: if reached && !satisfied {
                            "still slow".into()
                        } else {
                            String::new()
                        },
                        method: v1::RevisitMethod::Phone as i32,
                        complains_again: again,
                        repeat_reason: if again {
                            "the line failed again".into()
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    },
                ))
                .await
                .map(drop)
        }
    }
}

/// What the services must do with the step, and what it does to the model.
fn expect(model: &mut Model, step: Step) -> Expect {
    if let Step::Accept = step
        && model.accepted
    {
        // "Accepting twice is harmless: the first time stands" (routing).
        return Expect::Nothing;
    }
    if let Some(command) = step.command() {
        return match model.handling.clone().apply(command) {
            Ok((next, _)) => {
                model.handling = next;
                model.accepted |= matches!(step, Step::Accept);
                match step {
                    Step::Validity(false) => model.class = Some(v1::Class::D),
                    // The class after a valid finding is routing's to say (checked against the
                    // others once they agree).
                    Step::Validity(true) => model.class = None,
                    Step::Feedback(Some(s)) => model.satisfied = Some(s),
                    Step::Respond(false) if model.stage() == Stage::Escalated => {
                        model
                            .triggers
                            .insert(v1::EscalationTrigger::RejectedAgain as i32);
                    }
                    Step::CannotSettle => {
                        model
                            .triggers
                            .insert(v1::EscalationTrigger::CannotSettle as i32);
                    }
                    _ => {}
                }
                Expect::Change
            }
            Err(_) => Expect::Refuse,
        };
    }
    match step {
        Step::Reclassify(to) => {
            if Some(to) == model.class || model.stage() == Stage::Closed {
                return Expect::Refuse;
            }
            model.class = Some(to);
            Expect::Change
        }
        Step::Revisit(outcome) => {
            match outcome {
                Outcome::Unreached => {}
                Outcome::Satisfied => {
                    model.satisfied = Some(true);
                    if model.stage() == Stage::Resolved {
                        apply(model, Command::Close);
                    }
                }
                Outcome::Dissatisfied => model.satisfied = Some(false),
                Outcome::Repeat => {
                    model.satisfied = Some(false);
                    model
                        .triggers
                        .insert(v1::EscalationTrigger::RepeatComplaint as i32);
                    if model.resolved() {
                        apply(model, Command::Reopen);
                    }
                }
            }
            Expect::Change
        }
        _ => unreachable!("every other step is routing's"),
    }
}

fn apply(model: &mut Model, command: Command) {
    model.handling = model
        .handling
        .clone()
        .apply(command)
        .unwrap_or_else(|r| panic!("the model refuses {command:?}: {}", r.reason))
        .0;
}

/// One random sequence on one new complaint.
async fn sequence(c: &mut Clients, seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    // Class C, or B with a loss to the customer.
    let b = rng.chance(50);
    let external = format!("consistency-{seed}");
    let details = v1::ComplaintDetails {
        customer_loss_fen: if b { 5_000 } else { 0 },
        ..common::complaint(&external)
    };
    let ack = c
        .intake
        .submit(authed(
            AGENT,
            v1::SubmitRequest {
                details: Some(details),
            },
        ))
        .await
        .expect("submit")
        .into_inner();
    let id = ack.complaint_id.clone();
    let mut handling = Handling::new(2);
    for command in [Command::Route, Command::Assign] {
        handling = handling.apply(command).expect("routed and assigned").0;
    }
    let mut model = Model {
        handling,
        class: Some(ack.class()),
        satisfied: None,
        triggers: BTreeSet::new(),
        accepted: false,
    };
    let mut trail = format!("seed {seed}: submit ({:?})", ack.class());
    c.caught_up(&id, &mut model, &trail).await;
    // When each refused step was sent and answered, and its number.
    let mut refused: Vec<(prost_types::Timestamp, prost_types::Timestamp, usize)> = Vec::new();
    for n in 1..=steps {
        // Revisits are planned by another service: only offer one when one is waiting.
        let revisits = c.open_revisits(&id).await.len();
        let step = pick(&mut rng, &model, revisits);
        let mut next = model.clone();
        let expected = match step {
            Step::Revisit(_) if revisits == 0 => Expect::Refuse,
            _ => expect(&mut next, step),
        };
        // Before a step that must change nothing: the state once everything in flight from
        // the earlier steps has landed (not every effect shows in the checks, e.g. a clock met
        // keeps its due time).
        let before = match expected {
            Expect::Change => None,
            Expect::Refuse | Expect::Nothing => Some(c.settled(&id, &mut model, &trail).await),
        };
        let sent_at = now();
        let answer = send(c, &id, step).await;
        trail.push_str(&format!(
            "\n  {n}. {step:?} in {} → {}",
            model.stage().as_str(),
            match &answer {
                Ok(()) => "accepted".to_owned(),
                Err(s) => format!("{:?}: {}", s.code(), s.message()),
            }
        ));
        match (expected, &answer) {
            (Expect::Change, Ok(())) => {
                model = next;
                c.caught_up(&id, &mut model, &trail).await;
            }
            (Expect::Refuse, Err(_)) | (Expect::Nothing, Ok(())) => {
                // Refused (or answered as a repeat): nothing changed anywhere — the four
                // answers are what they were.
                let after = c.settled(&id, &mut model, &trail).await;
                assert_eq!(
                    before,
                    Some(after),
                    "a refused step changed something; {trail}"
                );
                refused.push((sent_at, now(), n));
            }
            (Expect::Change | Expect::Nothing, Err(s)) => {
                panic!("a legal step was refused ({s}); {trail}")
            }
            (Expect::Refuse, Ok(())) => panic!("an illegal step was accepted; {trail}"),
        }
    }
    // Refused steps wrote no event: no timeline entry of the services that refused them falls
    // in their time, once every accepted step's entries are in.
    let view = c.caught_up(&id, &mut model, &trail).await.view;
    no_entries_from(&view, &refused, &trail);
    println!("{trail}");
}

fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

/// No timeline entry of the commanded services (intake, routing, revisit) happened while a
/// refused step was being answered.
fn no_entries_from(
    view: &v1::ComplaintView,
    refused: &[(prost_types::Timestamp, prost_types::Timestamp, usize)],
    trail: &str,
) {
    let key = |t: &prost_types::Timestamp| (t.seconds, t.nanos);
    for entry in &view.timeline {
        let Some(at) = entry.occurred_at.as_ref() else {
            continue;
        };
        if !matches!(
            entry.source_service.as_str(),
            "intake" | "routing" | "revisit"
        ) {
            continue;
        }
        if let Some((_, _, n)) = refused
            .iter()
            .find(|(from, to, _)| key(from) <= key(at) && key(at) <= key(to))
        {
            panic!(
                "refused step {n} wrote {} ({}); {trail}",
                entry.kind, entry.summary
            );
        }
    }
}

#[tokio::test]
async fn every_service_tells_the_same_story_after_every_step() {
    let seed = env_u64("REDRESS_CONSISTENCY_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let cases = env_u64("REDRESS_CONSISTENCY_CASES").unwrap_or(3);
    let steps = env_u64("REDRESS_CONSISTENCY_STEPS").unwrap_or(30) as usize;
    println!(
        "consistency: REDRESS_CONSISTENCY_SEED={seed} REDRESS_CONSISTENCY_CASES={cases} \
         REDRESS_CONSISTENCY_STEPS={steps}"
    );
    let bed = TestBed::start().await;
    let stack = common::start_with(&bed, POLICY, &organisation(), &[]).await;
    let mut c = Clients {
        intake: IntakeServiceClient::new(bed.channel(&stack.intake).await),
        routing: RoutingServiceClient::new(bed.channel(&stack.routing).await),
        sla: SlaMonitorServiceClient::new(bed.channel(&stack.sla).await),
        escalation: EscalationServiceClient::new(bed.channel(&stack.escalation).await),
        revisit: RevisitServiceClient::new(bed.channel(&stack.revisit).await),
    };
    for case in 0..cases {
        let seed = seed.wrapping_add(case);
        println!("consistency: sequence {case}, REDRESS_CONSISTENCY_SEED={seed}");
        sequence(&mut c, seed, steps).await;
    }
}
