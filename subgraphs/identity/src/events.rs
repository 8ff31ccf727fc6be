//! Events identity publishes (routing key `identity.<eventType>`). No payload carries a secret: tokens appear
//! only as ids and SHA-256 hashes. The revocation events every subgraph reads are the kernel's shared
//! contract types, re-exported here, as are the role bindings governance reads.

pub use kernel::contracts::identity::{AccessTokenRevoked, ApiTokenRevoked, PrincipalDisabled, RoleBound, RoleUnbound};

/// The routing-key prefix of everything identity publishes.
pub const DOMAIN: &str = "identity";

kernel::events! {
    domain = "identity";
    PrincipalCreated { principal_id: String, kind: String, display_name: String }
    RoleDefined { role_key: String, permissions: Vec<String> }
    OAuthClientCreated { client_id: String, principal_id: String, scopes: Vec<String> }
    OAuthClientSecretRotated { client_id: String }
    OAuthClientRevoked { client_id: String }
    ApiTokenCreated { token_id: String, principal_id: String, scopes: Vec<String>, expires_at: i64 }
}
