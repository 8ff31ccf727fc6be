//! Workflow's ids.

pub use kernel::contracts::catalogue::ProjectId;
pub use kernel::PrincipalId;

kernel::id! {
    /// A workflow instance's id (its event stream's).
    pub struct InstanceId("workflow instance");
}

kernel::id! {
    /// An agent task's id: one attempt of one agent-task step of one instance.
    pub struct TaskId("agent task");
}
