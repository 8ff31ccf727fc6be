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
    /// Create the database and its roles if missing, then migrate (a one-shot init job; needs a superuser).
    Provision {
        /// Superuser connection URL.
        #[arg(long, env = "ADMIN_DATABASE_URL")]
        admin_database_url: String,
        #[arg(long, env = "DATABASE_NAME", default_value = "cp_tenancy")]
        database: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(cfg) => tenancy::run(*cfg).await,
        Command::Provision { admin_database_url, database } => {
            let roles =
                kernel::db::provision_and_migrate(&admin_database_url, "tenancy", &database, &tenancy::MIGRATIONS)
                    .await?;
            eprintln!("{database} is provisioned and migrated (roles {}, {})", roles.owner, roles.app);
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", kernel::server::federation_sdl(&tenancy::schema_builder().finish()));
            Ok(())
        }
    }
}
