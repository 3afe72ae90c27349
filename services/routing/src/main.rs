//! Entry point: settings, telemetry, then the service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: redress_routing::Args = redress_platform::config::parse();
    let _telemetry =
        redress_platform::telemetry::init(redress_routing::SERVICE.name, &args.common)?;
    redress_routing::run(args).await
}
