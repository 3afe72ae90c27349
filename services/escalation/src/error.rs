//! This service's errors: the platform's one error, mapped once to gRPC status codes and to
//! the consumer's outcome (`redress_platform::error`).

pub use redress_platform::error::Error;
