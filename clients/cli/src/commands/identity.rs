//! Identity: principals, roles, OAuth clients and API tokens.

use clap::Subcommand;
use cp_sdk::ops::identity::{
    ApiToken, ApiTokenWithSecret, CreateApiTokenInput, CreatePrincipalInput, DefineRoleInput, OauthClient,
    OauthClientWithSecret, Principal, PrincipalKind, Role,
};
use cp_sdk::Client;
use cp_sdk::Uuid;

use super::{all, done, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Identity {
    /// Principals: the tenant's users and services.
    Principal {
        #[command(flatten)]
        of: Of,
        #[command(subcommand)]
        cmd: PrincipalCmd,
    },
    /// Roles and their bindings.
    Role {
        #[command(flatten)]
        of: Of,
        #[command(subcommand)]
        cmd: RoleCmd,
    },
    /// OAuth clients (a secret is shown once, when made).
    #[command(name = "oauth-client")]
    OauthClient {
        #[command(flatten)]
        of: Of,
        #[command(subcommand)]
        cmd: OauthClientCmd,
    },
    /// API tokens (a token is shown once, when made).
    #[command(name = "api-token")]
    ApiToken {
        #[command(flatten)]
        of: Of,
        #[command(subcommand)]
        cmd: ApiTokenCmd,
    },
}

/// Whose identity: the caller's tenant's, or (operators) another's.
#[derive(clap::Args, Debug)]
pub struct Of {
    /// Another tenant's (operators: how a tenant's first principal and OAuth client are made).
    #[arg(long, global = true)]
    tenant: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PrincipalCmd {
    /// Every principal.
    List,
    /// One principal, with its roles.
    Show { id: Uuid },
    /// Create a user (or, with --service, a service principal).
    Create {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        service: bool,
    },
    /// Disable a principal: its tokens stop working.
    Disable { id: Uuid },
}

#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Every role.
    List,
    /// Define a role, or redefine one of the tenant's own.
    Define {
        key: String,
        #[arg(long, default_value = "")]
        description: String,
        /// A permission it grants (`catalogue:write`; again for more).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// Bind a role to a principal.
    Bind { principal: Uuid, role: String },
    /// Take a role from a principal (`NOT_FOUND` when it does not hold it).
    Unbind { principal: Uuid, role: String },
}

#[derive(Subcommand, Debug)]
pub enum OauthClientCmd {
    /// Every OAuth client (never their secrets).
    List,
    /// Create a client for a principal; its secret is printed once.
    Create {
        principal: Uuid,
        /// A scope it may ask for (again for more); its tokens carry those the principal also holds.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Give a client a new secret (printed once); the old one stops working.
    Rotate { client_id: String },
    /// Revoke a client: no more tokens are issued to it.
    Revoke { client_id: String },
}

#[derive(Subcommand, Debug)]
pub enum ApiTokenCmd {
    /// Every API token (never their values).
    List,
    /// Create a token for a principal; its value is printed once.
    Create {
        principal: Uuid,
        #[arg(long)]
        name: String,
        /// A scope it carries (again for more).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        days: i32,
    },
    /// Revoke a token.
    Revoke { id: Uuid },
}

impl Identity {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        let (Identity::Principal { of, .. }
        | Identity::Role { of, .. }
        | Identity::OauthClient { of, .. }
        | Identity::ApiToken { of, .. }) = &self;
        let acting;
        let client = match &of.tenant {
            Some(tenant) => {
                acting = client.acting_for(tenant.as_str());
                &acting
            }
            None => client,
        };
        match self {
            Identity::Principal { cmd: PrincipalCmd::List, .. } => {
                output::list(format, &all(client.principals(PAGE)).await?)
            }
            Identity::Principal { cmd: PrincipalCmd::Show { id }, .. } => {
                output::one(format, &client.principal(id).await?)
            }
            Identity::Principal { cmd: PrincipalCmd::Create { name, email, service }, .. } => {
                let kind = if service { PrincipalKind::Service } else { PrincipalKind::User };
                let input = CreatePrincipalInput { kind, display_name: name, email };
                output::one(format, &client.create_principal(input).await?)
            }
            Identity::Principal { cmd: PrincipalCmd::Disable { id }, .. } => {
                output::one(format, &client.disable_principal(id).await?)
            }
            Identity::Role { cmd: RoleCmd::List, .. } => output::list(format, &client.roles().await?),
            Identity::Role { cmd: RoleCmd::Define { key, description, permissions }, .. } => {
                output::one(format, &client.define_role(DefineRoleInput { key, description, permissions }).await?)
            }
            Identity::Role { cmd: RoleCmd::Bind { principal, role }, .. } => {
                client.bind_role(principal, &role).await?;
                output::one(format, &client.principal(principal).await?)
            }
            Identity::Role { cmd: RoleCmd::Unbind { principal, role }, .. } => {
                client.unbind_role(principal, &role).await?;
                output::one(format, &client.principal(principal).await?)
            }
            Identity::OauthClient { cmd: OauthClientCmd::List, .. } => {
                output::list(format, &client.oauth_clients().await?)
            }
            Identity::OauthClient { cmd: OauthClientCmd::Create { principal, scopes }, .. } => {
                let made = client.create_oauth_client(principal, scopes).await?;
                secret(format, &made, &made.client_secret)
            }
            Identity::OauthClient { cmd: OauthClientCmd::Rotate { client_id }, .. } => {
                let made = client.rotate_oauth_client_secret(&client_id).await?;
                secret(format, &made, &made.client_secret)
            }
            Identity::OauthClient { cmd: OauthClientCmd::Revoke { client_id }, .. } => {
                output::one(format, &client.revoke_oauth_client(&client_id).await?)
            }
            Identity::ApiToken { cmd: ApiTokenCmd::List, .. } => output::list(format, &client.api_tokens().await?),
            Identity::ApiToken { cmd: ApiTokenCmd::Create { principal, name, scopes, days }, .. } => {
                let input = CreateApiTokenInput {
                    principal_id: cynic::Id::new(principal.to_string()),
                    name,
                    scopes,
                    expires_in_days: days,
                };
                let made = client.create_api_token(input).await?;
                secret(format, &made, &made.token)
            }
            Identity::ApiToken { cmd: ApiTokenCmd::Revoke { id }, .. } => {
                anyhow::ensure!(client.revoke_api_token(id).await?, "no live API token {id}");
                done(format, serde_json::json!({ "revoked": id }), format!("revoked API token {id}"))
            }
        }
    }
}

/// A value carrying a secret shown this once: JSON whole, or its row and then the secret on a line of its
/// own (a table cell may wrap it, and a wrapped secret does not paste); a reminder on stderr.
fn secret<T: Row>(format: Format, made: &T, secret: &str) -> anyhow::Result<()> {
    output::one(format, made)?;
    if format == Format::Table {
        println!("secret: {secret}");
    }
    eprintln!("(the secret is shown this once: store it now)");
    Ok(())
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

impl Row for OauthClientWithSecret {
    fn headers() -> &'static [&'static str] {
        &["CLIENT ID", "PRINCIPAL", "SCOPES"]
    }
    fn row(&self) -> Vec<String> {
        let c = &self.client;
        vec![c.client_id.clone(), c.principal_id.to_string(), c.scopes.join(" ")]
    }
}

impl Row for ApiTokenWithSecret {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "SCOPES", "EXPIRES"]
    }
    fn row(&self) -> Vec<String> {
        let t = &self.api_token;
        vec![t.id.to_string(), t.name.clone(), t.scopes.join(" "), time(&t.expires_at)]
    }
}
