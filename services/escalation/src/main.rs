//! Entry point: settings, telemetry, then the service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: redress_escalation::Args = redress_platform::config::parse();
    let _telemetry =
        redress_platform::telemetry::init(redress_escalation::SERVICE.name, &args.common)?;
    redress_escalation::run(args).await
}
