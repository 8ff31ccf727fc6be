//! Events identity publishes (routing key `identity.<eventType>`). No payload carries a secret: tokens appear
//! only as ids and SHA-256 hashes.

use kernel::envelope::Event;
use serde::{Deserialize, Serialize};

pub const DOMAIN: &str = "identity";

macro_rules! event {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $(pub $field: $ty),* }
        impl Event for $name {
            const TYPE: &'static str = stringify!($name);
        }
    };
}

event!(PrincipalCreated { principal_id: String, kind: String, display_name: String });
event!(PrincipalDisabled { principal_id: String });
event!(RoleDefined { role_key: String, permissions: Vec<String> });
event!(RoleBound { principal_id: String, role_key: String });
event!(RoleUnbound { principal_id: String, role_key: String });
event!(OAuthClientCreated { client_id: String, principal_id: String, scopes: Vec<String> });
event!(OAuthClientSecretRotated { client_id: String });
event!(OAuthClientRevoked { client_id: String });
event!(ApiTokenCreated { token_id: String, principal_id: String, scopes: Vec<String>, expires_at: i64 });
event!(
    /// Every subgraph drops its cached validation of the token with this hash.
    ApiTokenRevoked { token_id: String, token_hash: String }
);
event!(
    /// Every subgraph refuses the access token with this `jti` until it expires.
    AccessTokenRevoked { jti: String, expires_at: i64 }
);
