//! Contracts between domains that must fail to compile when broken: event payloads one domain publishes and
//! another crate reads. The publisher emits these very types; the readers deserialize them.

/// What identity publishes and every subgraph's kernel consumes (revocation reaches all of them).
pub mod identity {
    crate::events! {
        domain = "identity";
        /// Every subgraph drops its cached validation of the API token with this hash.
        ApiTokenRevoked { token_id: String, token_hash: String }
        /// Every subgraph refuses the access token with this `jti` until it expires (Unix seconds).
        AccessTokenRevoked { jti: String, expires_at: i64 }
    }
}
