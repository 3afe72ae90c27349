//! `redress`: the command-line entry point of the Redress complaint-handling system.
//!
//! This file only parses the command line and dispatches; each subcommand lives in its own
//! module (`redress up` in [`up`], which starts the whole system locally).

mod children;
mod console;
mod demo;
mod infra;
mod signals;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Redress: complaint handling for call centres, business halls and service companies.
#[derive(Debug, Parser)]
#[command(name = "redress", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the whole system locally: NATS (a pinned, current server if needed), PostgreSQL,
    /// and the five services, with their logs in this terminal. Ctrl-C stops everything.
    Up(up::UpArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redress: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
