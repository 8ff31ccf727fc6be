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
//! Which models a task's agent may use is governance's model policies' say ([`models`]): a task no
//! policy covers waits a minute for one, then fails, and a completion outside its policies fails the attempt.
//!
//! A task's id is derived from its instance, step, attempt and kind, so assigning a step twice (a retry
//! of the unit of work, a command delivered again) finds the same task: a step never has two live tasks.

pub mod models;
pub mod schema;
pub mod store;

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::leases::{self, Lease, Taken};
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

/// Most agents in one pool, and most tasks one agent runs at once; the longest agent id (bytes), so that
/// every slot's lease resource fits.
pub const MAX_AGENTS: usize = 256;
pub const MAX_AGENT_ID: usize = 100;
pub const MAX_CONCURRENCY: i32 = 64;

/// The namespace of task ids (UUIDv5 of `<instance>/<step>/<run>/<kind>`).
const TASK_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1d_1c3e_5a0b_4d8e_9c27_0e5b_2f4a_9d13);

/// The task of one run of `step` in `instance` (`run`: the version of the event that began it — the
/// step's `WorkflowStepReady`, or its `CompensationStarted`): the same every time it is asked, another for
/// each retry and each loop back through the step.
pub fn task_id(instance: InstanceId, step: &str, run: i64, compensation: bool) -> TaskId {
    let kind = if compensation { "compensation" } else { "task" };
    TaskId::from(uuid::Uuid::new_v5(&TASK_NAMESPACE, format!("{instance}/{step}/{run}/{kind}").as_bytes()))
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

/// What a task's fencing tokens are counted on: the task itself, whichever slot it runs on, so a task
/// leased again — on another agent's slot — always gets a higher token than any it had.
pub fn fence(task: TaskId) -> String {
    format!("task:{task}")
}

/// Leases a free slot of `pool` for `task` (the slots are tried from a place the task's id picks, so tasks
/// spread over the agents) with the task's next fencing token, issued in `tx`; `None` when every slot is
/// held. (A slot taken by a transaction that then rolls back stays held until its TTL ends, or until the
/// same task takes it again.)
pub async fn lease(
    tx: &mut Tx,
    kernel: &Kernel,
    tenant: &TenantId,
    pool: &Pool,
    task: TaskId,
) -> Result<Option<Leased>> {
    let ttl = std::time::Duration::from_secs(u64::try_from(pool.lease_ttl_seconds.max(1)).unwrap_or(1));
    let concurrency = pool.concurrency.max(1) as usize;
    let slots = pool.agents.len() * concurrency;
    let from = (task.as_uuid().as_u128() % slots.max(1) as u128) as usize;
    let holder = task.to_string();
    for i in 0..slots {
        let n = (from + i) % slots;
        let (agent, slot) = (&pool.agents[n / concurrency], (n % concurrency) as i32);
        let resource = resource(&pool.pool, agent, slot);
        if leases::take(&kernel.cache, tenant, &resource, &holder, ttl).await? == Taken::Busy {
            continue;
        }
        let token = leases::issue(tx, tenant, &fence(task), agent).await?;
        let lease = Lease { tenant: tenant.clone(), resource, holder, token, ttl };
        return Ok(Some(Leased { agent: agent.clone(), lease }));
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
