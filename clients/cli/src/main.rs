//! `cpctl`: the control plane from a terminal, on the partner SDK (`cp-sdk`), through the public endpoint.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the stored login (0600) and its overrides |
//! | [`commands`] | every command, by domain |
//! | [`output`] | tables and `--json` |

mod commands;
mod config;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{Catalogue, Governance, Identity, Lineage, Tenancy, Workflow};
use output::Format;

const EXAMPLES: &str = "\
Examples:
  # Log in once, with an OAuth client (the secret read from stdin) or an API token.
  printf %s \"$CLIENT_SECRET\" | cpctl login --endpoint http://127.0.0.1:4000 --client-id cpc_acme_… --client-secret-stdin
  printf %s \"$CP_TOKEN\" | cpctl login --endpoint http://127.0.0.1:4000 --token-stdin

  cpctl tenant show
  cpctl project list --json
  cpctl env set payments prod --config '{\"replicas\": 3}' --reason 'more traffic'
  cpctl approval list --status pending
  cpctl approval approve 0193… --note 'looks right'
  cpctl workflow start content-review --input '{\"title\": \"Launch\"}' --wait
  cpctl definition publish --file content-review.json     # inputs too rich for flags come from files
  cpctl policy draft no-friday-prod --effect deny --cedar ./no-friday-prod.cedar
  cpctl usage record build-minutes 12 --at 2026-12-07T10:00:00Z --key build-1042   # sent twice, counted once
  cpctl artifact upload model 1.0.0 ./model.bin
  cpctl events watch --type TenantUpdated
  cpctl dashboard                      # a link to the live page, valid while its token is
  cpctl completions bash > /etc/bash_completion.d/cpctl

Exit status: 0 when the command did what it was asked (or the verdict it gives is yes: allowed, valid,
intact); 1 when it failed or its verdict is no, with the reason on stderr.";

/// The control plane from a terminal.
#[derive(Parser, Debug)]
#[command(name = "cpctl", version, about = "The control plane from a terminal: every domain's tasks through the public endpoint.", after_help = EXAMPLES)]
struct Cli {
    /// The public endpoint (default: the one logged in to).
    #[arg(long, env = "CP_ENDPOINT", global = true)]
    endpoint: Option<String>,
    /// Print JSON (the API's field names) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in: checks the credentials, then stores them (readable by you only).
    Login(commands::LoginArgs),
    /// Forget the stored login.
    Logout,
    /// Who the stored credentials act as.
    Whoami,
    /// Print a link to the live dashboard page, carrying a short-lived token (client-credentials logins).
    Dashboard,
    #[command(flatten)]
    Tenancy(Tenancy),
    #[command(flatten)]
    Identity(Identity),
    #[command(flatten)]
    Catalogue(Catalogue),
    #[command(flatten)]
    Governance(Governance),
    #[command(flatten)]
    Workflow(Workflow),
    #[command(flatten)]
    Lineage(Lineage),
    /// Shell completions, for bash, zsh, fish, elvish or PowerShell.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = if cli.json { Format::Json } else { Format::Table };
    let result = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cpctl", &mut std::io::stdout());
            Ok(())
        }
        Command::Login(args) => commands::login(cli.endpoint, args).await,
        Command::Logout => commands::logout(),
        command => match commands::client(cli.endpoint) {
            Ok(client) => match command {
                Command::Whoami => commands::whoami(&client, format).await,
                Command::Dashboard => commands::dashboard(&client).await,
                Command::Tenancy(c) => c.run(&client, format).await,
                Command::Identity(c) => c.run(&client, format).await,
                Command::Catalogue(c) => c.run(&client, format).await,
                Command::Governance(c) => c.run(&client, format).await,
                Command::Workflow(c) => c.run(&client, format).await,
                Command::Lineage(c) => c.run(&client, format).await,
                Command::Login(_) | Command::Logout | Command::Completions { .. } => unreachable!("handled above"),
            },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error for people: the API's code first, the field at fault, then the causes.
fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<cp_sdk::Error>() {
        Some(cp_sdk::Error::Api { code, message, field, .. }) => {
            let code = if code.as_str().is_empty() { "ERROR" } else { code.as_str() };
            match field {
                Some(f) => format!("{code}: {message} (field `{f}`)"),
                None => format!("{code}: {message}"),
            }
        }
        _ => format!("{e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn api_errors_read_with_their_code_and_field() {
        let e = anyhow::Error::new(cp_sdk::Error::Api {
            code: cp_sdk::ErrorCode::BadUserInput,
            message: "a slug is 3–40 characters".into(),
            field: Some("input.slug".into()),
            extensions: Box::default(),
        });
        assert_eq!(describe(&e), "BAD_USER_INPUT: a slug is 3–40 characters (field `input.slug`)");
        let e = anyhow::Error::new(cp_sdk::Error::Api {
            code: cp_sdk::ErrorCode::Other("RATE_LIMITED".into()),
            message: "slow down".into(),
            field: None,
            extensions: Box::default(),
        });
        assert_eq!(describe(&e), "RATE_LIMITED: slow down");
    }
}
