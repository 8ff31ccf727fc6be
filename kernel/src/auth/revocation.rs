//! What ends credentials and sessions, and how every subgraph applies it.

use std::sync::Arc;

use super::*;

/// Routing keys of what ends credentials and sessions ([`Revocation`]), which every subgraph listens to.
pub fn revocation_bindings() -> Vec<String> {
    Revocation::routing_keys()
}

crate::inbound! {
    /// What ends credentials and sessions: identity's revocations and disabled principals, tenancy's
    /// suspended and retired tenants.
    pub enum Revocation {
        ApiToken(crate::contracts::identity::ApiTokenRevoked),
        AccessToken(crate::contracts::identity::AccessTokenRevoked),
        Principal(crate::contracts::identity::PrincipalDisabled),
        TenantSuspended(crate::contracts::tenancy::TenantSuspended),
        TenantRetired(crate::contracts::tenancy::TenantRetired),
    }
}

/// Applies a revocation event (or a listener reset) to `auth`.
pub fn on_revocation(auth: Arc<Authenticator>) -> impl Fn(crate::consumer::Notice) + Send + Sync + 'static {
    use crate::envelope::Inbound;
    move |notice| match notice {
        crate::consumer::Notice::Reset => {
            // Events may have been missed: drop what was cached, reload what was revoked.
            auth.forget_all_api_tokens();
            let auth = auth.clone();
            tokio::spawn(async move {
                if let Err(e) = auth.load_revoked().await {
                    tracing::warn!(error = ?e.code(), "could not reload revoked access tokens");
                }
            });
        }
        crate::consumer::Notice::Event(env) => match Revocation::decode(&env) {
            Inbound::Known(Revocation::ApiToken(e)) => {
                auth.terminate(Termination::Token(e.token_id.to_string()));
                let auth = auth.clone();
                tokio::spawn(async move { auth.forget_api_token(&e.token_hash).await });
            }
            Inbound::Known(Revocation::AccessToken(e)) => auth.revoke_jti(&e.jti, e.expires_at),
            Inbound::Known(Revocation::Principal(e)) => auth.terminate(Termination::Principal {
                tenant: env.tenant_id.clone(),
                subject: e.principal_id.to_string(),
            }),
            Inbound::Known(Revocation::TenantSuspended(_) | Revocation::TenantRetired(_)) => {
                auth.terminate(Termination::Tenant(env.tenant_id.clone()))
            }
            Inbound::Malformed(t, e) => tracing::error!(error = %e, "malformed {t}"),
            Inbound::Unknown(_) => {}
        },
    }
}
