//! The live operations board on the whole system: the five services and the board as
//! processes on real NATS JetStream and PostgreSQL.
//!
//! - The event gateway: Server-Sent Events in JSON, refused without a token, filtered by kind,
//!   department and class, the customer masked for those who may not see them, and resumed
//!   after `Last-Event-ID` from JetStream.
//! - The wallboard in a real headless Chromium: a complaint submitted over gRPC appears, goes
//!   at risk, then overdue, its escalation appears — and all of it is still there after a
//!   reload and after the board service restarts. A screenshot is kept for CI's artifacts.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use redress_proto::v1::{self, intake_service_client::IntakeServiceClient};
use redress_test_support::sse::{SseClient, SseEvent, SseResponse};
use redress_test_support::{Browser, ServiceProcess, TestBed, authed, poll, workspace_root};

const WAIT: Duration = Duration::from_secs(30);

async fn start_board(bed: &TestBed) -> (ServiceProcess, SocketAddr) {
    let board = bed
        .spawn(
            "redress-board",
            &[("REDRESS_BOARD_HTTP_ADDR", "127.0.0.1:0")],
        )
        .await;
    let http = *board
        .listening
        .get("http")
        .expect("the board names its HTTP address");
    (board, http)
}

async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseClient {
    match SseClient::connect(addr, path, headers).await {
        SseResponse::Stream(s) => s,
        SseResponse::Refused { status, body } => panic!("{path}: refused {status}: {body}"),
    }
}

async fn submit(bed: &TestBed, stack: &common::Stack, external_id: &str) -> v1::Acknowledgement {
    let mut intake = IntakeServiceClient::new(bed.channel(&stack.intake).await);
    intake
        .submit(authed(
            "test-agent-token",
            v1::SubmitRequest {
                details: Some(common::complaint(external_id)),
            },
        ))
        .await
        .expect("submit")
        .into_inner()
}

/// Events until one of `kind` about `complaint` arrives (or none within the wait).
async fn until_kind(
    s: &mut SseClient,
    kind: &str,
    complaint: &str,
) -> Option<(SseEvent, serde_json::Value)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let e = s.next(WAIT).await?;
        let v: serde_json::Value = serde_json::from_str(&e.data).expect("event data is JSON");
        if v["kind"] == kind && v["complaint_id"] == complaint {
            return Some((e, v));
        }
    }
    None
}

#[tokio::test]
async fn the_gateway_streams_events_as_json_filtered_masked_and_resumable() {
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;
    let (board, http) = start_board(&bed).await;

    // No token, an unknown token, a bad filter: refused, naming what is wrong.
    for (path, headers, status, field) in [
        ("/events", vec![], 401, "access_token"),
        (
            "/events",
            vec![("Authorization", "Bearer nope")],
            401,
            "access_token",
        ),
        (
            "/events?class=E&access_token=test-gm-token",
            vec![],
            400,
            "class",
        ),
        (
            "/events?kind=complaint.nonsense&access_token=test-gm-token",
            vec![],
            400,
            "kind",
        ),
        (
            "/events?access_token=test-gm-token",
            vec![("Last-Event-ID", "x")],
            400,
            "Last-Event-ID",
        ),
    ] {
        match SseClient::connect(http, path, &headers).await {
            SseResponse::Refused { status: got, body } => {
                assert_eq!(got, status, "{path}: {body}");
                assert!(body.contains(field), "{path}: {body} names {field}");
            }
            SseResponse::Stream(_) => panic!("{path} was not refused"),
        }
    }

    // Who may see the customer sees them; a wall screen (the read-only viewer role) sees them
    // masked.
    let mut agent = open(
        http,
        "/events?kind=complaint&access_token=test-agent-token",
        &[],
    )
    .await;
    let mut viewer = open(
        http,
        "/events?kind=complaint.received",
        &[("Authorization", "Bearer test-viewer-token")],
    )
    .await;
    let mut other_department = open(
        http,
        "/events?department=dept-billing&access_token=test-gm-token",
        &[],
    )
    .await;
    let mut sla_only = open(
        http,
        "/events?kind=sla&class=C&access_token=test-gm-token",
        &[],
    )
    .await;

    let ack = submit(&bed, &stack, "board-sse-1").await;
    let id = ack.complaint_id.clone();
    let phone = common::complaint("board-sse-1")
        .customer
        .expect("customer")
        .phone;

    let (received, json) = until_kind(&mut agent, "complaint.received", &id)
        .await
        .expect("the agent's stream carries the complaint");
    assert_eq!(
        json["event"]["complaintReceived"]["complaintNumber"],
        ack.complaint_number
    );
    // Intake keeps the number in international form: shown in full to the agent.
    let full = json["event"]["complaintReceived"]["details"]["customer"]["phone"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(full.ends_with(&phone) && !full.contains('*'), "{full}");
    let seq: u64 = received
        .id
        .as_deref()
        .expect("id")
        .parse()
        .expect("id is a sequence");
    assert_eq!(json["seq"], seq);
    assert!(
        json["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{json}"
    );

    let (_, masked) = until_kind(&mut viewer, "complaint.received", &id)
        .await
        .expect("the viewer's stream carries it too");
    let shown = masked["event"]["complaintReceived"]["details"]["customer"]["phone"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !shown.contains(&phone) && shown.contains('*'),
        "masked for the wall screen (viewer): {shown}"
    );

    // The kind filter: the agent asked for complaint.* and gets the assignment too.
    let (_, assigned) = until_kind(&mut agent, "complaint.assigned", &id)
        .await
        .expect("assigned");
    assert_eq!(assigned["department"], "dept-network");

    // With the policy of seconds it warns; the sla-only stream sees it, the other
    // department's stream sees nothing of this complaint.
    let (_, warning) = until_kind(&mut sla_only, "sla.warning", &id)
        .await
        .expect("warning");
    assert_eq!(warning["class"], "C");
    let mut leaked = Vec::new();
    while let Some(e) = other_department.next(Duration::from_millis(500)).await {
        leaked.push(e.data);
    }
    assert!(
        leaked.iter().all(|d| !d.contains(&id)),
        "dept-billing's stream carried dept-network's complaint: {leaked:?}"
    );

    // The viewer reads; it may not change anything over gRPC.
    let mut intake = IntakeServiceClient::new(bed.channel(&stack.intake).await);
    let refused = intake
        .submit(authed(
            "test-viewer-token",
            v1::SubmitRequest {
                details: Some(common::complaint("board-sse-viewer")),
            },
        ))
        .await
        .expect_err("a viewer may not submit");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // The reports over gRPC, and through the `redress` command, as the viewer sees them.
    let mut reports = v1::board_service_client::BoardServiceClient::new(bed.channel(&board).await);
    let number = ack.complaint_number.clone();
    let csv = poll(
        WAIT,
        async || {
            let r = reports
                .get_board_report(authed(
                    "test-viewer-token",
                    v1::GetBoardReportRequest {
                        kind: v1::BoardReportKind::Daily as i32,
                        period: String::new(),
                        format: v1::ReportFormat::Csv as i32,
                    },
                ))
                .await
                .expect("daily report")
                .into_inner();
            String::from_utf8(r.body).expect("utf-8")
        },
        |csv| csv.contains(&number),
    )
    .await;
    assert!(csv.starts_with("number,received_at,class"), "{csv}");
    assert!(csv.contains(&number), "{csv}");
    let refused = reports
        .get_board_report(authed(
            "test-viewer-token",
            v1::GetBoardReportRequest::default(),
        ))
        .await
        .expect_err("no kind");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("kind"), "{refused:?}");
    let cli = tokio::process::Command::new(redress_test_support::binary_path("redress"))
        .args([
            "--board",
            &board.grpc_addr.to_string(),
            "--token",
            "test-viewer-token",
            "reports",
            "daily",
            "--csv",
        ])
        .env("REDRESS_ENV_FILE", "/dev/null")
        .output()
        .await
        .expect("run redress");
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "redress reports daily: {stdout} {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(stdout.contains(&number), "{stdout}");

    // Resuming after the received event: everything since comes back from JetStream, in order,
    // starting right after it, although it was published before this client connected.
    let mut resumed = open(
        http,
        "/events?kind=complaint&access_token=test-agent-token",
        &[("Last-Event-ID", &seq.to_string())],
    )
    .await;
    let first = resumed.next(WAIT).await.expect("a replayed event");
    let first_seq: u64 = first.id.as_deref().expect("id").parse().expect("seq");
    assert!(first_seq > seq, "resumes after {seq}, got {first_seq}");
    let (_, again) = until_kind(&mut resumed, "complaint.assigned", &id)
        .await
        .or_else(|| {
            let v: serde_json::Value = serde_json::from_str(&first.data).ok()?;
            (v["kind"] == "complaint.assigned").then(|| (first.clone(), v))
        })
        .expect("the assignment is replayed");
    assert_eq!(again["complaint_id"], id.as_str());
}

/// The monthly analysis over HTTP as `token` sees it.
async fn monthly(http: SocketAddr, token: &str, extra: &str) -> String {
    reqwest::get(format!(
        "http://{http}/api/reports/monthly?access_token={token}{extra}"
    ))
    .await
    .expect("GET the monthly analysis")
    .text()
    .await
    .expect("its body")
}

/// DOMAIN §7 and §8 on the board: the monthly analysis breaks complaints down by cause, and
/// gives each department's complaint rate and band from the business volume entered at the
/// escalation service — the same rate and band escalation's own monthly report gives.
#[tokio::test]
async fn the_monthly_analysis_shows_causes_and_the_rate_band_escalation_reports() {
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;
    let (_board, http) = start_board(&bed).await;
    let ack = submit(&bed, &stack, "board-rates-1").await;
    let id = ack.complaint_id.clone();

    // The handler accepts it (once routing has assigned it), finds it valid and records the
    // network's fault.
    let mut routing =
        v1::routing_service_client::RoutingServiceClient::new(bed.channel(&stack.routing).await);
    let accepted = poll(
        WAIT,
        async || {
            routing
                .accept_complaint(authed(
                    "test-handler-token",
                    v1::AcceptComplaintRequest {
                        complaint_id: id.clone(),
                    },
                ))
                .await
        },
        Result::is_ok,
    )
    .await;
    accepted.expect("the handler accepts the complaint");
    routing
        .decide_validity(authed(
            "test-handler-token",
            v1::DecideValidityRequest {
                complaint_id: id.clone(),
                valid: true,
                explanation: "the line card failed".into(),
            },
        ))
        .await
        .expect("decide it valid");
    routing
        .record_cause(authed(
            "test-handler-token",
            v1::RecordCauseRequest {
                complaint_id: id.clone(),
                cause: "a line card failed".into(),
                responsibility: v1::Responsibility::CompanyNetwork as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("record the cause");

    // The month as the board counts it (the policy's time zone), and its business volume.
    let first: serde_json::Value =
        serde_json::from_str(&monthly(http, "test-gm-token", "").await).expect("JSON");
    let month = first["month"].as_str().expect("month").to_owned();
    // One complaint in 100: T = 1.00 %, far above the 0.80 % threshold, so a penalty band.
    // Entered the way an operator does, with the `redress` command.
    let entered = tokio::process::Command::new(redress_test_support::binary_path("redress"))
        .args([
            "--escalation",
            &stack.escalation.grpc_addr.to_string(),
            "--token",
            "test-operator-token",
            "reports",
            "volume",
            "dept-network",
            &month,
            "100",
        ])
        .env("REDRESS_ENV_FILE", "/dev/null")
        .output()
        .await
        .expect("run redress");
    let said = String::from_utf8_lossy(&entered.stdout);
    assert!(
        entered.status.success() && said.contains("none before"),
        "redress reports volume: {said} {}",
        String::from_utf8_lossy(&entered.stderr)
    );
    let mut escalation = v1::escalation_service_client::EscalationServiceClient::new(
        bed.channel(&stack.escalation).await,
    );

    let report = poll(
        WAIT,
        async || {
            serde_json::from_str::<serde_json::Value>(&monthly(http, "test-gm-token", "").await)
                .expect("JSON")
        },
        |r| {
            let cause_known = r["breakdowns"].as_array().is_some_and(|b| {
                b.iter().any(|d| {
                    d["dimension"] == "cause"
                        && d["tallies"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|t| t["key"] == "company_network"))
                })
            });
            let rated = r["rates"].as_array().is_some_and(|rates| {
                rates
                    .iter()
                    .any(|x| x["department_id"] == "dept-network" && x["business_volume"] == 100)
            });
            cause_known && rated
        },
    )
    .await;
    let rates = report["rates"].as_array().expect("rates");
    let network = rates
        .iter()
        .find(|x| x["department_id"] == "dept-network")
        .unwrap_or_else(|| panic!("no rate for dept-network: {report}"));
    assert_eq!(network["business_volume"], 100, "{network}");
    let causes = report["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .find(|d| d["dimension"] == "cause")
        .unwrap_or_else(|| panic!("no cause breakdown: {report}"));
    assert!(
        causes["tallies"]
            .as_array()
            .expect("tallies")
            .iter()
            .any(|t| t["key"] == "company_network" && t["received"] == 1),
        "{causes}"
    );

    // Escalation's own monthly report, once it has counted the same complaints.
    let board_complaints = network["complaints"].as_u64().expect("complaints");
    assert!(board_complaints >= 1, "{network}");
    let theirs = poll(
        WAIT,
        async || {
            escalation
                .monthly_report(authed(
                    "test-gm-token",
                    v1::MonthlyReportRequest {
                        month: month.clone(),
                        department_id: "dept-network".into(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("escalation's monthly report")
                .into_inner()
        },
        |r| {
            r.departments
                .iter()
                .any(|d| u64::from(d.complaints) == board_complaints)
        },
    )
    .await;
    let theirs = theirs
        .departments
        .iter()
        .find(|d| d.department_id == "dept-network")
        .unwrap_or_else(|| panic!("escalation reports no dept-network: {theirs:?}"));
    assert_eq!(u64::from(theirs.complaints), board_complaints);
    assert_eq!(theirs.business_volume, 100);
    assert_eq!(
        network["rate_bp"].as_u64(),
        theirs.rate_bp.map(u64::from),
        "the board's T is escalation's: {network} / {theirs:?}"
    );
    assert_eq!(
        network["band"].as_str(),
        theirs.penalty_band.as_ref().map(|b| b.label.as_str()),
        "the same band: {network} / {theirs:?}"
    );
    assert_eq!(
        network["head_penalty_fen"].as_i64(),
        Some(theirs.head_penalty_fen),
        "{network}"
    );

    // The CSV carries the rate row with its band; a handler, who sees only their own
    // complaints, gets no department's rate.
    let csv = monthly(http, "test-gm-token", "&format=csv").await;
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("business_volume,rate_percent,band,head_penalty_fen"),
        "{header}"
    );
    let band = network["band"].as_str().expect("a band");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("complaint_rate,") && l.contains(band) && l.contains(",100,")),
        "{csv}"
    );
    let handler: serde_json::Value =
        serde_json::from_str(&monthly(http, "test-handler-token", "").await).expect("JSON");
    assert_eq!(handler["rates"], serde_json::json!([]), "{handler}");
}

/// The text of `selector` once it contains `needle` (or as it is when the wait runs out, for
/// the assertion that follows to show).
async fn shows(browser: &Browser, selector: &str, needle: &str) -> String {
    poll(
        WAIT,
        async || browser.text(selector).await,
        |t| t.contains(needle),
    )
    .await
}

fn artifact(name: &str) -> PathBuf {
    std::env::var_os("REDRESS_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/artifacts"))
        .join(name)
}

#[tokio::test]
async fn the_wallboard_shows_a_complaint_going_at_risk_overdue_and_escalated_in_a_real_browser() {
    let bed = TestBed::start().await;
    // A completion limit long enough to see the complaint at risk before it is overdue.
    let policy = common::POLICY.replace(
        "A = \"4s\"\nB = \"4s\"\nC = \"4s\"\nD = \"4s\"",
        "A = \"12s\"\nB = \"12s\"\nC = \"12s\"\nD = \"12s\"",
    );
    let stack = common::start_with(&bed, &policy, common::SEED, &[]).await;
    let (mut board, http) = start_board(&bed).await;
    let browser = Browser::start().await;
    let page = format!("http://{http}/?access_token=test-viewer-token");
    browser.goto(&page).await;
    let live = poll(
        WAIT,
        async || browser.text("#status").await,
        |s| s == "live",
    )
    .await;
    assert_eq!(live, "live", "the page connects to the event stream");

    let ack = submit(&bed, &stack, "board-browser-1").await;
    let number = ack.complaint_number.clone();

    // It appears in the open counts and, at half its limit, on the at-risk list with a countdown.
    let open = shows(&browser, "#counts", "Network Operations").await;
    assert!(open.contains("Network Operations"), "open counts: {open}");
    let at_risk = shows(&browser, "#at-risk", &number).await;
    assert!(at_risk.contains(&number), "at risk: {at_risk}");
    assert!(
        at_risk.contains("left") || at_risk.contains("ago"),
        "a countdown: {at_risk}"
    );
    browser.screenshot(&artifact("board-at-risk.png")).await;

    // Past its limit: overdue with how late, and the department manager's escalation waiting.
    let overdue = shows(&browser, "#overdue", &number).await;
    assert!(
        overdue.contains(&number) && overdue.contains("late"),
        "overdue: {overdue}"
    );
    let waiting = shows(&browser, "#escalations", "Manager One").await;
    assert!(
        waiting.contains(&number) && waiting.contains("Manager One"),
        "escalations: {waiting}"
    );
    let ticker = browser.text("#ticker").await;
    assert!(!ticker.is_empty(), "the ticker tells the events in words");
    browser.screenshot(&artifact("board.png")).await;

    // A reload shows the same board (read back from the projection).
    browser.reload().await;
    let overdue = shows(&browser, "#overdue", &number).await;
    assert!(overdue.contains(&number), "after a reload: {overdue}");

    // The board service restarts: the page reconnects by itself and the state is still there.
    board.kill();
    drop(board);
    let (_board, http_again) = {
        let b = bed
            .spawn(
                "redress-board",
                &[("REDRESS_BOARD_HTTP_ADDR", &http.to_string())],
            )
            .await;
        let addr = *b.listening.get("http").expect("http");
        (b, addr)
    };
    assert_eq!(http_again, http);
    let back = poll(
        WAIT,
        async || browser.text("#status").await,
        |s| s == "live",
    )
    .await;
    assert_eq!(back, "live", "the page reconnected after the restart");
    let overdue = shows(&browser, "#overdue", &number).await;
    assert!(
        overdue.contains(&number),
        "after the board restarted: {overdue}"
    );

    // The reports: today's complaint log with its charts, the month by category, the year by
    // department, and the same as CSV.
    browser
        .goto(&format!(
            "http://{http}/reports?access_token=test-viewer-token"
        ))
        .await;
    let log = shows(&browser, "#daily-log", &number).await;
    assert!(
        log.contains(&number) && log.contains("Network Operations"),
        "daily log: {log}"
    );
    let bars = browser
        .eval("return document.querySelectorAll('svg rect.bar').length;")
        .await;
    assert!(bars.as_u64().unwrap_or(0) >= 2, "charts drawn: {bars}");
    browser.screenshot(&artifact("reports-daily.png")).await;
    browser
        .eval("document.querySelector('[data-report=monthly]').click(); return true;")
        .await;
    let monthly = shows(&browser, "#report", "By category").await;
    assert!(
        monthly.contains("network_quality") && monthly.contains("hotline"),
        "monthly: {monthly}"
    );
    // The rate panel is drawn; with no business volume entered it says so per department.
    let rates = shows(&browser, "#rates", "not entered").await;
    assert!(
        rates.contains("Complaint rate T") && rates.contains("not entered"),
        "rates: {rates}"
    );
    browser.screenshot(&artifact("reports-monthly.png")).await;
    browser
        .eval("document.querySelector('[data-report=yearly]').click(); return true;")
        .await;
    let yearly = shows(&browser, "#report", "Network Operations").await;
    assert!(yearly.contains("Network Operations"), "yearly: {yearly}");
    let csv = browser
        .eval(
            "return fetch('/api/reports/daily?format=csv&access_token=test-viewer-token')\
             .then(r => r.text());",
        )
        .await;
    let csv = csv.as_str().unwrap_or_default();
    assert!(csv.starts_with("number,received_at,class"), "{csv}");
    assert!(csv.contains(&number), "{csv}");
    let refused = browser
        .eval(
            "return fetch('/api/reports/monthly?period=13-2026&access_token=test-viewer-token')\
             .then(r => r.status + ' ' + r.headers.get('content-type'));",
        )
        .await;
    assert_eq!(
        refused.as_str(),
        Some("400 application/json"),
        "a bad period is refused"
    );
}
