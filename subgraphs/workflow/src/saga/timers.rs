//! The instances' durable timers (`kernel::timers`, subject: the instance's id; name:
//! `<purpose>:<step>[:compensation]`), fired in the unit of work that deletes them: a wait's end, a step's
//! timeout, a retry's backoff, an agent task offered again, a lease's check.

use chrono::{DateTime, Utc};
use kernel::timers::{OnTimer, Timer};
use kernel::{Kernel, Result, Work};

use super::engine::Engine;
use crate::ids::InstanceId;

/// How often the worker looks for due timers, and most it fires in one pass.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
pub const BATCH: usize = 500;

pub struct SagaTimers<'k> {
    pub kernel: &'k Kernel,
    /// The clock the timers fire by (a test steps it).
    pub now: DateTime<Utc>,
}

#[async_trait::async_trait]
impl OnTimer for SagaTimers<'_> {
    async fn fire(&self, work: &mut Work, timer: &Timer) -> Result<()> {
        let Ok(instance) = timer.subject.parse::<InstanceId>() else {
            tracing::warn!(subject = %timer.subject, name = %timer.name, "a workflow timer about no instance; dropped");
            return Ok(());
        };
        let mut engine = match Engine::load(work, self.kernel, &timer.tenant, instance, self.now).await {
            Ok(engine) => engine,
            Err(e) if e.code() == kernel::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        engine.timer(work, &timer.name, &timer.payload).await?;
        engine.release().await
    }
}

/// Fires the timers due at `now`: the worker's pass (`Utc::now()`), or a test's stepped clock.
pub async fn fire_due(kernel: &Kernel, now: DateTime<Utc>) -> Result<kernel::timers::Fired> {
    kernel::timers::fire_due(&kernel.db, now, BATCH, &SagaTimers { kernel, now }).await
}
