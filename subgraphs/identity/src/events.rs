//! Events identity publishes (routing key `identity.<eventType>`). No payload carries a secret: tokens appear
//! only as ids and SHA-256 hashes. The revocation events every subgraph reads are the kernel's shared
//! contract types, re-exported here, as are the role bindings governance reads.

pub use kernel::contracts::identity::{AccessTokenRevoked, ApiTokenRevoked, PrincipalDisabled, RoleBound, RoleUnbound};

use crate::ids::{ApiTokenId, PrincipalId};
use crate::principals::PrincipalKind;

/// The routing-key prefix of everything identity publishes.
pub const DOMAIN: &str = "identity";

kernel::events! {
    domain = "identity";
    PrincipalCreated { principal_id: PrincipalId, kind: PrincipalKind, display_name: String }
    RoleDefined { role_key: String, permissions: Vec<String> }
    OAuthClientCreated { client_id: String, principal_id: PrincipalId, scopes: Vec<String> }
    OAuthClientSecretRotated { client_id: String }
    OAuthClientRevoked { client_id: String }
    ApiTokenCreated { token_id: ApiTokenId, principal_id: PrincipalId, scopes: Vec<String>, expires_at: i64 }
}
