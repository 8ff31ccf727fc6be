//! `edge --listen 127.0.0.1:4000 --upstream http://127.0.0.1:4100` (`--help` lists every setting).

use clap::Parser;

fn main() -> std::process::ExitCode {
    kernel::telemetry::init(kernel::telemetry::LogFormat::Text);
    let cfg = edge::Config::parse();
    let threads = cfg.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tracing::info!(addr = %cfg.listen, upstream = %cfg.upstream, threads, "edge listening");
    let shutdown = tokio_util::sync::CancellationToken::new();
    // Signals are watched on a runtime of their own; the serving threads run theirs.
    let signals = std::thread::spawn({
        let shutdown = shutdown.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                kernel::server::cancel_on_signal(shutdown.clone());
                shutdown.cancelled().await;
            });
            Ok::<_, std::io::Error>(())
        }
    });
    let served = edge::run(cfg, threads, shutdown.clone());
    shutdown.cancel();
    let _ = signals.join();
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
