//! `edge --listen 127.0.0.1:4000 --upstream http://127.0.0.1:4100` (`--help` lists every setting).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kernel::telemetry::init(kernel::telemetry::LogFormat::Text);
    let cfg = edge::Config::parse();
    let run = async {
        let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
        tracing::info!(addr = %cfg.listen, upstream = %cfg.upstream, "edge listening");
        let shutdown = tokio_util::sync::CancellationToken::new();
        kernel::server::cancel_on_signal(shutdown.clone());
        edge::serve(cfg, listener, shutdown).await
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
