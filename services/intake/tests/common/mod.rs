//! What both of intake's test files start from: the service as a process and a client of it.

use redress_proto::v1::intake_service_client::IntakeServiceClient;
use redress_test_support::{ServiceProcess, TestBed};

/// The agent's token (agent-1).
pub const AGENT: &str = "test-agent-token";

/// Intake on `bed` with `extra` environment, and a gRPC client of it.
pub async fn intake(
    bed: &TestBed,
    extra: &[(&str, &str)],
) -> (
    ServiceProcess,
    IntakeServiceClient<tonic::transport::Channel>,
) {
    let svc = bed.spawn("redress-intake", extra).await;
    let client = IntakeServiceClient::new(bed.channel(&svc).await);
    (svc, client)
}
