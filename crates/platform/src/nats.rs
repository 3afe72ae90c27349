//! NATS JetStream: connecting, naming, and provisioning the streams and durable consumers.
//!
//! Every name derives from one subject prefix (`redress` by default), so an installation or a
//! test owns its subjects and streams outright:
//!
//! | stream                | subjects                    | carries                                   |
//! |-----------------------|-----------------------------|-------------------------------------------|
//! | `<P>_EVENTS`          | `<p>.events.>`              | every domain event (`Event` protobuf)     |
//! | `<P>_INTAKE`          | `<p>.intake.>`              | call-centre submissions (JSON or protobuf)|
//! | `<P>_NOTIFICATIONS`   | `<p>.notifications.>`       | notifications, one subject per person     |
//! | `<P>_DEADLETTER`      | `<p>.deadletter.>`          | messages a consumer gave up on, with why  |
//!
//! Provisioning is idempotent and safe when several replicas start at once: identical stream
//! configurations are accepted by the server as no-ops, and consumers are created-or-updated.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid subject prefix {0:?}: use lowercase letters, digits, '-' or '_'")]
    Prefix(String),
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("JetStream stream {name}: {message}")]
    Stream { name: String, message: String },
    #[error("JetStream consumer {name}: {message}")]
    Consumer { name: String, message: String },
}

/// The subjects and stream names of one installation.
#[derive(Clone, Debug)]
pub struct Topology {
    prefix: String,
    stream_prefix: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let ok = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err(Error::Prefix(prefix.to_owned()));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            stream_prefix: prefix.to_ascii_uppercase().replace('-', "_"),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Subject of a domain event of the given kind, e.g. `redress.events.complaint.received`.
    pub fn event_subject(&self, kind: &str) -> String {
        format!("{}.events.{kind}", self.prefix)
    }

    /// The subjects of the given event kinds: a consumer's filter.
    pub fn event_subjects<'k>(&self, kinds: impl IntoIterator<Item = &'k str>) -> Vec<String> {
        kinds.into_iter().map(|k| self.event_subject(k)).collect()
    }

    /// Subjects matching all events (for dashboards and the registry).
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// Where call-centre integrations publish submissions.
    pub fn intake_submit(&self) -> String {
        format!("{}.intake.submit", self.prefix)
    }

    /// Where notifications to one person are published.
    pub fn notification_subject(&self, person: &str) -> String {
        format!("{}.notifications.{person}", self.prefix)
    }

    /// Where a consumer's dead letters go.
    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!("{}.deadletter.{consumer}", self.prefix)
    }

    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix)
    }

    pub fn intake_stream(&self) -> String {
        format!("{}_INTAKE", self.stream_prefix)
    }

    pub fn notifications_stream(&self) -> String {
        format!("{}_NOTIFICATIONS", self.stream_prefix)
    }

    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DEADLETTER", self.stream_prefix)
    }

    fn stream_configs(&self, replicas: usize) -> Vec<stream::Config> {
        let day = Duration::from_secs(86_400);
        let mk = |name: String, subject: String, max_age: Duration| stream::Config {
            name,
            subjects: vec![subject],
            num_replicas: replicas.max(1),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age,
            // Long enough to cover a relay restart; the outbox makes older duplicates harmless
            // anyway, because consumers deduplicate by event id.
            duplicate_window: Duration::from_secs(300),
            ..Default::default()
        };
        vec![
            mk(self.events_stream(), self.all_events(), 365 * day),
            mk(
                self.intake_stream(),
                format!("{}.intake.>", self.prefix),
                30 * day,
            ),
            mk(
                self.notifications_stream(),
                format!("{}.notifications.>", self.prefix),
                90 * day,
            ),
            mk(
                self.dead_letter_stream(),
                format!("{}.deadletter.>", self.prefix),
                90 * day,
            ),
        ]
    }
}

/// Connects to NATS with a client name that shows up in the server's monitoring. `url` may
/// list several servers of a cluster, comma separated (`nats://a:4222,nats://b:4222`): the
/// client starts with any that answers and fails over to the others.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, Error> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Connect {
            url: url.to_owned(),
            source: async_nats::ConnectError::with_source(
                async_nats::ConnectErrorKind::ServerParse,
                e,
            ),
        })?;
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(servers)
        .await
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source,
        })
}

/// Creates the installation's streams when missing (one replica each). Safe to call from every
/// replica at start.
pub async fn ensure_streams(js: &jetstream::Context, topology: &Topology) -> Result<(), Error> {
    ensure_streams_with(js, topology, 1).await
}

/// As [`ensure_streams`], with `replicas` copies of each stream; an existing stream with another
/// replica count is updated (JetStream moves the data).
pub async fn ensure_streams_with(
    js: &jetstream::Context,
    topology: &Topology,
    replicas: usize,
) -> Result<(), Error> {
    for config in topology.stream_configs(replicas) {
        let name = config.name.clone();
        let mut last = String::new();
        for attempt in 0..5 {
            match js.get_or_create_stream(config.clone()).await {
                Ok(mut s) => {
                    let current = s
                        .info()
                        .await
                        .map(|i| i.config.num_replicas)
                        .unwrap_or(replicas);
                    if current != config.num_replicas {
                        let mut updated = s.cached_info().config.clone();
                        updated.num_replicas = config.num_replicas;
                        if let Err(e) = js.update_stream(updated).await {
                            last = e.to_string();
                            continue;
                        }
                    }
                    last.clear();
                    break;
                }
                // Two replicas racing to create the same stream: the loser sees an error once;
                // the retry finds the stream.
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                }
            }
        }
        if !last.is_empty() {
            return Err(Error::Stream {
                name,
                message: last,
            });
        }
    }
    Ok(())
}

/// What a durable pull consumer listens to and how it retries.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    /// Durable name, shared by all replicas of the service (they split the messages).
    pub durable: String,
    /// Stream to consume.
    pub stream: String,
    /// Subjects taken from the stream (empty = all).
    pub filter_subjects: Vec<String>,
    /// Deliveries after which the consumer gives up on a message that keeps failing on its own
    /// (not for want of the database): the consumer decides, not the server — see
    /// [`ensure_consumer`].
    pub max_deliver: i64,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
}

/// Delay before the next delivery after `delivered` failed attempts.
pub fn backoff_delay(delivered: u32) -> Duration {
    let secs = 1u64 << delivered.saturating_sub(1).min(5);
    Duration::from_secs(secs.min(30))
}

/// Creates or updates a durable pull consumer. Safe to call from every replica at start.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<consumer::PullConsumer, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Consumer {
        name: spec.durable.clone(),
        message: e.to_string(),
    };
    let stream = js.get_stream(&spec.stream).await.map_err(|e| err(&e))?;
    let config = consumer::pull::Config {
        durable_name: Some(spec.durable.clone()),
        filter_subjects: spec.filter_subjects.clone(),
        ack_policy: consumer::AckPolicy::Explicit,
        // The server redelivers a message for as long as it is not acknowledged: a message
        // the server stopped delivering after N tries, while the database was down and it could
        // not even be dead-lettered, would be lost (issue 17). The consumer itself decides when
        // to give up, and naks with its own growing delay ([`backoff_delay`]). No server-side
        // backoff list either: its first entry would replace `ack_wait` (1 s instead of 30),
        // redelivering every message that waits behind a slow batch (issue 18).
        ack_wait: spec.ack_wait,
        max_deliver: -1,
        backoff: Vec::new(),
        max_ack_pending: 20_000,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let mut last = None;
    for attempt in 0..5 {
        match stream.create_consumer(config.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
        }
    }
    Err(err(&last.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let t = Topology::new("t-42").expect("valid");
        assert_eq!(t.events_stream(), "T_42_EVENTS");
        assert_eq!(
            t.event_subject("complaint.received"),
            "t-42.events.complaint.received"
        );
        assert_eq!(t.dead_letter_subject("routing"), "t-42.deadletter.routing");
        assert!(Topology::new("Bad.Prefix").is_err());
        assert!(Topology::new("").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(1), Duration::from_secs(1));
        assert_eq!(backoff_delay(2), Duration::from_secs(2));
        assert_eq!(backoff_delay(4), Duration::from_secs(8));
        assert_eq!(backoff_delay(40), Duration::from_secs(30));
    }
}
