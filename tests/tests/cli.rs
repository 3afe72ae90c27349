//! The `redress` staff CLI against the real stack: the five services as separate processes on a
//! real NATS JetStream and PostgreSQL, the CLI run as its own process with bearer tokens.
//!
//! An agent submits the documented example submission → `show` prints it (and its JSON parses)
//! → handler-1 accepts, decides, answers, proposes, records the customer's acceptance and
//! resolves — refused until a feedback records the customer's satisfaction and someone is named
//! responsible (DOMAIN §9) → the agent lists and claims the after-resolution revisit → the
//! manager closes the complaint (`close`; the handler may not) → the agent records the revisit
//! → the manager lists the escalations the (seconds-long) SLA caused. Exit codes are checked
//! on the way: a malformed id, a second resolution, a second close, a missing token, an
//! unreachable service.
//!
//! A second run covers time limits and intake's corrections: an unconfirmed complaint is
//! confirmed → `sla show` lists its clocks → `sla overdue` lists it once its seconds-long
//! completion limit has passed → a manager records a special reason → `reclassify` changes the
//! class `show` reports. Bad flags are usage errors naming the flag, checked before any call.

mod common;

use std::time::Duration;

use redress_test_support::{ServiceProcess, TestBed, binary_path, poll};
use serde_json::Value;

const AGENT: &str = "test-agent-token";
const HANDLER: &str = "test-handler-token";
const MANAGER: &str = "test-manager-token";

/// What one run of the CLI did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "exit {}; stdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// The CLI pointed at the test bed's services.
struct Cli {
    addrs: Vec<String>,
}

impl Cli {
    fn new(stack: &common::Stack) -> Self {
        let services = [
            ("--intake", &stack.intake),
            ("--routing", &stack.routing),
            ("--sla", &stack.sla),
            ("--escalation", &stack.escalation),
            ("--revisit", &stack.revisit),
        ];
        let addrs = services
            .iter()
            .flat_map(|(flag, s)| [flag.to_string(), s.grpc_addr.to_string()])
            .collect();
        Self { addrs }
    }

    /// The same, with the board's address too.
    fn with_board(stack: &common::Stack, board: &ServiceProcess) -> Self {
        let mut cli = Self::new(stack);
        cli.addrs
            .extend(["--board".to_owned(), board.grpc_addr.to_string()]);
        cli
    }

    async fn run(&self, token: Option<&str>, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(binary_path("redress"));
        cmd.args(&self.addrs).args(args).env_remove("REDRESS_TOKEN");
        if let Some(t) = token {
            cmd.env("REDRESS_TOKEN", t);
        }
        let out = cmd.output().await.expect("run redress");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `args` with its standard output a pipe whose reader has gone away (`redress … |
    /// head` once head has read enough).
    async fn run_into_closed_pipe(&self, token: &str, args: &[&str]) -> Run {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = tokio::process::Command::new(binary_path("redress"))
            .args(&self.addrs)
            .args(args)
            .env("REDRESS_TOKEN", token)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            // Not `output()`: it would replace our stdout with a pipe of its own.
            .spawn()
            .expect("run redress")
            .wait_with_output()
            .await
            .expect("redress ran");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `args` with `--json` until `done` accepts the answer (the system is eventually
    /// consistent: events take a moment to reach intake's registry, the SLA monitor and the
    /// revisit service). "Not found" (exit 4) means "not there yet"; any other failure ends
    /// the test at once.
    async fn until(&self, token: &str, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let last = poll(
            Duration::from_secs(45),
            async || {
                let run = self.run(Some(token), &all).await;
                if run.code == 4 {
                    Err(run.stderr)
                } else {
                    Ok(run.ok().json())
                }
            },
            |answer| answer.as_ref().is_ok_and(&done),
        )
        .await;
        match last {
            Ok(answer) if done(&answer) => answer,
            Ok(answer) => panic!("{args:?} never satisfied the test; last answer:\n{answer:#}"),
            Err(stderr) => panic!("{args:?} never satisfied the test; last answer:\n{stderr}"),
        }
    }
}

#[tokio::test]
async fn the_cli_drives_a_complaint_from_submission_to_revisit() {
    let bed = TestBed::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let submission = write(
        "submission.json",
        include_str!("../../docs/examples/submission.json"),
    );
    let stack = common::start(&bed, &[]).await;
    let cli = Cli::new(&stack);

    // Submit the documented example; --json gives the acknowledgement in the proto3 mapping.
    let ack = cli
        .run(Some(AGENT), &["--json", "submit", "--file", &submission])
        .await
        .ok()
        .json();
    let id = ack["complaintId"]
        .as_str()
        .expect("complaintId")
        .to_string();
    let number = ack["complaintNumber"].as_str().expect("number").to_string();

    // From flags, as a counter agent would: recorded and classified.
    let by_flags = cli
        .run(
            Some(AGENT),
            &[
                "--json",
                "submit",
                "--name",
                "李雷",
                "--phone",
                "13900139000",
                "--description",
                "Billed twice for March.",
                "--demand",
                "Refund the second charge.",
                "--category",
                "network_quality",
                "--business",
                "broadband 100M",
                "--channel",
                "counter",
                "--first-contact",
                "e-7",
                "--confirmed-by",
                "signature",
            ],
        )
        .await
        .ok()
        .json();
    assert!(
        by_flags["complaintId"]
            .as_str()
            .is_some_and(|c| c.starts_with("cmp_")),
        "{by_flags}"
    );
    assert_eq!(by_flags["confirmed"], true, "{by_flags}");

    // Show, for people: the number and the timeline heading.
    let shown = cli.run(Some(AGENT), &["show", &id]).await.ok();
    assert!(shown.stdout.contains(&number), "{}", shown.stdout);
    assert!(shown.stdout.contains("timeline:"), "{}", shown.stdout);

    // Routing assigns it to handler-1; `show --json` sees it once intake hears of it.
    cli.until(AGENT, &["show", &id], |v| v["assigneeId"] == "handler-1")
        .await;
    // Nobody acts for three seconds: the SLA monitor reports it overdue, which escalates it.
    cli.until(AGENT, &["show", &id], |v| v["overdue"] == true)
        .await;
    let listed = cli.run(Some(AGENT), &["list"]).await.ok();
    assert!(listed.stdout.contains(&number), "{}", listed.stdout);
    // `redress list | head`: the reader going away ends the command quietly, no panic.
    for args in [&["list"][..], &["--json", "show", &id][..]] {
        let piped = cli.run_into_closed_pipe(AGENT, args).await;
        assert_eq!(piped.code, 0, "{args:?}: {}", piped.stderr);
        assert!(!piped.stderr.contains("panicked"), "{}", piped.stderr);
    }
    let queue = cli
        .run(
            Some(HANDLER),
            &["--json", "queue", "--handler", "handler-1"],
        )
        .await
        .ok()
        .json();
    assert!(
        queue["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["complaintId"] == id.as_str())),
        "{queue:#}"
    );

    // The handler's steps, each a separate run of the CLI.
    for step in [
        vec!["handle", "accept", &id],
        vec![
            "handle",
            "validity",
            &id,
            "--explanation",
            "line card failed",
        ],
        vec![
            "handle",
            "feedback",
            &id,
            "--content",
            "A technician is booked for this afternoon.",
        ],
        vec![
            "handle",
            "propose",
            &id,
            "--solution",
            "Replace the line card; refund three days.",
        ],
        vec!["handle", "respond", &id],
    ] {
        cli.run(Some(HANDLER), &step).await.ok();
    }
    // DOMAIN §9 "Resolution needs feedback": the feedback above did not ask the customer, and
    // the valid complaint names nobody responsible. Refused (exit 5), naming both.
    let early = cli
        .run(
            Some(HANDLER),
            &["handle", "resolve", &id, "--result", "Line card replaced."],
        )
        .await;
    assert_eq!(early.code, 5, "{}", early.stderr);
    assert!(early.stderr.contains("satisfaction"), "{}", early.stderr);
    assert!(
        early.stderr.contains("responsible person"),
        "{}",
        early.stderr
    );
    let asked = cli
        .run(
            Some(HANDLER),
            &[
                "handle",
                "feedback",
                &id,
                "--content",
                "The line card is replaced; are you satisfied?",
                "--satisfied",
            ],
        )
        .await
        .ok();
    assert!(
        asked.stdout.contains("customer satisfied"),
        "{}",
        asked.stdout
    );
    let unnamed = cli
        .run(
            Some(HANDLER),
            &["handle", "resolve", &id, "--result", "Line card replaced."],
        )
        .await;
    assert_eq!(unnamed.code, 5, "{}", unnamed.stderr);
    assert!(
        !unnamed.stderr.contains("satisfaction"),
        "{}",
        unnamed.stderr
    );
    cli.run(
        Some(HANDLER),
        &[
            "handle",
            "resolve",
            &id,
            "--result",
            "Line card replaced.",
            "--responsible",
            "handler-1",
        ],
    )
    .await
    .ok();
    // Resolving twice is an illegal transition: exit 5.
    let again = cli
        .run(
            Some(HANDLER),
            &["handle", "resolve", &id, "--result", "again"],
        )
        .await;
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(again.stderr.starts_with("error: "), "{}", again.stderr);

    // The agent's revisit after resolution: listed, claimed, outcome recorded.
    let due = cli
        .until(AGENT, &["revisits", "list", "--upcoming"], |v| {
            v["revisits"].as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["complaintId"] == id.as_str() && r["kind"] == "REVISIT_KIND_AFTER_RESOLUTION"
                })
            })
        })
        .await;
    let revisit_id = due["revisits"]
        .as_array()
        .and_then(|rs| {
            rs.iter().find(|r| {
                r["complaintId"] == id.as_str() && r["kind"] == "REVISIT_KIND_AFTER_RESOLUTION"
            })
        })
        .and_then(|r| r["revisitId"].as_str())
        .expect("revisit id")
        .to_string();
    cli.run(Some(AGENT), &["revisits", "claim", &revisit_id])
        .await
        .ok();

    // The complaint centre closes it (DOMAIN §9 "Closing"); a handler may not (exit 6).
    let by_handler = cli
        .run(Some(HANDLER), &["close", &id, "--note", "done"])
        .await;
    assert_eq!(by_handler.code, 6, "{}", by_handler.stderr);
    let closed = cli
        .run(
            Some(MANAGER),
            &[
                "--json",
                "close",
                &id,
                "--note",
                "customer satisfied on the phone",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(closed["satisfied"], true, "{closed:#}");
    let twice = cli
        .run(Some(MANAGER), &["close", &id, "--note", "again"])
        .await;
    assert_eq!(twice.code, 5, "{}", twice.stderr);
    // Out of the handler's work queue, listed with `--all`; the registry shows it closed, with
    // routing's entry in the timeline.
    let queue = cli
        .run(
            Some(HANDLER),
            &["--json", "queue", "--handler", "handler-1", "--all"],
        )
        .await
        .ok()
        .json();
    assert!(
        queue["items"].as_array().is_some_and(|items| items
            .iter()
            .any(|i| i["complaintId"] == id.as_str() && i["stage"] == "closed")),
        "{queue:#}"
    );
    cli.until(AGENT, &["show", &id], |v| {
        v["status"] == "closed"
            && v["timeline"].as_array().is_some_and(|t| {
                t.iter().any(|e| {
                    e["sourceService"] == "routing"
                        && e["summary"]
                            .as_str()
                            .is_some_and(|s| s.contains("customer satisfied on the phone"))
                })
            })
    })
    .await;
    let outcome = cli
        .run(
            Some(AGENT),
            &[
                "--json",
                "revisits",
                "outcome",
                &revisit_id,
                "--feelings",
                "happy with the repair",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(outcome["revisit"]["satisfied"], true, "{outcome:#}");

    // The three-second completion limit ran out before the handler resolved it: the manager
    // sees the escalation it raised.
    let escalations = cli
        .until(MANAGER, &["escalations", "list", "--complaint", &id], |v| {
            v["escalations"].as_array().is_some_and(|e| !e.is_empty())
        })
        .await;
    assert_eq!(escalations["escalations"][0]["complaintId"], id.as_str());
    let table = cli
        .run(Some(MANAGER), &["escalations", "list", "--complaint", &id])
        .await
        .ok();
    assert!(table.stdout.contains(&number), "{}", table.stdout);
    // The missed limits it gathered are in the manager's table (DOMAIN §9: one escalation per
    // complaint, its causes listed).
    let causes = escalations["escalations"][0]["causes"]
        .as_array()
        .expect("causes")
        .clone();
    assert!(!causes.is_empty(), "{escalations:#}");
    assert!(table.stdout.contains("CAUSES"), "{}", table.stdout);
    for cause in causes {
        let clock = cause["clock"].as_str().expect("a missed limit's clock");
        let word = clock.trim_start_matches("SLA_CLOCK_").to_lowercase();
        assert!(
            table.stdout.contains(&format!("{word} missed")),
            "{word}: {}",
            table.stdout
        );
    }

    // The timeline as JSON holds every step.
    let view = cli
        .until(AGENT, &["show", &id], |v| {
            v["timeline"]
                .as_array()
                .is_some_and(|t| t.iter().any(|e| e["sourceService"] == "revisit"))
        })
        .await;
    assert_eq!(view["number"], number.as_str());

    // Exit codes scripts rely on.
    let bogus = cli.run(Some(AGENT), &["show", "cmp_bogus"]).await;
    assert_eq!(bogus.code, 3, "{}", bogus.stderr);
    let no_token = cli.run(None, &["show", &id]).await;
    assert_eq!(no_token.code, 2, "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("REDRESS_TOKEN"),
        "{}",
        no_token.stderr
    );
    let bad_token = cli.run(Some("not-a-token"), &["show", &id]).await;
    assert_eq!(bad_token.code, 6, "{}", bad_token.stderr);
    let nowhere = Cli {
        addrs: vec!["--intake".into(), "127.0.0.1:1".into()],
    };
    let unreachable = nowhere.run(Some(AGENT), &["show", &id]).await;
    assert_eq!(unreachable.code, 7, "{}", unreachable.stderr);
}

/// The clock of `kind` (`SLA_CLOCK_…`) in a `GetSlaStatusResponse`.
fn clock<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["clocks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["clock"] == kind))
        .unwrap_or_else(|| panic!("no {kind} clock in:\n{status:#}"))
}

/// Whether a `ListOverdueResponse` / `ListAtRiskResponse` holds `id`'s completion clock.
fn lists_completion_of(page: &Value, id: &str) -> bool {
    page["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["complaintId"] == id && i["clock"]["clock"] == "SLA_CLOCK_COMPLETION")
    })
}

#[tokio::test]
async fn the_cli_reads_and_annotates_time_limits_and_corrects_intake() {
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;
    let cli = Cli::new(&stack);

    // The documented example under a key of its own and without its confirmation: recorded,
    // it waits for `confirm`.
    let mut example: Value =
        serde_json::from_str(include_str!("../../docs/examples/submission.json")).expect("example");
    let details = example["details"].as_object_mut().expect("details");
    details.remove("confirmation");
    details["key"]["externalId"] = "CLI-SLA-1".into();
    let dir = tempfile::tempdir().expect("tempdir");
    let submission = dir.path().join("unconfirmed.json");
    std::fs::write(&submission, example.to_string()).expect("write");
    let ack = cli
        .run(
            Some(AGENT),
            &[
                "--json",
                "submit",
                "--file",
                &submission.display().to_string(),
            ],
        )
        .await
        .ok()
        .json();
    assert_ne!(ack["confirmed"], true, "{ack:#}");
    let id = ack["complaintId"]
        .as_str()
        .expect("complaintId")
        .to_string();
    let number = ack["complaintNumber"].as_str().expect("number").to_string();
    let class = ack["class"].as_str().expect("class").to_string();

    let confirmed = cli
        .run(
            Some(AGENT),
            &[
                "--json",
                "confirm",
                &id,
                "--method",
                "phone",
                "--note",
                "read back",
            ],
        )
        .await
        .ok()
        .json();
    assert_ne!(confirmed["alreadyConfirmed"], true, "{confirmed:#}");
    assert!(
        confirmed["promises"]["completionDue"].is_string(),
        "{confirmed:#}"
    );
    let again = cli
        .run(
            Some(AGENT),
            &["--json", "confirm", &id, "--method", "phone"],
        )
        .await
        .ok()
        .json();
    assert_eq!(again["alreadyConfirmed"], true, "{again:#}");
    let view = cli
        .run(Some(AGENT), &["--json", "show", &id])
        .await
        .ok()
        .json();
    assert_eq!(view["confirmed"], true, "{view:#}");

    // The monitor's four intake clocks, in their documented order; acceptance (60 s, warned at
    // 30 s) is still running with time left. Taken unconfirmed, the complaint also had a
    // confirmation clock, met by `confirm` (a revisit clock may follow later).
    const INTAKE_CLOCKS: [&str; 4] = [
        "SLA_CLOCK_ACCEPTANCE",
        "SLA_CLOCK_FIRST_FEEDBACK",
        "SLA_CLOCK_COMPLETION",
        "SLA_CLOCK_INTERMEDIATE_RESULT",
    ];
    let status = cli
        .until(AGENT, &["sla", "show", &id], |v| {
            v["clocks"].as_array().is_some_and(|cs| {
                INTAKE_CLOCKS
                    .iter()
                    .all(|k| cs.iter().any(|c| c["clock"] == *k))
                    && cs.iter().any(|c| {
                        c["clock"] == "SLA_CLOCK_CONFIRMATION" && c["state"] == "CLOCK_STATE_MET"
                    })
            })
        })
        .await;
    let kinds: Vec<&str> = status["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .filter_map(|c| c["clock"].as_str())
        .filter(|k| INTAKE_CLOCKS.contains(k))
        .collect();
    assert_eq!(
        kinds,
        [
            "SLA_CLOCK_ACCEPTANCE",
            "SLA_CLOCK_FIRST_FEEDBACK",
            "SLA_CLOCK_COMPLETION",
            "SLA_CLOCK_INTERMEDIATE_RESULT"
        ],
        "{status:#}"
    );
    assert_eq!(status["complaintNumber"], number.as_str());
    let acceptance = clock(&status, "SLA_CLOCK_ACCEPTANCE");
    assert_eq!(acceptance["state"], "CLOCK_STATE_RUNNING", "{status:#}");
    assert!(
        acceptance["timeLeft"]
            .as_str()
            .is_some_and(|t| !t.starts_with('-')),
        "{status:#}"
    );
    assert!(
        [
            "CLOCK_STATE_RUNNING",
            "CLOCK_STATE_WARNED",
            "CLOCK_STATE_OVERDUE"
        ]
        .contains(
            &clock(&status, "SLA_CLOCK_COMPLETION")["state"]
                .as_str()
                .unwrap_or("")
        ),
        "{status:#}"
    );
    let table = cli.run(Some(AGENT), &["sla", "show", &id]).await.ok();
    assert!(table.stdout.contains(&number), "{}", table.stdout);
    assert!(table.stdout.contains("acceptance"), "{}", table.stdout);
    assert!(table.stdout.contains(" left"), "{}", table.stdout);

    // Four seconds on, the completion limit has passed: listed overdue for its department, with
    // negative time left; not for another department, and no longer merely at risk.
    let overdue = cli
        .until(
            AGENT,
            &["sla", "overdue", "--department", "dept-network"],
            |v| lists_completion_of(v, &id),
        )
        .await;
    let item = overdue["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|i| {
                i["complaintId"] == id.as_str() && i["clock"]["clock"] == "SLA_CLOCK_COMPLETION"
            })
        })
        .expect("overdue item");
    assert_eq!(item["clock"]["state"], "CLOCK_STATE_OVERDUE", "{overdue:#}");
    assert_eq!(item["departmentId"], "dept-network", "{overdue:#}");
    assert!(
        item["clock"]["timeLeft"]
            .as_str()
            .is_some_and(|t| t.starts_with('-')),
        "{overdue:#}"
    );
    let elsewhere = cli
        .run(
            Some(AGENT),
            &["--json", "sla", "overdue", "--department", "dept-billing"],
        )
        .await
        .ok()
        .json();
    assert!(!lists_completion_of(&elsewhere, &id), "{elsewhere:#}");
    let at_risk = cli
        .run(Some(AGENT), &["--json", "sla", "at-risk"])
        .await
        .ok()
        .json();
    assert!(!lists_completion_of(&at_risk, &id), "{at_risk:#}");
    let table = cli.run(Some(AGENT), &["sla", "overdue"]).await.ok();
    assert!(table.stdout.contains(&number), "{}", table.stdout);
    assert!(table.stdout.contains("overdue by"), "{}", table.stdout);

    // Only a manager may approve a special reason (exit 6 for the handler); the manager's is
    // recorded with the extension granted, and `sla show` reads it back.
    let reason = "Spare line card on order from the supplier.";
    let special = [
        "sla",
        "special-reason",
        &id,
        "--clock",
        "completion",
        "--reason",
        reason,
        "--approved-by",
        "manager-1",
        "--extend-to",
        "2100-01-01",
    ];
    let refused = cli.run(Some(HANDLER), &special).await;
    assert_eq!(refused.code, 6, "{}", refused.stderr);
    let mut as_json = vec!["--json"];
    as_json.extend_from_slice(&special);
    let recorded = cli.run(Some(MANAGER), &as_json).await.ok().json();
    assert_eq!(
        recorded["clock"]["clock"], "SLA_CLOCK_COMPLETION",
        "{recorded:#}"
    );
    assert_eq!(recorded["clock"]["specialReason"], reason, "{recorded:#}");
    assert_eq!(
        recorded["clock"]["specialReasonApprovedBy"], "manager-1",
        "{recorded:#}"
    );
    assert_eq!(
        recorded["clock"]["dueAt"], "2100-01-01T00:00:00Z",
        "{recorded:#}"
    );
    let status = cli
        .run(Some(AGENT), &["--json", "sla", "show", &id])
        .await
        .ok()
        .json();
    assert_eq!(
        clock(&status, "SLA_CLOCK_COMPLETION")["specialReason"],
        reason,
        "{status:#}"
    );
    let table = cli.run(Some(AGENT), &["sla", "show", &id]).await.ok();
    assert!(
        table.stdout.contains("(approved by manager-1)"),
        "{}",
        table.stdout
    );

    // Reclassified: intake's record shows the new class at once, the monitor follows.
    let (to, to_name) = if class == "CLASS_A" {
        ("b", "CLASS_B")
    } else {
        ("A", "CLASS_A")
    };
    let changed = cli
        .run(
            Some(AGENT),
            &[
                "--json",
                "reclassify",
                &id,
                "--class",
                to,
                "--reason",
                "The customer is a hospital: outage is critical.",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(changed["previousClass"], class.as_str(), "{changed:#}");
    let view = cli
        .run(Some(AGENT), &["--json", "show", &id])
        .await
        .ok()
        .json();
    assert_eq!(view["class"], to_name, "{view:#}");
    cli.until(AGENT, &["sla", "show", &id], |v| v["class"] == to_name)
        .await;
}

#[tokio::test]
async fn the_cli_refuses_bad_flags_as_usage_errors_naming_the_flag() {
    // Nothing listens at these addresses: exit 2 rather than 7 shows each flag is checked
    // before any service is called.
    let cli = Cli {
        addrs: ["--intake", "127.0.0.1:1", "--sla", "127.0.0.1:1"]
            .map(String::from)
            .to_vec(),
    };
    let special = |clock: &'static str, reason: &'static str| {
        vec![
            "sla",
            "special-reason",
            "cmp_x",
            "--clock",
            clock,
            "--reason",
            reason,
            "--approved-by",
            "manager-1",
        ]
    };
    let cases: [(Vec<&str>, &str); 11] = [
        (special("lunch", "late part"), "--clock"),
        (special("unspecified", "late part"), "--clock"),
        (special("completion", "  "), "--reason"),
        (
            vec![
                "sla",
                "special-reason",
                "cmp_x",
                "--clock",
                "completion",
                "--reason",
                "r",
            ],
            "--approved-by",
        ),
        (vec!["sla", "overdue", "--class", "e"], "--class"),
        (vec!["sla", "at-risk", "--class", "unspecified"], "--class"),
        (
            vec!["reclassify", "cmp_x", "--class", "E", "--reason", "r"],
            "--class",
        ),
        (vec!["reclassify", "cmp_x", "--class", "A"], "--reason"),
        (vec!["confirm", "cmp_x", "--method", "fax"], "--method"),
        (vec!["confirm", "cmp_x"], "--method"),
        (vec!["queue"], "--department"),
    ];
    for (args, flag) in cases {
        let run = cli.run(Some(AGENT), &args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
    // An unknown clock's error lists the clocks there are.
    let run = cli.run(Some(AGENT), &special("lunch", "late part")).await;
    assert!(
        run.stderr
            .contains("acceptance, first_feedback, completion"),
        "{}",
        run.stderr
    );
}

/// The organisation in a canonical order: routing lists departments and staff by id (rules keep
/// the order they are tried in).
fn by_id(mut f: redress_proto::org::OrgFile) -> redress_proto::org::OrgFile {
    f.departments.sort_by(|a, b| a.id.cmp(&b.id));
    f.staff.sort_by(|a, b| a.id.cmp(&b.id));
    f
}

/// `redress org` (issue 14): the organisation as data an operator manages. The sample
/// organisation routing was seeded with exports as the same file; a changed file applies (and
/// applying it again changes nothing) and exports back as written; a bad file is refused with
/// every bad entry named, and changes nothing; only an operator may apply.
#[tokio::test]
async fn the_cli_exports_and_applies_the_organisation_as_a_file() {
    use redress_proto::org::{OrgFile, Rule, Staff};
    const OPERATOR: &str = "test-operator-token";
    let bed = TestBed::start().await;
    let sample = std::fs::read_to_string(
        redress_test_support::workspace_root().join("deploy/demo/seed.toml"),
    )
    .expect("sample organisation");
    let stack = common::start_with(&bed, common::POLICY, &sample, &[]).await;
    let cli = Cli::new(&stack);
    let seeded = OrgFile::parse(&sample).expect("sample parses");

    let exported = cli
        .run(Some(OPERATOR), &["org", "export"])
        .await
        .ok()
        .stdout;
    let got = OrgFile::parse(&exported).unwrap_or_else(|e| panic!("{e:?}:\n{exported}"));
    assert_eq!(by_id(got), by_id(seeded.clone()), "{exported}");

    // A new handler in billing, handler-1 on leave, one more rule.
    let mut changed = seeded.clone();
    changed.staff.push(Staff {
        id: "handler-3".into(),
        name: "Zhao Lei (handler)".into(),
        department_id: "dept-billing".into(),
        role: "handler".into(),
        seniority: 1,
        ..Default::default()
    });
    changed
        .staff
        .iter_mut()
        .find(|s| s.id == "handler-1")
        .expect("handler-1")
        .on_leave = true;
    changed.rules.push(Rule {
        id: "sms".into(),
        category: "sms_spam".into(),
        channel: "hotline".into(),
        department_id: "dept-billing".into(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("org.toml");
    std::fs::write(&path, changed.to_toml()).expect("write");
    let path = path.to_str().expect("utf-8 path");

    let refused = cli.run(Some(HANDLER), &["org", "apply", "-f", path]).await;
    assert_eq!(
        refused.code, 6,
        "a handler may not apply: {}",
        refused.stderr
    );
    let dry = cli
        .run(Some(OPERATOR), &["org", "apply", "-f", path, "--dry-run"])
        .await
        .ok();
    assert!(dry.stdout.contains("valid; would apply"), "{}", dry.stdout);
    let applied = cli
        .run(Some(OPERATOR), &["org", "apply", "-f", path])
        .await
        .ok();
    assert!(applied.stdout.contains("1 created"), "{}", applied.stdout);
    let again = cli
        .run(Some(OPERATOR), &["org", "apply", "-f", path])
        .await
        .ok();
    assert!(again.stdout.contains("(0 created"), "{}", again.stdout);
    let exported = cli
        .run(Some(OPERATOR), &["org", "export"])
        .await
        .ok()
        .stdout;
    assert_eq!(
        by_id(OrgFile::parse(&exported).expect("parses")),
        by_id(changed.clone()),
        "{exported}"
    );
    let shown = cli.run(Some(OPERATOR), &["org", "show"]).await.ok().stdout;
    assert!(
        shown.contains("handler-3") && shown.contains("sms_spam"),
        "{shown}"
    );

    // A bad file: every bad entry named, exit 3, nothing changed.
    std::fs::write(
        dir.path().join("bad.toml"),
        "default_department = \"dept-network\"\n\
         [[departments]]\nid = \"dept-network\"\nname = \"\"\n\
         [[staff]]\nid = \"h-9\"\nname = \"Nine\"\ndepartment_id = \"dept-network\"\nrole = \"pilot\"\n\
         [[rules]]\nid = \"r\"\ndepartment_id = \"nowhere\"\n",
    )
    .expect("write");
    let bad = cli
        .run(
            Some(OPERATOR),
            &[
                "org",
                "apply",
                "-f",
                dir.path().join("bad.toml").to_str().expect("path"),
            ],
        )
        .await;
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    for named in [
        "departments[0] (dept-network).name",
        "staff[0] (h-9).role",
        "rules[0] (r).department_id",
    ] {
        assert!(bad.stderr.contains(named), "{named} in {}", bad.stderr);
    }
    let after = cli
        .run(Some(OPERATOR), &["org", "export"])
        .await
        .ok()
        .stdout;
    assert_eq!(after, exported, "a refused file changes nothing");
}

/// `redress deadletters` (issue 14): an event no consumer can read is dead-lettered by every
/// service that consumes it; an operator lists them across the five services and the board,
/// shows one, and asks for its replay — which the service's consumer answers within a second
/// (here: refused again, the message being unreadable, with the reason kept). Others may not
/// look.
#[tokio::test]
async fn the_cli_lists_shows_and_replays_dead_letters() {
    const OPERATOR: &str = "test-operator-token";
    let bed = TestBed::start().await;
    let stack = common::start(&bed, &[]).await;
    let board = bed
        .spawn(
            "redress-board",
            &[("REDRESS_BOARD_HTTP_ADDR", "127.0.0.1:0")],
        )
        .await;
    let cli = Cli::with_board(&stack, &board);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "evt_unreadable");
    bed.js
        .publish_with_headers(
            format!("{}.events.complaint.assigned", bed.prefix),
            headers,
            bytes::Bytes::from_static(b"\xff\xfenot an event"),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    let listed = cli
        .until(OPERATOR, &["deadletters", "list"], |v| {
            // Every consumer gives up on its own time: wait for the two this test reads.
            let from = |service: &str| {
                v["deadLetters"].as_array().is_some_and(|d| {
                    d.iter().any(|d| {
                        d["consumer"]
                            .as_str()
                            .is_some_and(|c| c.starts_with(&format!("{service}-")))
                    })
                })
            };
            from("board") && from("sla-monitor")
        })
        .await;
    let letters = listed["deadLetters"].as_array().expect("list");
    assert!(
        letters.iter().any(|d| d["consumer"]
            .as_str()
            .is_some_and(|c| c.starts_with("board-"))
            && d["messageId"] == "evt_unreadable"),
        "the board's projection gave up on it too, and the list includes the board: {listed}"
    );
    let sla = letters
        .iter()
        .find(|d| {
            d["consumer"]
                .as_str()
                .is_some_and(|c| c.starts_with("sla-monitor-"))
        })
        .unwrap_or_else(|| panic!("the SLA monitor's dead letter: {listed}"));
    assert_eq!(sla["messageId"], "evt_unreadable");
    let consumer = sla["consumer"].as_str().expect("consumer").to_owned();

    let shown = cli
        .run(
            Some(OPERATOR),
            &["deadletters", "show", &consumer, "evt_unreadable"],
        )
        .await
        .ok()
        .stdout;
    assert!(
        shown.contains("waiting") && shown.contains("Event"),
        "{shown}"
    );
    let refused = cli.run(Some(HANDLER), &["deadletters", "list"]).await;
    assert_eq!(refused.code, 6, "only operators: {}", refused.stderr);

    cli.run(
        Some(OPERATOR),
        &["deadletters", "replay", &consumer, "evt_unreadable"],
    )
    .await
    .ok();
    let after = cli
        .until(
            OPERATOR,
            &["deadletters", "show", &consumer, "evt_unreadable"],
            |v| v["replayError"].as_str().is_some_and(|e| !e.is_empty()),
        )
        .await;
    assert!(after.get("replayedAt").is_none(), "not applied: {after}");
    let table = cli
        .run(
            Some(OPERATOR),
            &["deadletters", "list", "--service", "sla-monitor"],
        )
        .await
        .ok()
        .stdout;
    assert!(table.contains("replay refused"), "{table}");
}
