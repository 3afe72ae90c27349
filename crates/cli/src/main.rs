//! `redress`: the command-line entry point of the Redress complaint-handling system.
//!
//! This file only parses the command line and dispatches; each subcommand lives in its own
//! module (`redress up` in [`up`], which starts the whole system locally; the staff commands in
//! [`staff`], which talk to the services over gRPC).

mod children;
mod console;
mod demo;
mod infra;
mod output;
mod signals;
mod staff;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Redress: complaint handling for call centres, business halls and service companies.
#[derive(Debug, Parser)]
#[command(name = "redress", version, propagate_version = true, after_help = staff::EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: staff::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the whole system locally: NATS (a pinned, current server if needed), PostgreSQL,
    /// and the five services, with their logs in this terminal. Ctrl-C stops everything.
    Up(up::UpArgs),
    #[command(flatten)]
    Staff(staff::StaffCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    // The addresses and development token `redress up` wrote, unless an env file is named
    // (`--env-file`, `REDRESS_ENV_FILE`); flags and variables still win over it.
    let cli: Cli =
        redress_platform::config::parse_with_fallback(Some(std::path::Path::new(up::CLI_ENV_FILE)));
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Staff(command) => return staff::run(cli.global, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redress: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
