//! Tenancy's roots: each area's share merged, in the order the schema lists them.
//!
//! Who may do what: platform operators (`platform:admin`) provision and manage tenants, editions, quotas and
//! flag definitions; a tenant's callers read their own tenant (`tenancy:read`), rename it (`tenancy:write`)
//! and consume its quotas (`quota:consume`). A tenant caller's tenant comes from the verified token only.
//! Every mutation owns its transaction, and commits its state change with its outbox event.

use async_graphql::MergedObject;

pub use crate::tenants::schema::SubscriptionRoot;
pub use kernel::permissions::tenancy::{QUOTA_CONSUME as CONSUME, READ, WRITE};

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    crate::tenants::schema::TenantQuery,
    crate::editions::schema::EditionQuery,
    crate::flags::schema::FlagQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    crate::tenants::schema::TenantMutation,
    crate::editions::schema::EditionMutation,
    crate::flags::schema::FlagMutation,
    crate::quotas::schema::QuotaMutation,
);
