//! `identity serve | print-schema | provision | bootstrap`.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Identity subgraph and token service of the control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GraphQL, the token service, health and metrics; run the outbox relay.
    Serve(Box<identity::Config>),
    /// Print the federation SDL.
    PrintSchema,
    /// Create the database and its roles if missing, then migrate (needs a superuser).
    Provision {
        #[arg(long, env = "ADMIN_DATABASE_URL")]
        admin_database_url: String,
        #[arg(long, env = "DATABASE_NAME", default_value = "cp_identity")]
        database: String,
    },
    /// Create the first platform operator on an empty system and print its API token, once.
    Bootstrap(Box<identity::Config>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(cfg) => identity::run(*cfg).await,
        Command::PrintSchema => {
            print!("{}", kernel::server::federation_sdl(&identity::schema_builder().finish()));
            Ok(())
        }
        Command::Provision { admin_database_url, database } => {
            let roles =
                kernel::db::provision_and_migrate(&admin_database_url, "identity", &database, &identity::MIGRATIONS)
                    .await?;
            eprintln!("{database} is provisioned and migrated (roles {}, {})", roles.owner, roles.app);
            Ok(())
        }
        Command::Bootstrap(cfg) => {
            let state = identity::connect(&cfg).await?;
            let token = identity::bootstrap(&state).await?;
            eprintln!("The first platform operator exists. Its API token (30 days), shown this once:");
            println!("{token}");
            Ok(())
        }
    }
}
