//! The platform's error, as every service uses it (mapped once to gRPC and to the consumer).

pub use redress_platform::error::Error;
