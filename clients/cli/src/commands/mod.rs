//! The commands, one module per domain; each domain's nouns are subcommands of `cpctl` (`cpctl tenant
//! show`, `cpctl approval approve`), and its rows are how its values print as a table.

/// A clap value enum mirroring one of the SDK's enums variant for variant (so `--help` and completions
/// list the values), with its conversion.
macro_rules! mirror {
    ($(#[$doc:meta])* $name:ident => $sdk:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(clap::ValueEnum, Clone, Copy, Debug)]
        pub enum $name {
            $($variant),+
        }

        impl From<$name> for $sdk {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => <$sdk>::$variant),+
                }
            }
        }
    };
}

mod catalogue;
mod governance;
mod identity;
mod lineage;
mod tenancy;
mod workflow;

use std::io::Read;

use anyhow::Context;
use cp_sdk::Client;
use futures::TryStreamExt;

pub use catalogue::Catalogue;
pub use governance::Governance;
pub use identity::Identity;
pub use lineage::Lineage;
pub use tenancy::Tenancy;
pub use workflow::Workflow;

use crate::config::{self, Login, Stored};
use crate::output::{self, Format};

/// Page size for lists.
const PAGE: i32 = 100;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["client_id", "token_stdin"])))]
pub struct LoginArgs {
    /// The OAuth client's id (`cpc_…`); its secret comes from `CP_CLIENT_SECRET` or stdin.
    #[arg(long)]
    client_id: Option<String>,
    /// Read the client secret from stdin (so it stays out of the shell's history).
    #[arg(long, requires = "client_id")]
    client_secret_stdin: bool,
    /// Read an API token (`cpt_…`) or access token from stdin.
    #[arg(long)]
    token_stdin: bool,
}

/// `cpctl login`: checks the credentials against the endpoint, then stores them.
pub async fn login(endpoint: Option<String>, args: LoginArgs) -> anyhow::Result<()> {
    let endpoint = endpoint.context("which control plane? pass --endpoint (or set CP_ENDPOINT)")?;
    let stored = match args.client_id {
        Some(client_id) => {
            let client_secret = if args.client_secret_stdin {
                read_stdin("the client secret")?
            } else {
                std::env::var("CP_CLIENT_SECRET")
                    .context("the client secret: set CP_CLIENT_SECRET or pass --client-secret-stdin")?
            };
            Stored::ClientCredentials { client_id, client_secret }
        }
        None => Stored::Token { token: read_stdin("the token")? },
    };
    let client = Client::new(&endpoint, stored.credentials())?;
    // A token is fetched (client credentials) and used once: refused credentials are not stored.
    let me = client.me().await.context("checking the credentials")?;
    let path = config::save(&Login { endpoint: endpoint.clone(), credentials: stored })?;
    eprintln!("logged in to {endpoint} as {} ({}); stored in {}", me.display_name, me.id, path.display());
    Ok(())
}

fn read_stdin(what: &str) -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().take(64 * 1024).read_to_string(&mut s).with_context(|| format!("reading {what} from stdin"))?;
    let s = s.trim().to_owned();
    anyhow::ensure!(!s.is_empty(), "{what} on stdin is empty");
    Ok(s)
}

/// `cpctl logout`.
pub fn logout() -> anyhow::Result<()> {
    if config::remove()? {
        eprintln!("logged out");
    } else {
        eprintln!("not logged in");
    }
    Ok(())
}

/// The client of the stored login (`CP_ENDPOINT` and `CP_TOKEN` override it).
pub fn client(endpoint: Option<String>) -> anyhow::Result<Client> {
    let stored = config::load()?;
    let endpoint = endpoint
        .or_else(|| stored.as_ref().map(|l| l.endpoint.clone()))
        .context("not logged in: run `cpctl login --endpoint URL …` (or set CP_ENDPOINT and CP_TOKEN)")?;
    let credentials = match (std::env::var("CP_TOKEN").ok().filter(|t| !t.is_empty()), stored) {
        (Some(token), _) => cp_sdk::Credentials::Token(token),
        (None, Some(login)) => login.credentials.credentials(),
        (None, None) => anyhow::bail!("not logged in: run `cpctl login` (or set CP_TOKEN)"),
    };
    Ok(Client::new(endpoint, credentials)?)
}

/// `cpctl whoami`.
pub async fn whoami(client: &Client, format: Format) -> anyhow::Result<()> {
    let me = client.me().await?;
    output::one(format, &me)
}

/// `cpctl dashboard`: the live page's link, its token in the fragment (which browsers never send to a
/// server; the page takes it out of the address). Only a short-lived access token goes into a link: an API
/// token, which lives for days, is refused.
pub async fn dashboard(client: &Client) -> anyhow::Result<()> {
    let token = client.bearer().await?;
    anyhow::ensure!(
        !token.starts_with("cpt_"),
        "a dashboard link carries its token: log in with an OAuth client (its access tokens expire within \
         minutes) rather than an API token"
    );
    println!("{}/dashboard/#token={token}", client.base());
    eprintln!("(the link works until its token expires; open it in a browser, and keep it to yourself)");
    Ok(())
}

/// Every item of a paged stream.
async fn all<T>(stream: impl futures::Stream<Item = Result<T, cp_sdk::Error>>) -> anyhow::Result<Vec<T>> {
    Ok(stream.try_collect().await?)
}

/// A JSON argument, with the argument's name in the error.
fn json_arg(name: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).with_context(|| format!("--{name} is not JSON"))
}

/// The largest file a command reads as its input (`--file`, `--cedar`).
const MAX_INPUT: u64 = 4 << 20;

/// A file's text (`-` for stdin), at most [`MAX_INPUT`] bytes.
fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(MAX_INPUT + 1).read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT + 1).read_to_string(&mut text))
    };
    read.with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(text.len() as u64 <= MAX_INPUT, "{} is larger than {} MiB", path.display(), MAX_INPUT >> 20);
    Ok(text)
}

/// A JSON file (`-` for stdin) read as one of the SDK's inputs, with the API's field names; the error
/// names the line and column.
fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    serde_json::from_str(&read_input(path)?)
        .with_context(|| format!("{} is not the input this command takes", path.display()))
}

/// `NAME=VALUE`, split.
fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// A list option's values, with empty ones dropped (so `--tags ''` clears a list).
fn list(values: Vec<String>) -> Vec<String> {
    values.into_iter().filter(|v| !v.is_empty()).collect()
}

/// The API's `NOT_FOUND` for what a query answered with nothing (so it reads like the API's own).
fn not_found(message: String) -> anyhow::Error {
    anyhow::Error::new(cp_sdk::Error::Api {
        code: cp_sdk::ErrorCode::NotFound,
        message,
        field: None,
        extensions: Box::default(),
    })
}

/// What a command that returns no value did: `said` on stderr for people, `json` on stdout for scripts.
fn done(format: Format, json: serde_json::Value, said: String) -> anyhow::Result<()> {
    match format {
        Format::Json => output::value(&json),
        Format::Table => {
            eprintln!("{said}");
            Ok(())
        }
    }
}

/// A verdict's exit: 0 when it is yes, 1 (with `no` as the error) when it is no, so scripts can gate on it.
fn verdict(yes: bool, no: impl FnOnce() -> String) -> anyhow::Result<()> {
    if yes {
        Ok(())
    } else {
        Err(anyhow::anyhow!(no()))
    }
}

/// A spinner on stderr with `message` (hidden when stderr is not a terminal).
fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
