//! Identity: principals, roles and their bindings, OAuth clients and API tokens.
//!
//! ```no_run
//! # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
//! use cp_sdk::ops::identity::*;
//! use futures::TryStreamExt;
//!
//! let me = client.me().await?;
//! let everyone: Vec<_> = client.principals(100).try_collect().await?;
//!
//! // A role, a service principal holding it, and its credentials.
//! let input = DefineRoleInput {
//!     key: "deployer".into(),
//!     description: "ships to prod".into(),
//!     permissions: vec!["catalogue:read".into(), "catalogue:write".into()],
//! };
//! client.define_role(input).await?;
//! let bot = client
//!     .create_principal(CreatePrincipalInput { kind: PrincipalKind::Service, display_name: "ci".into(), email: None })
//!     .await?;
//! client.bind_role(bot.id, "deployer").await?;
//! let oauth = client.create_oauth_client(bot.id, vec!["catalogue:read".into()]).await?;
//! println!("client id {}, secret {} (shown once)", oauth.client.client_id, oauth.client_secret);
//! let token = client
//!     .create_api_token(CreateApiTokenInput {
//!         principal_id: cynic::Id::new(bot.id.to_string()),
//!         name: "nightly".into(),
//!         scopes: vec!["catalogue:read".into()],
//!         expires_in_days: 30,
//!     })
//!     .await?;
//! client.revoke_api_token(token.api_token.id).await?;
//! # Ok(()) }
//! ```

use cynic::{MutationBuilder, QueryBuilder};
use futures::Stream;

use crate::pages::{paged, PageInfo};
use crate::schema;
use crate::{Client, DateTime, Error, Uuid};

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "Principal")]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub id: Uuid,
    pub display_name: String,
    pub email: Option<String>,
    pub kind: PrincipalKind,
    pub status: PrincipalStatus,
    pub roles: Vec<Role>,
    pub created_at: DateTime,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Service,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalStatus {
    Active,
    Disabled,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct CreatePrincipalInput {
    pub kind: PrincipalKind,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub key: String,
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct DefineRoleInput {
    pub key: String,
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OauthClient {
    pub client_id: String,
    pub principal_id: Uuid,
    pub scopes: Vec<String>,
    pub created_at: DateTime,
    pub secret_rotated_at: DateTime,
    pub revoked_at: Option<DateTime>,
}

/// A new or rotated OAuth client with its secret, which is shown this once.
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OauthClientWithSecret {
    pub client: OauthClient,
    pub client_secret: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    pub principal_id: Uuid,
    pub scopes: Vec<String>,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub last_used_at: Option<DateTime>,
    pub revoked_at: Option<DateTime>,
}

/// A new API token with its secret value, which is shown this once.
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenWithSecret {
    pub api_token: ApiToken,
    pub token: String,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct CreateApiTokenInput {
    pub principal_id: cynic::Id,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_in_days: i32,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query")]
struct Me {
    me: Principal,
}

#[derive(cynic::QueryVariables, Debug)]
struct PageVars {
    first: Option<i32>,
    after: Option<String>,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PageVars")]
struct Principals {
    #[arguments(first: $first, after: $after, tenantId: $tenant_id)]
    principals: PrincipalConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct PrincipalConnection {
    nodes: Vec<Principal>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct IdVars {
    id: cynic::Id,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct PrincipalQuery {
    #[arguments(id: $id, tenantId: $tenant_id)]
    principal: Principal,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreatePrincipalVars {
    input: CreatePrincipalInput,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreatePrincipalVars")]
struct CreatePrincipal {
    #[arguments(input: $input, tenantId: $tenant_id)]
    create_principal: Principal,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct DisablePrincipal {
    #[arguments(id: $id, tenantId: $tenant_id)]
    disable_principal: Principal,
}

#[derive(cynic::QueryVariables, Debug)]
struct TenantVars {
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "TenantVars")]
struct Roles {
    #[arguments(tenantId: $tenant_id)]
    roles: Vec<Role>,
}

#[derive(cynic::QueryVariables, Debug)]
struct DefineRoleVars {
    input: DefineRoleInput,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "DefineRoleVars")]
struct DefineRole {
    #[arguments(input: $input, tenantId: $tenant_id)]
    define_role: Role,
}

#[derive(cynic::QueryVariables, Debug)]
struct BindVars {
    principal_id: cynic::Id,
    role_key: String,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "BindVars")]
struct BindRole {
    #[arguments(principalId: $principal_id, roleKey: $role_key, tenantId: $tenant_id)]
    bind_role: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "BindVars")]
struct UnbindRole {
    #[arguments(principalId: $principal_id, roleKey: $role_key, tenantId: $tenant_id)]
    unbind_role: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "TenantVars")]
struct OauthClients {
    #[arguments(tenantId: $tenant_id)]
    oauth_clients: Vec<OauthClient>,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateClientVars {
    principal_id: cynic::Id,
    scopes: Vec<String>,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateClientVars")]
struct CreateOauthClient {
    #[arguments(principalId: $principal_id, scopes: $scopes, tenantId: $tenant_id)]
    #[cynic(rename = "createOAuthClient")]
    create_oauth_client: OauthClientWithSecret,
}

#[derive(cynic::QueryVariables, Debug)]
struct ClientIdVars {
    client_id: String,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ClientIdVars")]
struct RotateOauthClient {
    #[arguments(clientId: $client_id, tenantId: $tenant_id)]
    #[cynic(rename = "rotateOAuthClientSecret")]
    rotate_oauth_client_secret: OauthClientWithSecret,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ClientIdVars")]
struct RevokeOauthClient {
    #[arguments(clientId: $client_id, tenantId: $tenant_id)]
    #[cynic(rename = "revokeOAuthClient")]
    revoke_oauth_client: OauthClient,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "TenantVars")]
struct ApiTokens {
    #[arguments(tenantId: $tenant_id)]
    api_tokens: Vec<ApiToken>,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateTokenVars {
    input: CreateApiTokenInput,
    tenant_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateTokenVars")]
struct CreateApiToken {
    #[arguments(input: $input, tenantId: $tenant_id)]
    create_api_token: ApiTokenWithSecret,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct RevokeApiToken {
    #[arguments(id: $id, tenantId: $tenant_id)]
    revoke_api_token: bool,
}

fn id(uuid: Uuid) -> cynic::Id {
    cynic::Id::new(uuid.to_string())
}

impl Client {
    /// The caller's own principal.
    pub async fn me(&self) -> Result<Principal, Error> {
        Ok(self.run(Me::build(())).await?.me)
    }

    /// The tenant's principals, `per_page` at a time (1–100), as they are read.
    pub fn principals(&self, per_page: i32) -> impl Stream<Item = Result<Principal, Error>> + '_ {
        paged(
            self,
            move |after| {
                Principals::build(PageVars { first: Some(per_page), after, tenant_id: self.acting_for.clone() })
            },
            |q| (q.principals.nodes, q.principals.page_info),
        )
    }

    /// One principal.
    pub async fn principal(&self, principal: Uuid) -> Result<Principal, Error> {
        Ok(self
            .run(PrincipalQuery::build(IdVars { id: id(principal), tenant_id: self.acting_for.clone() }))
            .await?
            .principal)
    }

    /// Creates a user or service principal.
    pub async fn create_principal(&self, input: CreatePrincipalInput) -> Result<Principal, Error> {
        Ok(self
            .run(CreatePrincipal::build(CreatePrincipalVars { input, tenant_id: self.acting_for.clone() }))
            .await?
            .create_principal)
    }

    /// Disables a principal: its tokens and clients stop working.
    pub async fn disable_principal(&self, principal: Uuid) -> Result<Principal, Error> {
        Ok(self
            .run(DisablePrincipal::build(IdVars { id: id(principal), tenant_id: self.acting_for.clone() }))
            .await?
            .disable_principal)
    }

    /// The tenant's roles.
    pub async fn roles(&self) -> Result<Vec<Role>, Error> {
        Ok(self.run(Roles::build(TenantVars { tenant_id: self.acting_for.clone() })).await?.roles)
    }

    /// Defines (or redefines) a role.
    pub async fn define_role(&self, input: DefineRoleInput) -> Result<Role, Error> {
        Ok(self.run(DefineRole::build(DefineRoleVars { input, tenant_id: self.acting_for.clone() })).await?.define_role)
    }

    /// Binds a role to a principal.
    pub async fn bind_role(&self, principal: Uuid, role_key: &str) -> Result<bool, Error> {
        let op = BindRole::build(BindVars {
            principal_id: id(principal),
            role_key: role_key.into(),
            tenant_id: self.acting_for.clone(),
        });
        Ok(self.run(op).await?.bind_role)
    }

    /// Unbinds a role from a principal.
    pub async fn unbind_role(&self, principal: Uuid, role_key: &str) -> Result<bool, Error> {
        let op = UnbindRole::build(BindVars {
            principal_id: id(principal),
            role_key: role_key.into(),
            tenant_id: self.acting_for.clone(),
        });
        Ok(self.run(op).await?.unbind_role)
    }

    /// The tenant's OAuth clients (never their secrets).
    pub async fn oauth_clients(&self) -> Result<Vec<OauthClient>, Error> {
        Ok(self.run(OauthClients::build(TenantVars { tenant_id: self.acting_for.clone() })).await?.oauth_clients)
    }

    /// Creates an OAuth client for a principal, limited to `scopes`; its secret is in the answer only.
    pub async fn create_oauth_client(
        &self,
        principal: Uuid,
        scopes: Vec<String>,
    ) -> Result<OauthClientWithSecret, Error> {
        let op = CreateOauthClient::build(CreateClientVars {
            principal_id: id(principal),
            scopes,
            tenant_id: self.acting_for.clone(),
        });
        Ok(self.run(op).await?.create_oauth_client)
    }

    /// Gives an OAuth client a new secret (the old one stops working).
    pub async fn rotate_oauth_client_secret(&self, client_id: &str) -> Result<OauthClientWithSecret, Error> {
        let op =
            RotateOauthClient::build(ClientIdVars { client_id: client_id.into(), tenant_id: self.acting_for.clone() });
        Ok(self.run(op).await?.rotate_oauth_client_secret)
    }

    /// Revokes an OAuth client.
    pub async fn revoke_oauth_client(&self, client_id: &str) -> Result<OauthClient, Error> {
        Ok(self
            .run(RevokeOauthClient::build(ClientIdVars {
                client_id: client_id.into(),
                tenant_id: self.acting_for.clone(),
            }))
            .await?
            .revoke_oauth_client)
    }

    /// The tenant's API tokens (never their values).
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, Error> {
        Ok(self.run(ApiTokens::build(TenantVars { tenant_id: self.acting_for.clone() })).await?.api_tokens)
    }

    /// Creates an API token; its value is in the answer only.
    pub async fn create_api_token(&self, input: CreateApiTokenInput) -> Result<ApiTokenWithSecret, Error> {
        Ok(self
            .run(CreateApiToken::build(CreateTokenVars { input, tenant_id: self.acting_for.clone() }))
            .await?
            .create_api_token)
    }

    /// Revokes an API token.
    pub async fn revoke_api_token(&self, token: Uuid) -> Result<bool, Error> {
        Ok(self
            .run(RevokeApiToken::build(IdVars { id: id(token), tenant_id: self.acting_for.clone() }))
            .await?
            .revoke_api_token)
    }
}

#[allow(unused_imports)]
use MutationBuilder as _;
