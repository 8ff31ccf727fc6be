//! Catalogue's deployments: an `EnvironmentChanged` (`kernel::contracts::catalogue`) whose configuration
//! names artifact versions under `artifacts` (`[{ "artifactId": "…", "version": "1.2.0" }]`) records an
//! edge from each to the deployment `deployment:<project>/<environment>@<config version>`. Only catalogue
//! publishes under `catalogue.…`, and the envelope's tenant is the project's. An entry lineage cannot
//! read (not an object with an artifact id and a semver version) is skipped and logged; the others are
//! recorded. Redelivery records nothing twice (the inbox, and edges are recorded once).

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::catalogue::EnvironmentChanged;
use kernel::envelope::Envelope;
use kernel::Work;

use super::{EdgeKind, NewEdge, NodeRef};
use crate::events::DOMAIN;
use crate::ids::ArtifactId;

kernel::inbound! {
    /// What the deployments consumer takes.
    pub enum Deployments {
        Changed(EnvironmentChanged),
    }
}

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.deployments"), bindings: Deployments::routing_keys(), retry, prefetch: 16 }
}

/// Most artifact versions one configuration names that are recorded.
pub const MAX_ARTIFACTS: usize = 100;

pub struct DeploymentEdges;

#[async_trait::async_trait]
impl Handler for DeploymentEdges {
    fn name(&self) -> &'static str {
        "lineage.deployments"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let Deployments::Changed(e) = Deployments::decode(envelope).into_result(self.name())?;
        let tenant = &envelope.tenant_id;
        let deployment = NodeRef::deployment(e.project_id, &e.environment, e.version);
        let named = e.config.get("artifacts").and_then(|a| a.as_array()).map(Vec::as_slice).unwrap_or_default();
        let mut edges = Vec::new();
        for entry in named.iter().take(MAX_ARTIFACTS) {
            let id = entry.get("artifactId").and_then(|v| v.as_str()).map(|s| ArtifactId::parse("artifactId", s));
            let version =
                entry.get("version").and_then(|v| v.as_str()).map(|s| crate::artifacts::version("version", s));
            match (id, version) {
                (Some(Ok(id)), Some(Ok(version))) => edges.push(NewEdge {
                    from: NodeRef::artifact(&id, &version.to_string()),
                    to: deployment.clone(),
                    kind: EdgeKind::Deployed,
                }),
                _ => tracing::warn!(
                    %tenant, environment = %e.environment, entry = %kernel::error::clip(&entry.to_string(), 200),
                    "an environment's artifact entry is not {{ artifactId, version }}; skipped"
                ),
            }
        }
        super::record(work, tenant, &edges).await?;
        Ok(())
    }
}
