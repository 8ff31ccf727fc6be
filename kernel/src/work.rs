//! The one write path: a unit of work.
//!
//! A mutation (or a consumed command) opens a [`Work`] for a tenant, calls store functions with it (it
//! derefs to the transaction), [`Work::emit`]s the events its change publishes, and [`Work::commit`]s:
//! the state change and its outbox rows commit together or not at all, and the relay publishes them after.
//! Dropping a `Work` without committing rolls everything back, so an early `?` leaves nothing half-written.
//!
//! The tenant comes from an access check ([`crate::access`]): `Work::tenant` takes its
//! [`Authorized`] proof, never a bare tenant id.
//!
//! ```ignore
//! let tenant = ctx.authorize(WRITE)?;
//! let mut work = Work::tenant(&state.kernel.db, &tenant, ctx.event_meta()).await?;
//! let t = store::rename_tenant(&mut work, &tenant, &name).await?;
//! work.emit(&tenant, &events::TenantUpdated { tenant_id: tenant.to_string(), display_name: name }).await?;
//! work.commit().await?;
//! ```

use std::ops::{Deref, DerefMut};

use crate::access::Authorized;
use crate::db::{Db, Tx};
use crate::envelope::{Envelope, Event, EventMeta};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::outbox;

pub struct Work {
    tx: Tx,
    meta: EventMeta,
}

impl Work {
    /// A unit of work on the authorized tenant's rows (row-level security set for it).
    pub async fn tenant(db: &Db, authorized: &Authorized, meta: EventMeta) -> Result<Self> {
        Ok(Self { tx: db.tenant_tx(authorized.tenant()).await?, meta })
    }

    /// A platform operator's unit of work (every tenant's rows the operator policies allow); `FORBIDDEN`
    /// unless `authorized` is an operator's or platform-wide system work.
    pub async fn platform(db: &Db, authorized: &Authorized, meta: EventMeta) -> Result<Self> {
        if !authorized.is_operator() {
            return Err(Error::forbidden("this operation is for platform operators"));
        }
        Ok(Self { tx: db.platform_tx().await?, meta })
    }

    /// Wraps a transaction someone else opened (a consumer's, which also holds its inbox row).
    pub fn from_tx(tx: Tx, meta: EventMeta) -> Self {
        Self { tx, meta }
    }

    /// The trace, correlation and causation ids events of this unit carry.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }

    /// Makes the events emitted from now on carry `meta` (a consumer's batch, moving to its next message).
    pub fn set_meta(&mut self, meta: EventMeta) {
        self.meta = meta;
    }

    /// Writes `event` about `tenant` to the outbox, to be published once this unit commits.
    pub async fn emit<E: Event>(&mut self, tenant: &TenantId, event: &E) -> Result<Envelope> {
        outbox::enqueue(&mut self.tx, tenant, &self.meta, event).await
    }

    /// The envelope `event` about `tenant` would leave in, with this unit's ids, not yet written.
    pub fn envelope<E: Event>(&self, tenant: &TenantId, event: &E) -> Envelope {
        Envelope::new(tenant, &self.meta, event)
    }

    /// Writes an envelope made by [`Work::envelope`] to the outbox (after the writer stored it elsewhere).
    pub async fn emit_built<E: Event>(&mut self, event: &E, envelope: &Envelope) -> Result<()> {
        outbox::enqueue_built(&mut self.tx, event, envelope).await
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// The transaction, for a caller that must finish it itself.
    pub fn into_tx(self) -> Tx {
        self.tx
    }
}

impl Deref for Work {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for Work {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}
