//! `redress up --demo`: plays a few realistic complaints through the running system and prints
//! every event as a live timeline, so a newcomer sees the whole process in about a minute.
//!
//! The scenarios come from the source documents' cases (a broadband outage, a double charge, a
//! number moved without consent with a threat to go to the press). The system runs with the
//! accelerated policy of `deploy/demo/policy.toml` (limits of seconds, not hours); everything
//! else — routing rules, the SLA monitor, the escalation ladder, revisits — is the real thing.
//! The demo only does what people would do: an agent submits, a handler handles, the customer
//! answers, an agent calls back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use redress_proto::prost::Message as _;
use redress_proto::v1::{
    self, event::Payload, intake_service_client::IntakeServiceClient,
    revisit_service_client::RevisitServiceClient, routing_service_client::RoutingServiceClient,
};
use tokio::sync::broadcast;
use tonic::transport::Channel;

/// The demo's configuration files, written next to the services' data at start.
pub const POLICY: &str = include_str!("../../../deploy/demo/policy.toml");
pub const SEED: &str = include_str!("../../../deploy/demo/seed.toml");
pub const ESCALATION: &str = include_str!("../../../deploy/demo/escalation.toml");

/// The demo adds a second handler's token to the development table.
pub const EXTRA_TOKENS: &str = "demo-handler2-token=handler-2:handler@dept-billing:Chen Jie";

const AGENT: &str = "dev-agent-token";
const HANDLER_1: &str = "dev-handler-token";
const HANDLER_2: &str = "demo-handler2-token";

/// How long the demo waits for the system to take a step before it gives up.
const STEP: Duration = Duration::from_secs(60);

/// Where the services listen.
pub struct Endpoints {
    pub intake: String,
    pub routing: String,
    pub revisit: String,
    pub nats_url: String,
    pub prefix: String,
}

/// Plays the scenarios and prints the timeline; returns when the story is told.
pub async fn play(endpoints: &Endpoints) -> Result<()> {
    let started = Instant::now();
    let nats = async_nats::connect(&endpoints.nats_url)
        .await
        .context("demo: connecting to NATS")?;
    let mut subscription = nats
        .subscribe(format!("{}.events.>", endpoints.prefix))
        .await
        .context("demo: subscribing to events")?;
    let (tx, _) = broadcast::channel::<v1::Event>(4096);
    let printer_tx = tx.clone();
    let people = staff_names(SEED)?;
    let printer = tokio::spawn(async move {
        let mut names: HashMap<String, String> = HashMap::new();
        while let Some(msg) = subscription.next().await {
            let Ok(event) = v1::Event::decode(msg.payload) else {
                continue;
            };
            print_event(started, &mut names, &people, &event);
            let _ = printer_tx.send(event);
        }
    });
    let mut events = Events {
        rx: tx.subscribe(),
        seen: Vec::new(),
    };

    let channel = |addr: &str| {
        let url = format!("http://{addr}");
        async move {
            tonic::transport::Endpoint::from_shared(url.clone())?
                .connect()
                .await
                .with_context(|| format!("demo: connecting to {url}"))
        }
    };
    let mut intake = IntakeServiceClient::new(channel(&endpoints.intake).await?);
    let mut routing = RoutingServiceClient::new(channel(&endpoints.routing).await?);
    let mut revisit = RevisitServiceClient::new(channel(&endpoints.revisit).await?);

    say(
        "Three customers call the hotline. The agent records each complaint, reads it back, and submits it.",
    );
    let outage = submit(&mut intake, outage()).await?.complaint_id;
    let charge = submit(&mut intake, double_charge()).await?.complaint_id;
    let moved = submit(&mut intake, number_moved()).await?.complaint_number;

    wait_for(&mut events, "outage assigned", |e| {
        e.complaint_id == outage && matches!(e.payload, Some(Payload::ComplaintAssigned(_)))
    })
    .await?;
    say("Liu Yang, the network handler, takes up the outage and works it with the customer.");
    handle_to_resolution(
        &mut routing,
        HANDLER_1,
        &outage,
        "A line card at the exchange failed; the night shift missed the alarm.",
        "A technician is booked for 14:00 today.",
        "Replace the faulty line card; refund the three days without service.",
        "Line card replaced at 14:40; three days refunded.",
    )
    .await?;

    say(
        "Nobody touches the double charge: watch the SLA monitor warn, then report it overdue, and the ladder climb.",
    );
    wait_for(
        &mut events,
        "double charge reaches the general manager",
        |e| {
            e.complaint_id == charge
                && matches!(&e.payload, Some(Payload::EscalationRaised(r)) if r.level >= 2)
        },
    )
    .await?;
    say("The general manager's notification makes Billing act.");
    handle_to_resolution(
        &mut routing,
        HANDLER_2,
        &charge,
        "The monthly billing run was started twice by hand.",
        "We found the duplicate debit and are reversing it.",
        "Reverse the second charge of 45.00 yuan and waive this month's fee.",
        "Second charge reversed; monthly fee waived.",
    )
    .await?;

    say("Within the revisit limit the agent calls the outage customer back.");
    let outage_revisit = due_revisit(&mut events, &mut revisit, &outage).await?;
    revisit
        .claim_revisit(authed(
            AGENT,
            v1::ClaimRevisitRequest {
                revisit_id: outage_revisit.clone(),
            },
        ))
        .await
        .context("claim revisit")?;
    revisit
        .record_outcome(authed(
            AGENT,
            v1::RecordOutcomeRequest {
                revisit_id: outage_revisit,
                reached: true,
                satisfied: false,
                feelings: "angry: the refund never reached the account".into(),
                remaining_dissatisfaction: "refund missing".into(),
                method: v1::RevisitMethod::Phone as i32,
                complains_again: true,
                repeat_reason: "refund promised on the call was never paid".into(),
                ..Default::default()
            },
        ))
        .await
        .context("record revisit outcome")?;
    wait_for(
        &mut events,
        "repeat complaint reaches the general manager",
        |e| {
            e.complaint_id == outage
                && matches!(&e.payload, Some(Payload::EscalationRaised(r))
                if r.trigger() == v1::EscalationTrigger::RepeatComplaint && r.level >= 2)
        },
    )
    .await?;

    say("And the billing customer, called back too, is satisfied.");
    let charge_revisit = due_revisit(&mut events, &mut revisit, &charge).await?;
    revisit
        .claim_revisit(authed(
            AGENT,
            v1::ClaimRevisitRequest {
                revisit_id: charge_revisit.clone(),
            },
        ))
        .await
        .context("claim revisit")?;
    revisit
        .record_outcome(authed(
            AGENT,
            v1::RecordOutcomeRequest {
                revisit_id: charge_revisit,
                reached: true,
                satisfied: true,
                feelings: "relieved".into(),
                method: v1::RevisitMethod::Phone as i32,
                ..Default::default()
            },
        ))
        .await
        .context("record revisit outcome")?;
    wait_for(&mut events, "satisfaction reported", |e| {
        e.complaint_id == charge && matches!(e.payload, Some(Payload::SatisfactionReported(_)))
    })
    .await?;
    say("Satisfied at the revisit, the billing complaint is closed (archived).");
    wait_for(&mut events, "billing complaint closed", |e| {
        e.complaint_id == charge && matches!(e.payload, Some(Payload::Closed(_)))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    printer.abort();

    say("The registry keeps each complaint's whole story, from every service's events:");
    let view = intake
        .get_complaint(authed(
            AGENT,
            v1::GetComplaintRequest {
                complaint_id: outage.clone(),
            },
        ))
        .await
        .context("get complaint")?
        .into_inner();
    println!(
        "  {} {} — status {}, satisfaction {}",
        view.number,
        view.details
            .and_then(|d| d.customer)
            .map(|c| c.name)
            .unwrap_or_default(),
        view.status,
        view.satisfaction
    );
    for t in &view.timeline {
        println!("    {:<12} {}", t.source_service, t.summary);
    }
    say(&format!(
        "Demo complete in {:.0} s: {} events. Also see the media-risk complaint {moved}, which went \
         to the general manager at once.",
        started.elapsed().as_secs_f64(),
        events.seen.len()
    ));
    Ok(())
}

fn say(text: &str) {
    println!("\n▶ {text}\n");
}

/// Staff names by id, from the demo organisation, so the timeline names each person the same
/// way whichever event mentions them (an assignment carries the name, a fine only the id).
fn staff_names(seed: &str) -> Result<HashMap<String, String>> {
    let org = redress_proto::org::OrgFile::parse(seed).map_err(|errors| {
        anyhow::anyhow!(
            "demo: the demo organisation does not read: {}",
            errors
                .iter()
                .map(|e| format!("{}: {}", e.at, e.reason))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    Ok(org.staff.into_iter().map(|p| (p.id, p.name)).collect())
}

/// One timeline line: time since start, complaint (by number and customer), producing service,
/// what happened (people by name).
fn print_event(
    started: Instant,
    names: &mut HashMap<String, String>,
    people: &HashMap<String, String>,
    event: &v1::Event,
) {
    let Some(payload) = &event.payload else {
        return;
    };
    if let Payload::ComplaintReceived(r) = payload {
        let customer = r
            .details
            .as_ref()
            .and_then(|d| d.customer.as_ref())
            .map(|c| c.name.clone())
            .unwrap_or_default();
        names.insert(
            event.complaint_id.clone(),
            format!("{} {customer}", r.complaint_number),
        );
    }
    let who = names
        .get(&event.complaint_id)
        .cloned()
        .unwrap_or_else(|| event.complaint_id.chars().take(18).collect());
    println!(
        "{:>6.1}s  {:<22} {:<12} {:<34} {}",
        started.elapsed().as_secs_f64(),
        who,
        event.producer,
        payload.kind(),
        payload
            .describe_naming(&|id: &str| people.get(id).cloned().unwrap_or_else(|| id.to_owned()))
    );
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// Every event seen so far, so a step can wait for something that already happened.
struct Events {
    rx: broadcast::Receiver<v1::Event>,
    seen: Vec<v1::Event>,
}

async fn wait_for(
    events: &mut Events,
    what: &str,
    matches: impl Fn(&v1::Event) -> bool,
) -> Result<v1::Event> {
    if let Some(e) = events.seen.iter().find(|e| matches(e)) {
        return Ok(e.clone());
    }
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match tokio::time::timeout_at(deadline, events.rx.recv()).await {
            Ok(Ok(e)) => {
                events.seen.push(e.clone());
                if matches(&e) {
                    return Ok(e);
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("demo: event stream closed"),
            Err(_) => bail!("demo: waited {} s for: {what}", STEP.as_secs()),
        }
    }
}

async fn submit(
    client: &mut IntakeServiceClient<Channel>,
    details: v1::ComplaintDetails,
) -> Result<v1::Acknowledgement> {
    Ok(client
        .submit(authed(
            AGENT,
            v1::SubmitRequest {
                details: Some(details),
            },
        ))
        .await
        .context("submit")?
        .into_inner())
}

/// What a handler does from acceptance to resolution, the customer accepting the solution.
async fn handle_to_resolution(
    routing: &mut RoutingServiceClient<Channel>,
    token: &str,
    id: &str,
    cause: &str,
    feedback: &str,
    solution: &str,
    result: &str,
) -> Result<()> {
    let id = id.to_owned();
    let pause = || tokio::time::sleep(Duration::from_millis(700));
    routing
        .accept_complaint(authed(
            token,
            v1::AcceptComplaintRequest {
                complaint_id: id.clone(),
            },
        ))
        .await
        .context("accept")?;
    pause().await;
    routing
        .decide_validity(authed(
            token,
            v1::DecideValidityRequest {
                complaint_id: id.clone(),
                valid: true,
                explanation: String::new(),
            },
        ))
        .await
        .context("decide validity")?;
    // DOMAIN §9: a valid complaint is resolved only with someone answerable for it — here the
    // department's manager, who answers for the staff's slip — and after feedback that asked
    // the customer whether they are satisfied.
    routing
        .record_cause(authed(
            token,
            v1::RecordCauseRequest {
                complaint_id: id.clone(),
                cause: cause.into(),
                responsibility: v1::Responsibility::CompanyStaff as i32,
                responsible_person_id: "manager-1".into(),
                ..Default::default()
            },
        ))
        .await
        .context("record cause")?;
    routing
        .give_feedback(authed(
            token,
            v1::GiveFeedbackRequest {
                complaint_id: id.clone(),
                channel: v1::ReplyChannel::Phone as i32,
                content: feedback.into(),
                satisfied: Some(true),
                ..Default::default()
            },
        ))
        .await
        .context("feedback")?;
    pause().await;
    routing
        .propose_resolution(authed(
            token,
            v1::ProposeResolutionRequest {
                complaint_id: id.clone(),
                solution: solution.into(),
                remedies: vec![],
            },
        ))
        .await
        .context("propose")?;
    pause().await;
    routing
        .record_customer_response(authed(
            token,
            v1::RecordCustomerResponseRequest {
                complaint_id: id.clone(),
                accepted: true,
                reason: String::new(),
            },
        ))
        .await
        .context("customer response")?;
    routing
        .resolve(authed(
            token,
            v1::ResolveRequest {
                complaint_id: id,
                result: result.into(),
                ..Default::default()
            },
        ))
        .await
        .context("resolve")?;
    Ok(())
}

/// Waits until the after-resolution revisit of `id` is planned, then finds it in the work list.
async fn due_revisit(
    events: &mut Events,
    revisit: &mut RevisitServiceClient<Channel>,
    id: &str,
) -> Result<String> {
    let planned = wait_for(events, "after-resolution revisit planned", |e| {
        e.complaint_id == id
            && matches!(&e.payload, Some(Payload::RevisitScheduled(r))
                if r.kind() == v1::RevisitKind::AfterResolution)
    })
    .await?;
    let Some(Payload::RevisitScheduled(r)) = planned.payload else {
        bail!("demo: unexpected payload")
    };
    let far = redress_proto::prost_types::Timestamp {
        seconds: 4_102_444_800,
        nanos: 0,
    };
    for _ in 0..50 {
        let list = revisit
            .list_due_revisits(authed(
                AGENT,
                v1::ListDueRevisitsRequest {
                    due_before: Some(far),
                    ..Default::default()
                },
            ))
            .await
            .context("list due revisits")?
            .into_inner();
        if list.revisits.iter().any(|x| x.revisit_id == r.revisit_id) {
            return Ok(r.revisit_id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "demo: revisit {} never appeared in the work list",
        r.revisit_id
    )
}

fn base(key: &str, name: &str, phone: &str) -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        key: Some(v1::SubmissionKey {
            source_system: "demo-callcentre".into(),
            external_id: format!("{key}-{}", std::process::id()),
        }),
        customer: Some(v1::Customer {
            name: name.into(),
            phone: phone.into(),
            ..Default::default()
        }),
        channel: v1::Channel::Hotline as i32,
        first_contact: Some(v1::FirstContact {
            employee_id: "agent-1".into(),
            employee_name: "Wang Li (hotline agent)".into(),
            ..Default::default()
        }),
        confirmation: Some(v1::Confirmation {
            method: v1::ConfirmationMethod::Phone as i32,
            note: "read back on the call".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A general complaint (C): broadband down, the customer calm.
fn outage() -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        business: "宽带 100M".into(),
        description: "宽带断网三天，两次预约上门都没有人来。".into(),
        demand: "尽快修复，并退还断网期间的费用。".into(),
        category: "network_quality".into(),
        emotion: v1::EmotionLevel::Calm as i32,
        customer_type: v1::CustomerType::Rational as i32,
        ..base("outage", "王芳", "138 0013 8000")
    }
}

/// A serious complaint (B): charged twice, the customer angry but restrained.
fn double_charge() -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        business: "mobile billing".into(),
        description: "Charged twice for the same 45-yuan data package this month.".into(),
        demand: "Refund the second charge.".into(),
        category: "billing_dispute".into(),
        emotion: v1::EmotionLevel::Strong as i32,
        customer_loss_fen: 4_500,
        customer_type: v1::CustomerType::RestrainedAnger as i32,
        ..base("charge", "张伟", "139 1234 5678")
    }
}

/// A major complaint (A): the number moved without consent, the customer threatening the press.
fn number_moved() -> v1::ComplaintDetails {
    v1::ComplaintDetails {
        business: "mobile number".into(),
        description: "My number was ported to another account without my consent; I lost access to my bank codes.".into(),
        demand: "Restore the number today and explain who authorised it.".into(),
        category: "service_handling".into(),
        emotion: v1::EmotionLevel::ExtremelyStrong as i32,
        procedure_breach: v1::ProcedureBreach::Severe as i32,
        media_risk: true,
        customer_type: v1::CustomerType::Threatening as i32,
        ..base("moved", "赵敏", "137 0000 1111")
    }
}

/// Removes what earlier demo runs left behind: their databases (`redress_demo_<run>`) and their
/// JetStream streams (`DEMO<run>_*`), so `--demo` can be run again and again without filling
/// the machine. A database still in use (a demo running in another terminal) is kept, and so
/// are its streams. Failures only warn: a leftover never stops a new demo.
pub async fn forget_earlier_runs(
    database_url: &str,
    nats_url: &str,
    current_run: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    let dropped = match drop_earlier_databases(database_url, current_run).await {
        Ok(runs) => runs,
        Err(e) => {
            notes.push(format!("could not list earlier demo databases: {e:#}"));
            return notes;
        }
    };
    if dropped.is_empty() {
        return notes;
    }
    notes.push(format!(
        "removed {} earlier demo database(s): redress_demo_{}",
        dropped.len(),
        dropped.join(", redress_demo_")
    ));
    match delete_streams(nats_url, &dropped).await {
        Ok(0) => {}
        Ok(n) => notes.push(format!("removed {n} JetStream stream(s) of earlier demos")),
        Err(e) => notes.push(format!("could not remove earlier demo streams: {e:#}")),
    }
    notes
}

/// Drops every `redress_demo_<run>` database but the current run's; returns the runs dropped.
async fn drop_earlier_databases(database_url: &str, current_run: &str) -> Result<Vec<String>> {
    use sqlx::Connection as _;
    use std::str::FromStr as _;

    let opts = sqlx::postgres::PgConnectOptions::from_str(database_url)?.database("postgres");
    let mut conn = sqlx::PgConnection::connect_with(&opts).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname ~ '^redress_demo_[0-9]+$' ORDER BY datname",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut dropped = Vec::new();
    for name in names {
        let run = name.trim_start_matches("redress_demo_").to_owned();
        if run == current_run {
            continue;
        }
        // The name matched ^redress_demo_[0-9]+$, so quoting it is safe. No FORCE: a database
        // in use belongs to a demo still running elsewhere.
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\"");
        if sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut conn)
            .await
            .is_ok()
        {
            dropped.push(run);
        }
    }
    let _ = conn.close().await;
    Ok(dropped)
}

/// Deletes the streams of the given demo runs (`DEMO<run>_EVENTS`, `_INTAKE`, …).
async fn delete_streams(nats_url: &str, runs: &[String]) -> Result<usize> {
    use futures::TryStreamExt as _;

    let client = async_nats::connect(nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js.stream_names().try_collect().await?;
    let mut deleted = 0;
    for name in names {
        let ours = runs
            .iter()
            .any(|run| name.starts_with(&format!("DEMO{run}_")));
        if ours && js.delete_stream(&name).await.is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;
    use redress_test_support::NatsServer;

    #[tokio::test]
    async fn only_the_named_earlier_runs_lose_their_streams() {
        let server = NatsServer::start();
        let client = async_nats::connect(server.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        for name in [
            "DEMO1_EVENTS",
            "DEMO1_INTAKE",
            "DEMO12_EVENTS",
            "OTHER_EVENTS",
        ] {
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{}.>", name.to_ascii_lowercase())],
                ..Default::default()
            })
            .await
            .expect("stream");
        }
        let deleted = super::delete_streams(&server.url(), &["1".to_owned()])
            .await
            .expect("delete");
        assert_eq!(deleted, 2);
        let mut left: Vec<String> = js.stream_names().try_collect().await.expect("names");
        left.sort();
        assert_eq!(left, ["DEMO12_EVENTS", "OTHER_EVENTS"]);
    }
}
