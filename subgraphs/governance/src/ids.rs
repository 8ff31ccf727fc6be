//! Governance's ids. An approval's is in the shared contract ([`kernel::contracts::governance::ApprovalId`]):
//! the requesting domain reads it in the outcome.

pub use kernel::contracts::governance::ApprovalId;

kernel::id! {
    /// A policy version's id.
    pub struct PolicyId("policy");
}

kernel::id! {
    /// A recorded policy decision.
    pub struct DecisionId("decision");
}

kernel::id! {
    /// An integration connection.
    pub struct ConnectionId("connection");
}

/// A model policy version's id: in the contract other domains read (`ModelPolicyPublished`).
pub use kernel::contracts::governance::ModelPolicyId;

kernel::id! {
    /// A catalogue project, as a model policy scopes to it. Shown as the `UUID` scalar, as model policies
    /// always showed it; the same id as catalogue's `ProjectId`.
    pub struct ProjectRef("project") as UUID;
}
