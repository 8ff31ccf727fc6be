//! `tenancy serve` runs the subgraph; `tenancy print-schema` prints its federation SDL.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Tenancy subgraph of the control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GraphQL, health and metrics; run the outbox relay and consumers.
    Serve(Box<tenancy::Config>),
    /// Print the federation SDL.
    PrintSchema,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(cfg) => tenancy::run(*cfg).await,
        Command::PrintSchema => {
            print!("{}", kernel::server::federation_sdl(&tenancy::schema_builder().finish()));
            Ok(())
        }
    }
}
