//! Every permission of every domain, in one place. Identity's role catalogue reads this list (a role may
//! hold only these), and each domain's resolvers name their permissions through these constants, so a new
//! domain adds its permissions here with one edit.

/// Platform operators: provisioning, editions, flag definitions, any tenant's identity. Only in the
/// reserved `platform` tenant, and only on tokens without a tenant.
pub const PLATFORM_ADMIN: &str = "platform:admin";

pub mod identity {
    pub const READ: &str = "identity:read";
    pub const WRITE: &str = "identity:write";
}

pub mod tenancy {
    pub const READ: &str = "tenancy:read";
    pub const WRITE: &str = "tenancy:write";
    /// Consume the tenant's quotas.
    pub const QUOTA_CONSUME: &str = "quota:consume";
}

pub mod catalogue {
    pub const READ: &str = "catalogue:read";
    pub const WRITE: &str = "catalogue:write";
}

pub mod governance {
    pub const READ: &str = "governance:read";
    pub const WRITE: &str = "governance:write";
    /// Vote on approval requests (with one of the roles a request names).
    pub const APPROVALS_DECIDE: &str = "approvals:decide";
    /// Report usage records (`recordUsage`); reading usage takes `governance:read`.
    pub const USAGE_RECORD: &str = "usage:record";
}

pub mod workflow {
    pub const READ: &str = "workflow:read";
    pub const WRITE: &str = "workflow:write";
    /// Report an agent task's progress and result (an agent, with the task's fencing token).
    pub const AGENT_REPORT: &str = "agent:report";
}
pub mod lineage {
    pub const READ: &str = "lineage:read";
    pub const WRITE: &str = "lineage:write";
    /// Read the bodies and sensitive fields of confidential and restricted artifacts (others see them
    /// redacted).
    pub const READ_RESTRICTED: &str = "lineage:read-restricted";
}

/// Every permission there is, with what it allows (identity's `permissions` catalogue).
pub const ALL: &[(&str, &str)] = &[
    (PLATFORM_ADMIN, "operate the platform: tenants, editions, flags, every tenant's identity"),
    (identity::READ, "read the tenant's principals, roles, clients and API tokens"),
    (identity::WRITE, "manage the tenant's principals, roles, clients and API tokens"),
    (tenancy::READ, "read the tenant, its edition, quotas and feature flags"),
    (tenancy::WRITE, "rename the tenant"),
    (tenancy::QUOTA_CONSUME, "consume the tenant's quotas"),
    (catalogue::READ, "read the tenant's projects, environments, modules, blueprints and agent and skill definitions"),
    (
        catalogue::WRITE,
        "change the tenant's projects, environments, modules, blueprints and agent and skill definitions",
    ),
    (governance::READ, "read the tenant's policies, decisions, approvals, integration connections and model policies"),
    (
        governance::WRITE,
        "change the tenant's policies, integration connections and model policies, evaluate policies, request approvals",
    ),
    (governance::APPROVALS_DECIDE, "approve or reject approval requests (with a role the request names)"),
    (governance::USAGE_RECORD, "report the tenant's usage records"),
    (workflow::READ, "read the tenant's workflow definitions, instances, agent tasks and their events"),
    (workflow::WRITE, "publish workflow definitions; start, cancel and assign workflow instances' tasks"),
    (workflow::AGENT_REPORT, "report an agent task's progress and result"),
    (lineage::READ, "read the tenant's artifacts, their versions and lineage"),
    (lineage::WRITE, "record the tenant's artifacts and versions and change their status"),
    (lineage::READ_RESTRICTED, "read the bodies and sensitive fields of confidential and restricted artifacts"),
];

/// Whether `p` is a permission some domain declares.
pub fn is_known(p: &str) -> bool {
    ALL.iter().any(|(name, _)| *name == p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn permissions_are_unique_and_domain_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for (p, what) in super::ALL {
            assert!(seen.insert(*p), "{p} declared twice");
            assert!(p.contains(':') && !what.is_empty(), "{p}");
        }
        assert!(super::is_known("tenancy:read") && !super::is_known("tenancy:admin"));
    }
}
