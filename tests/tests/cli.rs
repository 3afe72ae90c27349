//! The `redress` staff CLI against the real stack: the five services as separate processes on a
//! real NATS JetStream and PostgreSQL, the CLI run as its own process with bearer tokens.
//!
//! An agent submits the documented example submission → `show` prints it (and its JSON parses)
//! → handler-1 accepts, decides, answers, proposes, records the customer's acceptance and
//! resolves → the agent lists, claims and records the after-resolution revisit → the manager
//! lists the escalations the (seconds-long) SLA caused. Exit codes are checked on the way: a
//! malformed id, a second resolution, a missing token, an unreachable service.

mod common;

use std::time::Duration;

use redress_test_support::{ServiceProcess, TestBed, binary_path};
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
    fn new(services: [&ServiceProcess; 5]) -> Self {
        let flags = [
            "--intake",
            "--routing",
            "--sla",
            "--escalation",
            "--revisit",
        ];
        let addrs = flags
            .iter()
            .zip(services)
            .flat_map(|(f, s)| [f.to_string(), s.grpc_addr.to_string()])
            .collect();
        Self { addrs }
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

    /// Runs `args` with `--json` until `done` accepts the answer (the system is eventually
    /// consistent: events take a moment to reach intake's registry and the revisit service).
    async fn until(&self, token: &str, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let mut last = Value::Null;
        for _ in 0..150 {
            last = self.run(Some(token), &all).await.ok().json();
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{args:?} never satisfied the test; last answer:\n{last:#}");
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
    let cli = Cli::new([
        &stack.intake,
        &stack.routing,
        &stack.sla,
        &stack.escalation,
        &stack.revisit,
    ]);

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
        vec!["handle", "resolve", &id, "--result", "Line card replaced."],
    ] {
        cli.run(Some(HANDLER), &step).await.ok();
    }
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
