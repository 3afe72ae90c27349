//! Entry point: settings, telemetry, then the service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: redress_revisit::Args = redress_platform::config::parse();
    let _telemetry =
        redress_platform::telemetry::init(redress_revisit::SERVICE.name, &args.common)?;
    redress_revisit::run(args).await
}
