//! The plumbing every Redress service shares, written once.
//!
//! A service is a thin shell around the domain rules of `redress-domain`; everything about
//! talking to the outside world lives here:
//!
//! - [`config`]: settings from flags, `REDRESS_*` variables and an env file; `--help` lists all.
//! - [`telemetry`]: logs (text or JSON), OpenTelemetry traces, trace context across NATS and gRPC.
//! - [`db`]: the PostgreSQL pool, one schema per service, embedded migrations.
//! - [`nats`]: subjects, streams and durable consumers, provisioned idempotently.
//! - [`events`]: the event envelope and timestamps, built one way everywhere.
//! - [`outbox`]: state change and event commit together; the relay publishes them in order.
//! - [`consumer`]: idempotent, batched, explicit-ack consumers with dead letters.
//! - [`deadletters`]: every service's dead letters over gRPC, listed and replayed on request.
//! - [`auth`]: bearer tokens → the caller's identity and role.
//! - [`access`]: which complaints a caller reaches and how much of the customer they see.
//! - [`error`]: the one error of requests and handlers, mapped once to gRPC and to the consumer.
//! - [`request`]: a request's ids, parsed and named on the call's span.
//! - [`listen`]: binding a port that may be taken for a moment (retried, not fatal).
//! - [`app`]: bootstrap, serve gRPC (with health and reflection), stop in order.
//!
//! Start reading at [`app::Platform`]: it shows how the pieces are wired.

pub mod access;
pub mod app;
pub mod auth;
pub mod clock_file;
pub mod config;
pub mod consumer;
pub mod db;
pub mod deadletters;
pub mod error;
pub mod events;
pub mod listen;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod pagination;
pub mod request;
pub mod shutdown;
pub mod telemetry;

pub use app::{Platform, ServiceInfo};
