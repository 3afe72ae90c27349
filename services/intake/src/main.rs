//! Entry point: settings, telemetry, then the service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: redress_intake::Args = redress_platform::config::parse();
    let _telemetry = redress_platform::telemetry::init(redress_intake::SERVICE.name, &args.common)?;
    redress_intake::run(args).await
}
