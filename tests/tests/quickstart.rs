//! The README's quick start, played as written: plain `redress up` on a fresh database (no
//! `--demo`, no organisation given), then every command of the README's `redress` example
//! block, each of which must succeed. So the README cannot drift from what the system does, and
//! a fresh install routes complaints (issue 14: it used to dead-letter every one).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redress_test_support::{binary_path, workspace_root};
use serde_json::Value;

/// gRPC ports with `--port-offset 11100`: above the kernel's ephemeral range, and apart from
/// the demo test's offset (11000).
const OFFSET: u16 = 11_100;
const NATS_PORT: &str = "4925";

/// The env file `redress up` writes in its data directory: the CLI finds the services through
/// it, whatever the port offset (issue 14). Set once `up` has chosen its data directory.
static CLI_ENV: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// The README's example block of `redress` commands: the fenced `sh` block that starts with
/// `export REDRESS_TOKEN=`, continuation lines joined.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let start = readme
        .find("```sh\nexport REDRESS_TOKEN=")
        .expect("the README's redress example block");
    let block = &readme[start + "```sh\n".len()..];
    let block = &block[..block.find("```").expect("end of block")];
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Splits a command line as `sh` would for the forms the README uses: words, "double" and
/// 'single' quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The running `redress up` and its database, both gone on drop (also when the test fails).
struct Up(Child, String);

impl Drop for Up {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {}", self.1))
            .status();
    }
}

impl Up {
    /// SIGTERM, as Ctrl-C would, then waits for everything to stop.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

fn redress(token: &str, args: &[String]) -> (i32, String, String) {
    let out = Command::new(binary_path("redress"))
        .args(args)
        .env("REDRESS_ENV_FILE", CLI_ENV.get().expect("up started"))
        .env("REDRESS_TOKEN", token)
        .current_dir(workspace_root())
        .output()
        .expect("run redress");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_readme_quick_start_works_on_a_fresh_install() {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("up.log");
    let database = format!("redress_quickstart_{run}");
    let child = Command::new(binary_path("redress"))
        .args(["up", "--port-offset", &OFFSET.to_string()])
        .args(["--own-nats-port", NATS_PORT])
        .args([
            "--database-url",
            &format!("postgres://postgres@127.0.0.1:5432/{database}"),
        ])
        .args(["--subject-prefix", &format!("qs{run}")])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("REDRESS_NATS_URL")
        .env_remove("REDRESS_ROUTING_SEED")
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("redress up");
    let up = Up(child, database);
    let up_log = || std::fs::read_to_string(&log).unwrap_or_default();
    CLI_ENV.set(data.path().join("cli.env")).expect("set once");

    // Ready when every service answers: `list` succeeds.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (code, _, err) = redress("dev-agent-token", &["list".into()]);
        if code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready in 90 s: {err}\n{}",
            up_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        up_log().contains("export REDRESS_ENV_FILE="),
        "up tells where the CLI finds the addresses:\n{}",
        up_log()
    );
    assert!(
        up_log().contains("sample organisation"),
        "up says which organisation routing starts with:\n{}",
        up_log()
    );

    let mut token = String::new();
    let mut complaint = String::new();
    for line in readme_commands() {
        let mut w = words(&line);
        if w.first().map(String::as_str) == Some("export") {
            token = w[1]
                .strip_prefix("REDRESS_TOKEN=")
                .expect("export REDRESS_TOKEN=…")
                .to_owned();
            continue;
        }
        let mut this_token = token.clone();
        while let Some(t) = w.first().and_then(|x| x.strip_prefix("REDRESS_TOKEN=")) {
            this_token = t.to_owned();
            w.remove(0);
        }
        assert_eq!(w.first().map(String::as_str), Some("redress"), "{line}");
        w.remove(0);
        if w.iter().any(|x| x == "<complaint>") {
            // The first submission's complaint (by its number), once routing assigned it to the
            // handler.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (code, out, _) = redress(
                    &this_token,
                    &["--json".into(), "show".into(), complaint.clone()],
                );
                let view: Value = serde_json::from_str(&out).unwrap_or_default();
                if code == 0 && view["assigneeId"] == "handler-1" {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{complaint} never assigned (a fresh install must route): {out}\n{}",
                    up_log()
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            for x in w.iter_mut() {
                if x == "<complaint>" {
                    *x = complaint.clone();
                }
            }
        }
        let (code, out, err) = redress(&this_token, &w);
        assert_eq!(code, 0, "`{line}` failed:\n{out}\n{err}");
        if complaint.is_empty() && w.first().map(String::as_str) == Some("submit") {
            let mut json = vec!["--json".to_owned()];
            json.extend(w.iter().cloned());
            // The same submission again (its key makes it idempotent) to read its id.
            let (_, out, _) = redress(&this_token, &json);
            let ack: Value = serde_json::from_str(&out).expect("acknowledgement");
            // People use the number they were told; every command takes it.
            complaint = ack["complaintNumber"]
                .as_str()
                .expect("complaintNumber")
                .to_owned();
        }
    }
    assert!(!complaint.is_empty(), "the README submits a complaint");
    drop(up);
}
