//! Bearer-token authentication.
//!
//! Callers send `Authorization: Bearer <token>`. [`Authenticator`] takes two kinds:
//!
//! - JWTs issued by identity: [`JwtVerifier`] checks the signature against keys from a JWKS (a file, a URL,
//!   or in memory; cached and refreshed when an unknown `kid` shows up, so key rotation needs no restart),
//!   then issuer, audience, expiry and not-before, then the revoked-`jti` list. Only asymmetric algorithms
//!   are accepted: `alg: none`, HMAC and any algorithm other than the one the key declares are refused.
//! - API tokens (`cpt_…`): the checksum is checked with no I/O, then an [`ApiTokenSource`] (identity's
//!   database there, its introspection endpoint elsewhere) behind an in-process and a Redis cache, both
//!   dropped by `ApiTokenRevoked` events.
//!
//! There is no switch that turns authentication off. [`LocalSigner`] is an Ed25519 key with its JWKS:
//! identity signs with it, and the dev tools and tests mint tokens with it.

mod api_tokens;
mod authenticator;
mod jwt;
mod revocation;
mod signer;

use std::collections::BTreeSet;

use crate::ids::TenantId;

pub use api_tokens::{ApiTokenInfo, ApiTokenSource, IntrospectionSource, INTERNAL_SECRET_HEADER};
pub use authenticator::{Authenticator, Termination};
pub use jwt::{parse_jwks, JwksSource, JwtVerifier};
pub use revocation::{on_revocation, revocation_bindings, Revocation};
pub use signer::{write_private, LocalSigner};

/// Who is calling, as the verified token says.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's `sub`: a user or service principal.
    pub subject: String,
    /// The token's `tid`. Platform operators' tokens carry none.
    pub tenant: Option<TenantId>,
    pub scopes: BTreeSet<String>,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// The token's `exp` (Unix seconds): long-lived streams end here.
    pub expires_at: i64,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}
