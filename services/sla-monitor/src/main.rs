//! Entry point: settings, telemetry, then the service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: redress_sla_monitor::Args = redress_platform::config::parse();
    let _telemetry =
        redress_platform::telemetry::init(redress_sla_monitor::SERVICE.name, &args.common)?;
    redress_sla_monitor::run(args).await
}
