//! `identity bootstrap`: the first platform operator on an empty system, with an API token shown once.

use kernel::permissions::{identity, PLATFORM_ADMIN};
use kernel::{Authorized, TenantId, Work};

use crate::principals::{self, NewPrincipal, PrincipalKind};
use crate::tokens::{self, NewApiToken};
use crate::{roles, State};

/// Creates the first platform operator on an empty system and returns its API token (shown once).
pub async fn bootstrap(state: &State) -> anyhow::Result<String> {
    let platform = TenantId::platform();
    let meta = kernel::envelope::EventMeta::system("bootstrap", "bootstrap");
    let mut work = Work::tenant(&state.kernel.db, &Authorized::platform_system("bootstrap"), meta).await?;
    principals::store::bootstrap_lock(&mut work).await?;
    anyhow::ensure!(
        !principals::store::any_principal(&mut work).await?,
        "the platform already has principals: bootstrap runs once, on an empty system"
    );
    let perms: Vec<String> = [PLATFORM_ADMIN, identity::READ, identity::WRITE].map(String::from).to_vec();
    roles::define(&mut work, &platform, "platform-admin".into(), "Platform operators", perms.clone()).await?;
    let new = NewPrincipal::parse(PrincipalKind::User, "Platform operator", None)?;
    let p = principals::create(&mut work, &platform, new).await?;
    roles::bind(&mut work, &platform, p.id, "platform-admin".into()).await?;
    let token = NewApiToken::parse(&platform, p.id, "bootstrap", perms, 30)?;
    let created = tokens::create(&mut work, &platform, token).await?;
    work.commit().await?;
    Ok(created.token)
}
