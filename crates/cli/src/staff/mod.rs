//! The staff and operator commands: thin gRPC clients of the five services. Each command sends
//! one request with the caller's bearer token and prints the answer — a table for people, the
//! proto3 JSON of the response with `--json` for scripts.
//!
//! Exit codes scripts can rely on (see [`exit_code`]):
//! 0 ok · 1 anything else · 2 usage error · 3 invalid argument · 4 not found ·
//! 5 failed precondition (the complaint is not in a state that allows it) ·
//! 6 permission denied or unauthenticated · 7 a service is unreachable.

mod complaints;
mod deadletters;
mod escalations;
mod handling;
mod org;
mod reports;
mod revisits;
mod sla;

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use redress_proto::prost::Message;
use redress_proto::prost_types::Timestamp;
use redress_proto::v1::{
    self, escalation_service_client::EscalationServiceClient,
    intake_service_client::IntakeServiceClient, revisit_service_client::RevisitServiceClient,
    routing_service_client::RoutingServiceClient,
    sla_monitor_service_client::SlaMonitorServiceClient,
};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::output;

/// The text `--help` shows after the commands.
pub const EXIT_CODES: &str = "Exit codes: 0 ok; 1 other error; 2 usage error; 3 invalid argument; \
4 not found; 5 failed precondition (illegal state); 6 permission denied or unauthenticated; \
7 service unavailable.";

/// Who is calling and where the services are; shared by every staff command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Bearer token of the person acting (staff commands need one).
    #[arg(long, env = "REDRESS_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Intake service address (host:port or URL).
    #[arg(
        long,
        env = "REDRESS_INTAKE_ADDR",
        global = true,
        default_value = "127.0.0.1:50051"
    )]
    pub intake: String,
    /// Routing service address.
    #[arg(
        long,
        env = "REDRESS_ROUTING_ADDR",
        global = true,
        default_value = "127.0.0.1:50052"
    )]
    pub routing: String,
    /// SLA monitor service address.
    #[arg(
        long,
        env = "REDRESS_SLA_ADDR",
        global = true,
        default_value = "127.0.0.1:50053"
    )]
    pub sla: String,
    /// Escalation service address.
    #[arg(
        long,
        env = "REDRESS_ESCALATION_ADDR",
        global = true,
        default_value = "127.0.0.1:50054"
    )]
    pub escalation: String,
    /// Revisit service address.
    #[arg(
        long,
        env = "REDRESS_REVISIT_ADDR",
        global = true,
        default_value = "127.0.0.1:50055"
    )]
    pub revisit: String,
    /// Board service address (its gRPC port: the reports).
    #[arg(
        long,
        env = "REDRESS_BOARD_ADDR",
        global = true,
        default_value = "127.0.0.1:50056"
    )]
    pub board: String,
    /// Print the response as proto3 JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// A file of `REDRESS_*=value` settings (addresses, token) read before these flags; by
    /// default `.redress/cli.env` when present, which `redress up` writes.
    #[arg(long, env = "REDRESS_ENV_FILE", global = true)]
    pub env_file: Option<std::path::PathBuf>,
}

/// The staff commands, flattened into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Record a complaint (from a proto3 JSON SubmitRequest file, or from flags).
    Submit(complaints::SubmitArgs),
    /// Record the customer's confirmation of a recorded complaint (routing starts).
    Confirm(complaints::ConfirmArgs),
    /// Override a complaint's class, with a reason kept in its history.
    Reclassify(complaints::ReclassifyArgs),
    /// One complaint: its record and its timeline across all services.
    Show(complaints::ShowArgs),
    /// Complaints, filtered and paged.
    List(complaints::ListArgs),
    /// A department's or a handler's work queue, most urgent first.
    Queue(complaints::QueueArgs),
    /// Assign (or with --reassign, reassign) a complaint to a staff member.
    Assign(complaints::AssignArgs),
    /// A handler's steps on a complaint.
    #[command(subcommand)]
    Handle(handling::Handle),
    /// Close (archive) a resolved complaint: the complaint centre's explicit close.
    Close(handling::Close),
    /// Time limits: a complaint's clocks, the clocks at risk or overdue, special reasons.
    #[command(subcommand)]
    Sla(sla::Sla),
    /// Revisits (callbacks to customers).
    #[command(subcommand)]
    Revisits(revisits::Revisits),
    /// Escalations to managers.
    #[command(subcommand)]
    Escalations(escalations::Escalations),
    /// Monthly and revisit-rate reports.
    #[command(subcommand)]
    Reports(reports::Reports),
    /// The organisation: departments, staff and routing rules — show, export as a file, apply
    /// a file (operator token).
    #[command(subcommand)]
    Org(org::Org),
    /// Messages the services gave up on because of their content: list, show, replay once
    /// fixed (operator token).
    #[command(subcommand)]
    Deadletters(deadletters::DeadLetters),
}

/// Runs one staff command; prints errors on stderr and returns the documented exit code.
pub async fn run(global: Global, command: StaffCommand) -> ExitCode {
    let result = match Ctx::new(global) {
        Ok(ctx) => dispatch(&ctx, command).await,
        Err(failure) => Err(failure),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message());
            ExitCode::from(exit_code(&failure))
        }
    }
}

async fn dispatch(ctx: &Ctx, command: StaffCommand) -> Outcome {
    match command {
        StaffCommand::Submit(a) => complaints::submit(ctx, a).await,
        StaffCommand::Confirm(a) => complaints::confirm(ctx, a).await,
        StaffCommand::Reclassify(a) => complaints::reclassify(ctx, a).await,
        StaffCommand::Show(a) => complaints::show(ctx, a).await,
        StaffCommand::List(a) => complaints::list(ctx, a).await,
        StaffCommand::Queue(a) => complaints::queue(ctx, a).await,
        StaffCommand::Assign(a) => complaints::assign(ctx, a).await,
        StaffCommand::Handle(c) => handling::run(ctx, c).await,
        StaffCommand::Close(a) => handling::close(ctx, a).await,
        StaffCommand::Sla(c) => sla::run(ctx, c).await,
        StaffCommand::Revisits(c) => revisits::run(ctx, c).await,
        StaffCommand::Escalations(c) => escalations::run(ctx, c).await,
        StaffCommand::Reports(c) => reports::run(ctx, c).await,
        StaffCommand::Org(c) => org::run(ctx, c).await,
        StaffCommand::Deadletters(c) => deadletters::run(ctx, c).await,
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The command line cannot work (a missing token, a malformed date).
    Usage(String),
    /// The service answered with an error.
    Status(tonic::Status),
    /// The service could not be reached.
    Unreachable(String),
    /// Anything else (a file that cannot be read, output that cannot be written).
    Other(anyhow::Error),
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Failure::Usage(m) | Failure::Unreachable(m) => m.clone(),
            Failure::Status(s) => format!("{} ({:?})", s.message(), s.code()),
            Failure::Other(e) => format!("{e:#}"),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Failure::Status(s)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

/// The one mapping from a failure to the exit code scripts see.
pub fn exit_code(failure: &Failure) -> u8 {
    use tonic::Code;
    match failure {
        Failure::Usage(_) => 2,
        Failure::Unreachable(_) => 7,
        Failure::Other(_) => 1,
        Failure::Status(s) => match s.code() {
            Code::InvalidArgument | Code::OutOfRange => 3,
            Code::NotFound => 4,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 5,
            Code::PermissionDenied | Code::Unauthenticated => 6,
            Code::Unavailable | Code::DeadlineExceeded => 7,
            _ => 1,
        },
    }
}

pub type Outcome = Result<(), Failure>;

/// The caller's options, with helpers to reach the services and print answers.
pub struct Ctx {
    global: Global,
    auth: MetadataValue<Ascii>,
}

impl Ctx {
    /// Checks the token before any service is called: without one no staff command can work.
    fn new(global: Global) -> Result<Self, Failure> {
        let token = global
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failure::Usage(
                    "no token: pass --token or set REDRESS_TOKEN to your bearer token".into(),
                )
            })?;
        let auth = format!("Bearer {token}")
            .parse()
            .map_err(|_| Failure::Usage("the token has characters a header cannot hold".into()))?;
        Ok(Self { global, auth })
    }

    /// `message` with the caller's bearer token.
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        req.metadata_mut()
            .insert("authorization", self.auth.clone());
        req
    }

    pub(super) async fn channel(&self, addr: &str) -> Result<Channel, Failure> {
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| Failure::Usage(format!("bad service address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Failure::Unreachable(format!("cannot reach {url}: {e}")))
    }

    /// The id of the complaint `named` — an id (`cmp_…`) as is, a complaint number (what
    /// `submit`, the demo and every person use) looked up in intake's registry. Empty stays
    /// empty (an optional filter).
    pub async fn complaint(&self, named: &str) -> Result<String, Failure> {
        let named = named.trim();
        if named.is_empty() || named.starts_with("cmp_") {
            return Ok(named.to_owned());
        }
        let view = self
            .intake()
            .await?
            .get_complaint(self.req(v1::GetComplaintRequest {
                complaint_id: named.to_owned(),
            }))
            .await?
            .into_inner();
        Ok(view.complaint_id)
    }

    pub async fn intake(&self) -> Result<IntakeServiceClient<Channel>, Failure> {
        Ok(IntakeServiceClient::new(
            self.channel(&self.global.intake).await?,
        ))
    }

    pub async fn routing(&self) -> Result<RoutingServiceClient<Channel>, Failure> {
        Ok(RoutingServiceClient::new(
            self.channel(&self.global.routing).await?,
        ))
    }

    pub async fn sla(&self) -> Result<SlaMonitorServiceClient<Channel>, Failure> {
        Ok(SlaMonitorServiceClient::new(
            self.channel(&self.global.sla).await?,
        ))
    }

    pub async fn escalation(&self) -> Result<EscalationServiceClient<Channel>, Failure> {
        Ok(EscalationServiceClient::new(
            self.channel(&self.global.escalation).await?,
        ))
    }

    pub async fn revisit(&self) -> Result<RevisitServiceClient<Channel>, Failure> {
        Ok(RevisitServiceClient::new(
            self.channel(&self.global.revisit).await?,
        ))
    }

    pub async fn board(
        &self,
    ) -> Result<v1::board_service_client::BoardServiceClient<Channel>, Failure> {
        Ok(v1::board_service_client::BoardServiceClient::new(
            self.channel(&self.global.board).await?,
        ))
    }

    /// Prints `message` (type `redress.complaints.v1.<name>`) as JSON with `--json`, else as
    /// the text `human` makes of it.
    pub fn emit<M: Message>(
        &self,
        name: &str,
        message: &M,
        human: impl FnOnce(&M) -> String,
    ) -> Outcome {
        if self.global.json {
            output::stdout(&format!("{}\n", output::json(name, message)?))?;
        } else {
            output::stdout(&human(message))?;
        }
        Ok(())
    }
}

/// A time given as RFC 3339 (`2026-11-23T08:30:00+08:00`) or a date (`2026-11-23`, midnight UTC).
pub fn parse_time(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    let t = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .map_err(|_| {
            Failure::Usage(format!(
                "{flag}: {text:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"
            ))
        })?;
    Ok(Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// A proto enum value from a short name on the command line: `phone` → `REPLY_CHANNEL_PHONE`.
/// The `UNSPECIFIED` placeholder is no value a person means, so it is refused like any unknown
/// name, and the error lists the names that would have been accepted.
pub fn parse_enum<E>(
    flag: &str,
    text: &str,
    prefix: &str,
    from: impl Fn(&str) -> Option<E>,
) -> Result<E, Failure> {
    let name = format!("{prefix}{}", text.trim().to_uppercase().replace('-', "_"));
    if name != format!("{prefix}UNSPECIFIED")
        && let Some(value) = from(&name)
    {
        return Ok(value);
    }
    let choices = output::choices(prefix);
    Err(Failure::Usage(if choices.is_empty() {
        format!("{flag}: unknown value {text:?}")
    } else {
        format!(
            "{flag}: unknown value {text:?}; one of: {}",
            choices.join(", ")
        )
    }))
}

/// A class filter (`a`…`d`, any case); none given means any class (`CLASS_UNSPECIFIED`).
pub fn class_filter(class: Option<&str>) -> Result<i32, Failure> {
    class
        .map(|c| parse_enum("--class", c, "CLASS_", v1::Class::from_str_name))
        .transpose()
        .map(|c| c.map_or(0, |c| c as i32))
}

/// A flag's text that must say something: blanks are refused here, naming the flag, rather
/// than sent for the service to refuse under the field's proto name.
pub fn required(flag: &str, text: String) -> Result<String, Failure> {
    if text.trim().is_empty() {
        Err(Failure::Usage(format!("{flag}: must not be empty")))
    } else {
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_documented_exit_codes() {
        let code = |s: tonic::Status| exit_code(&Failure::Status(s));
        assert_eq!(code(tonic::Status::invalid_argument("x")), 3);
        assert_eq!(code(tonic::Status::not_found("x")), 4);
        assert_eq!(code(tonic::Status::failed_precondition("x")), 5);
        assert_eq!(code(tonic::Status::permission_denied("x")), 6);
        assert_eq!(code(tonic::Status::unauthenticated("x")), 6);
        assert_eq!(code(tonic::Status::unavailable("x")), 7);
        assert_eq!(code(tonic::Status::internal("x")), 1);
        assert_eq!(exit_code(&Failure::Usage("x".into())), 2);
    }

    #[test]
    fn times_accept_dates_and_rfc3339() {
        assert_eq!(
            parse_time("--from", "1970-01-02").map(|t| t.seconds).ok(),
            Some(86_400)
        );
        assert_eq!(
            parse_time("--from", "1970-01-01T08:00:00+08:00")
                .map(|t| t.seconds)
                .ok(),
            Some(0)
        );
        assert!(parse_time("--from", "yesterday").is_err());
    }

    #[test]
    fn enum_flags_take_short_names_and_refuse_the_placeholder() {
        let clock =
            |text: &str| parse_enum("--clock", text, "SLA_CLOCK_", v1::SlaClock::from_str_name);
        assert_eq!(
            clock("first-feedback").ok(),
            Some(v1::SlaClock::FirstFeedback)
        );
        assert_eq!(clock("Completion").ok(), Some(v1::SlaClock::Completion));
        for bad in ["unspecified", "lunch", ""] {
            let Err(Failure::Usage(message)) = clock(bad) else {
                panic!("{bad:?} was accepted");
            };
            assert!(message.starts_with("--clock: "), "{message}");
            assert!(message.contains("first_feedback"), "{message}");
        }
        assert_eq!(class_filter(None).ok(), Some(0));
        assert_eq!(class_filter(Some("B")).ok(), Some(v1::Class::B as i32));
        assert!(matches!(class_filter(Some("e")), Err(Failure::Usage(m)) if m.contains("--class")));
    }

    #[test]
    fn blank_required_text_is_a_usage_error_naming_the_flag() {
        assert!(
            matches!(required("--reason", " ".into()), Err(Failure::Usage(m)) if m.starts_with("--reason"))
        );
        assert_eq!(
            required("--reason", "late part".into()).ok().as_deref(),
            Some("late part")
        );
    }
}
