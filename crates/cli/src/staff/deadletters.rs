//! `deadletters ...`: the messages the services' consumers gave up on because of their content,
//! across all five services and the board — listed, shown, and replayed once the cause is fixed (operator
//! token). Replaying is safe: the consumer applies the message through its own idempotent
//! handler, once.

use clap::{Args, Subcommand};
use redress_proto::v1::{self, dead_letter_service_client::DeadLetterServiceClient};
use tonic::transport::Channel;

use super::{Ctx, Failure, Outcome};
use crate::output::{Table, fields, time};

// The five services and the board (its projection is a consumer too), as their consumers'
// names begin: the services `redress up` starts.
use crate::up::SERVICES;

#[derive(Debug, Subcommand)]
pub enum DeadLetters {
    /// Dead letters of every service (or one), newest first.
    List(List),
    /// One dead letter: why, when, and the message as it came.
    Show(Named),
    /// Apply a dead letter again, now that its cause is fixed; the consumer does it within
    /// about a second (see `show`).
    Replay(Named),
}

#[derive(Debug, Args)]
pub struct List {
    /// Only this service's: intake, routing, sla-monitor, escalation, revisit or board.
    #[arg(long)]
    service: Option<String>,
    /// Include the ones already replayed.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct Named {
    /// The consumer that gave up on it (as `list` shows it, e.g. intake-submissions).
    consumer: String,
    /// The message id (as `list` shows it).
    message_id: String,
}

impl Ctx {
    async fn dead_letters(
        &self,
        service: &str,
    ) -> Result<DeadLetterServiceClient<Channel>, Failure> {
        let addr = match service {
            "intake" => &self.global.intake,
            "routing" => &self.global.routing,
            "sla-monitor" => &self.global.sla,
            "escalation" => &self.global.escalation,
            "revisit" => &self.global.revisit,
            "board" => &self.global.board,
            other => {
                return Err(Failure::Usage(format!(
                    "--service {other:?}: use intake, routing, sla-monitor, escalation, revisit \
                     or board"
                )));
            }
        };
        Ok(DeadLetterServiceClient::new(self.channel(addr).await?))
    }
}

/// The service a consumer belongs to, by its name's prefix.
fn service_of(consumer: &str) -> Result<&'static str, Failure> {
    SERVICES
        .iter()
        .find(|s| consumer.starts_with(&format!("{s}-")))
        .copied()
        .ok_or_else(|| {
            Failure::Usage(format!(
                "consumer {consumer:?}: names no service's consumer (intake-…, routing-…, \
                 sla-monitor-…, escalation-…, revisit-…, board-…)"
            ))
        })
}

fn state(d: &v1::DeadLetter) -> String {
    if d.replayed_at.is_some() {
        format!("replayed {}", time(d.replayed_at.as_ref()))
    } else if d.replay_requested_at.is_some() {
        "replay requested".to_owned()
    } else if !d.replay_error.is_empty() {
        format!("replay refused: {}", d.replay_error)
    } else {
        "waiting".to_owned()
    }
}

pub async fn run(ctx: &Ctx, command: DeadLetters) -> Outcome {
    match command {
        DeadLetters::List(a) => {
            let services: Vec<&str> = match &a.service {
                Some(s) => vec![s.as_str()],
                None => SERVICES.to_vec(),
            };
            let mut all = v1::ListDeadLettersResponse::default();
            for service in services {
                let page = ctx
                    .dead_letters(service)
                    .await?
                    .list_dead_letters(ctx.req(v1::ListDeadLettersRequest {
                        include_replayed: a.all,
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                all.dead_letters.extend(page.dead_letters);
            }
            ctx.emit("ListDeadLettersResponse", &all, |r| {
                if r.dead_letters.is_empty() {
                    return "No dead letters.\n".to_owned();
                }
                let mut t =
                    Table::new(&["CONSUMER", "MESSAGE", "WHEN", "TRIES", "REASON", "STATE"]);
                for d in &r.dead_letters {
                    t.row(vec![
                        d.consumer.clone(),
                        d.message_id.clone(),
                        time(d.created_at.as_ref()),
                        d.deliveries.to_string(),
                        d.reason.clone(),
                        state(d),
                    ]);
                }
                t.render()
            })
        }
        DeadLetters::Show(n) => {
            let d = ctx
                .dead_letters(service_of(&n.consumer)?)
                .await?
                .get_dead_letter(ctx.req(v1::GetDeadLetterRequest {
                    consumer: n.consumer,
                    message_id: n.message_id,
                }))
                .await?
                .into_inner();
            ctx.emit("DeadLetter", &d, |d| {
                let body = match std::str::from_utf8(&d.payload) {
                    Ok(text) => text.to_owned(),
                    Err(_) => format!("({} bytes of binary; --json shows them)", d.payload.len()),
                };
                let mut headers: Vec<String> =
                    d.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                headers.sort();
                format!(
                    "{}\n{}\n",
                    fields(&[
                        ("consumer", d.consumer.clone()),
                        ("message", d.message_id.clone()),
                        ("subject", d.subject.clone()),
                        ("when", time(d.created_at.as_ref())),
                        ("deliveries", d.deliveries.to_string()),
                        ("reason", d.reason.clone()),
                        ("state", state(d)),
                        ("headers", headers.join("; ")),
                    ]),
                    body
                )
            })
        }
        DeadLetters::Replay(n) => {
            let r = ctx
                .dead_letters(service_of(&n.consumer)?)
                .await?
                .replay_dead_letter(ctx.req(v1::ReplayDeadLetterRequest {
                    consumer: n.consumer,
                    message_id: n.message_id,
                }))
                .await?
                .into_inner();
            ctx.emit("ReplayDeadLetterResponse", &r, |r| {
                let d = r.dead_letter.clone().unwrap_or_default();
                if d.replayed_at.is_some() {
                    format!("{} was replayed already: nothing to do.\n", d.message_id)
                } else {
                    format!(
                        "Replay of {} requested: {} applies it within a second; \
                         `redress deadletters show {} {}` tells how it went.\n",
                        d.message_id, d.consumer, d.consumer, d.message_id
                    )
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn consumers_name_their_service() {
        assert_eq!(
            super::service_of("sla-monitor-tracker").ok(),
            Some("sla-monitor")
        );
        assert_eq!(super::service_of("intake-submissions").ok(), Some("intake"));
        assert!(super::service_of("payroll-x").is_err());
    }
}
