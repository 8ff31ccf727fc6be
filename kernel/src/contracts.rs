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
        /// The principal's tokens stop carrying permissions; every subgraph closes its live subscriptions.
        PrincipalDisabled { principal_id: String }
    }
}

/// Tenancy's lifecycle events every subgraph reacts to (live subscriptions of a suspended or retired tenant
/// are closed). Only the type names and the envelope's tenant are read; tenancy checks at compile time that
/// its event types carry these names ([`same`]).
pub mod tenancy {
    pub const DOMAIN: &str = "tenancy";
    pub const TENANT_SUSPENDED: &str = "TenantSuspended";
    pub const TENANT_RETIRED: &str = "TenantRetired";
}

/// `a == b` in a `const` context: `const _: () = assert!(same(MyEvent::TYPE, contracts::…));` makes a
/// renamed event type a compile error in the crate that renamed it.
pub const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
