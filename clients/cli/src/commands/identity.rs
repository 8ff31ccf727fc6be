//! Identity: principals, roles, OAuth clients and API tokens.

use clap::Subcommand;
use cp_sdk::ops::identity::{ApiToken, CreatePrincipalInput, OauthClient, Principal, PrincipalKind, Role};
use cp_sdk::Client;

use super::{all, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Identity {
    /// Principals: the tenant's users and services.
    #[command(subcommand)]
    Principal(PrincipalCmd),
    /// Roles.
    #[command(subcommand)]
    Role(RoleCmd),
    /// OAuth clients (never their secrets).
    #[command(subcommand, name = "oauth-client")]
    OauthClient(ListCmd),
    /// API tokens (never their values).
    #[command(subcommand, name = "api-token")]
    ApiToken(ListCmd),
}

#[derive(Subcommand, Debug)]
pub enum PrincipalCmd {
    /// Every principal.
    List,
    /// Create a user (or, with --service, a service principal).
    Create {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        service: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Every role.
    List,
    /// Bind a role to a principal.
    Bind { principal: cp_sdk::Uuid, role: String },
}

#[derive(Subcommand, Debug)]
pub enum ListCmd {
    /// Every one.
    List,
}

impl Identity {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        match self {
            Identity::Principal(PrincipalCmd::List) => output::list(format, &all(client.principals(PAGE)).await?),
            Identity::Principal(PrincipalCmd::Create { name, email, service }) => {
                let kind = if service { PrincipalKind::Service } else { PrincipalKind::User };
                let input = CreatePrincipalInput { kind, display_name: name, email };
                output::one(format, &client.create_principal(input).await?)
            }
            Identity::Role(RoleCmd::List) => output::list(format, &client.roles().await?),
            Identity::Role(RoleCmd::Bind { principal, role }) => {
                client.bind_role(principal, &role).await?;
                output::one(format, &client.principal(principal).await?)
            }
            Identity::OauthClient(ListCmd::List) => output::list(format, &client.oauth_clients().await?),
            Identity::ApiToken(ListCmd::List) => output::list(format, &client.api_tokens().await?),
        }
    }
}

impl Row for Principal {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "KIND", "STATUS", "EMAIL", "ROLES"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.display_name.clone(),
            name(&self.kind),
            name(&self.status),
            opt(&self.email),
            self.roles.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", "),
        ]
    }
}

impl Row for Role {
    fn headers() -> &'static [&'static str] {
        &["KEY", "DESCRIPTION", "PERMISSIONS"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.key.clone(), self.description.clone(), self.permissions.join(", ")]
    }
}

impl Row for OauthClient {
    fn headers() -> &'static [&'static str] {
        &["CLIENT ID", "PRINCIPAL", "SCOPES", "SECRET ROTATED", "REVOKED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.client_id.clone(),
            self.principal_id.to_string(),
            self.scopes.join(" "),
            time(&self.secret_rotated_at),
            opt(&self.revoked_at.as_ref().map(time)),
        ]
    }
}

impl Row for ApiToken {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "PRINCIPAL", "SCOPES", "EXPIRES", "LAST USED", "REVOKED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.name.clone(),
            self.principal_id.to_string(),
            self.scopes.join(" "),
            time(&self.expires_at),
            opt(&self.last_used_at.as_ref().map(time)),
            opt(&self.revoked_at.as_ref().map(time)),
        ]
    }
}
