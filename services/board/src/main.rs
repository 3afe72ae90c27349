//! Entry point: settings, telemetry, then the service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: redress_board::Args = redress_platform::config::parse();
    let _telemetry = redress_platform::telemetry::init(redress_board::SERVICE.name, &args.common)?;
    redress_board::run(args).await
}
