//! Identity's ids. A principal's id is the kernel's ([`kernel::PrincipalId`]): every domain names principals
//! (owners, approvers, actors), and tokens carry it as their subject. An API token's id is in the shared
//! contract too ([`kernel::contracts::identity::ApiTokenId`]): revocation reaches every subgraph.

pub use kernel::contracts::identity::ApiTokenId;
pub use kernel::PrincipalId;
