//! Catalogue's ids. Projects' and modules' are in the shared contract ([`kernel::contracts::catalogue`]):
//! other domains' rows and events name them.

pub use kernel::contracts::catalogue::{ModuleId, ProjectId};
pub use kernel::PrincipalId;

kernel::id! {
    /// A blueprint's id.
    pub struct BlueprintId("blueprint");
}

kernel::id! {
    /// One validation run of a blueprint version.
    pub struct ValidationRunId("validation run");
}

kernel::id! {
    /// A change to an environment's configuration (applied, or pending an approval).
    pub struct ChangeId("environment change");
}
