//! The README's first command with `--demo`, as a newcomer runs it: `redress up` starts NATS,
//! PostgreSQL and the five services, plays the demo through them, and stops everything. It
//! also clears away the database an earlier demo run left behind.

use std::process::Command;

/// Runs SQL on the machine's PostgreSQL (the one `redress up` uses by default) with psql.
fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            sql,
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_demo_plays_end_to_end_and_stops_cleanly() {
    // What an earlier run would have left.
    psql("DROP DATABASE IF EXISTS redress_demo_1");
    psql("CREATE DATABASE redress_demo_1");
    let data = tempfile::tempdir().expect("tempdir");
    let output = Command::new(redress_test_support::binary_path("redress"))
        .args(["up", "--demo", "--exit-after-demo"])
        // Out of the way of a system the developer may be running on the default ports, and above
        // the ephemeral port range (32768–60999) other tests' connections draw from.
        .args(["--port-offset", "11000", "--own-nats-port", "4923"])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("REDRESS_NATS_URL")
        .env_remove("REDRESS_DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run redress up --demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {}\n{stdout}\n{stderr}",
        output.status
    );
    for sign in [
        "complaint.received",
        "complaint.assigned",
        "sla.warning",
        "sla.overdue",
        "escalated to level 1",
        "escalated to level 2",
        "revisit: customer dissatisfied",
        "complaint.repeat",
        "complaint.closed",
        "Demo complete",
    ] {
        assert!(
            stdout.contains(sign),
            "{sign:?} missing from the demo output:\n{stdout}"
        );
    }
    // People by name and complaints by number, in every line (issue 14): no staff or
    // complaint id of the demo organisation shows.
    for id in [
        "cmp_",
        "handler-1",
        "handler-2",
        "manager-1",
        "centre-1",
        "gm-1",
    ] {
        assert!(
            !stdout.contains(id),
            "{id:?} shows in the demo output:\n{stdout}"
        );
    }
    assert_eq!(
        psql("SELECT count(*) FROM pg_database WHERE datname = 'redress_demo_1'"),
        "0",
        "the earlier run's database is gone"
    );
}
