//! Agent pools and the tasks their agents run.
//!
//! A pool (`agent_pools`) names its agents and how many tasks each runs at once (its slots). A ready agent
//! task takes a **lease** on a free slot (`pool:<pool>/<agent>/<slot>`, in Redis with the pool's TTL,
//! `kernel::leases`) whose **fencing token** comes from PostgreSQL; the agent reports progress, completion
//! or failure with that token, and a report with any token but the task's latest is refused with
//! `CONFLICT`, nothing written. Progress renews the lease; a lease not renewed in time (or lost with
//! Redis) is found by the task's lease check (a durable timer) and the task is leased again — to the same
//! agent or another — with a higher token, so the old holder is fenced off.
//!
//! A task's id is derived from its instance, step, attempt and kind, so assigning a step twice (a retry
//! of the unit of work, a command delivered again) finds the same task: a step never has two live tasks.

pub mod schema;
pub mod store;

use chrono::{DateTime, Utc};
use kernel::leases::{self, Lease};
use kernel::{Kernel, Result, TenantId};

use crate::ids::{InstanceId, TaskId};

/// A pool's configuration.
#[derive(Clone, Debug, PartialEq, Eq, async_graphql::SimpleObject)]
#[graphql(name = "AgentPool")]
pub struct Pool {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    pub pool: String,
    pub agents: Vec<String>,
    /// Tasks one agent runs at once.
    pub concurrency: i32,
    /// A lease not renewed (by a progress report) for this long is lost.
    pub lease_ttl_seconds: i32,
    pub updated_at: DateTime<Utc>,
}

/// Most agents in one pool, and most tasks one agent runs at once.
pub const MAX_AGENTS: usize = 256;
pub const MAX_CONCURRENCY: i32 = 64;

/// The namespace of task ids (UUIDv5 of `<instance>/<step>/<attempt>/<kind>`).
const TASK_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1d_1c3e_5a0b_4d8e_9c27_0e5b_2f4a_9d13);

/// The task of `step`'s `attempt` (or of its compensation) in `instance`: the same every time it is asked.
pub fn task_id(instance: InstanceId, step: &str, attempt: u32, compensation: bool) -> TaskId {
    let kind = if compensation { "compensation" } else { "task" };
    TaskId::from(uuid::Uuid::new_v5(&TASK_NAMESPACE, format!("{instance}/{step}/{attempt}/{kind}").as_bytes()))
}

/// The lease resource of an agent's slot.
pub fn resource(pool: &str, agent: &str, slot: i32) -> String {
    format!("pool:{pool}/{agent}/{slot}")
}

/// A slot leased for a task.
pub struct Leased {
    pub agent: String,
    pub lease: Lease,
}

/// Leases a free slot of `pool` for `task` (the slots are tried from a place the task's id picks, so tasks
/// spread over the agents); `None` when every slot is held.
pub async fn lease(kernel: &Kernel, tenant: &TenantId, pool: &Pool, task: TaskId) -> Result<Option<Leased>> {
    let ttl = std::time::Duration::from_secs(u64::try_from(pool.lease_ttl_seconds.max(1)).unwrap_or(1));
    let concurrency = pool.concurrency.max(1) as usize;
    let slots = pool.agents.len() * concurrency;
    let from = (task.as_uuid().as_u128() % slots.max(1) as u128) as usize;
    for i in 0..slots {
        let n = (from + i) % slots;
        let (agent, slot) = (&pool.agents[n / concurrency], (n % concurrency) as i32);
        let holder = task.to_string();
        if let Some(lease) =
            leases::acquire(&kernel.db, &kernel.cache, tenant, &resource(&pool.pool, agent, slot), &holder, ttl).await?
        {
            return Ok(Some(Leased { agent: agent.clone(), lease }));
        }
    }
    Ok(None)
}

/// The lease a task holds on `resource` with `token`, as [`kernel::leases`] knows it.
pub fn held(tenant: &TenantId, resource: &str, task: TaskId, token: i64, ttl_seconds: i32) -> Lease {
    Lease {
        tenant: tenant.clone(),
        resource: resource.to_owned(),
        holder: task.to_string(),
        token,
        ttl: std::time::Duration::from_secs(u64::try_from(ttl_seconds.max(1)).unwrap_or(1)),
    }
}
