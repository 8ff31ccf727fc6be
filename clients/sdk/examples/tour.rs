//! A tour of one tenant through the public endpoint, read only: its quotas, projects, pending approvals,
//! latest workflow instances and audit checkpoint.
//!
//! ```sh
//! bash scripts/up                       # the whole system, the public endpoint on 127.0.0.1:4000
//! CP_CLIENT_ID=cpc_… CP_CLIENT_SECRET=cps_… cargo run -p cp-sdk --example tour
//! ```
//!
//! `CP_ENDPOINT` names another control plane; `CP_TOKEN` (an API token) replaces the client credentials.

use cp_sdk::ops::governance::ApprovalStatus;
use cp_sdk::{Client, Credentials};
use futures::{StreamExt, TryStreamExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("CP_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4000".into());
    let credentials = match (std::env::var("CP_CLIENT_ID"), std::env::var("CP_CLIENT_SECRET")) {
        (Ok(client_id), Ok(client_secret)) => Credentials::ClientCredentials { client_id, client_secret, scope: None },
        _ => Credentials::Token(
            std::env::var("CP_TOKEN").map_err(|_| "set CP_CLIENT_ID and CP_CLIENT_SECRET, or CP_TOKEN")?,
        ),
    };
    let client = Client::new(endpoint, credentials)?;

    let tenant = client.current_tenant().await?;
    println!(
        "tenant {} ({}), {:?}, edition {}",
        tenant.display_name,
        tenant.id.inner(),
        tenant.status,
        tenant.edition_id
    );
    for q in &tenant.quotas {
        println!("  quota {}: {} of {} used", q.key, q.used, q.limit);
    }
    let projects: Vec<_> = client.projects(100).try_collect().await?;
    println!(
        "{} project(s): {}",
        projects.len(),
        projects.iter().map(|p| p.slug.as_str()).collect::<Vec<_>>().join(", ")
    );
    let pending: Vec<_> = client.approvals(Some(ApprovalStatus::Pending), 100).try_collect().await?;
    println!("{} pending approval(s)", pending.len());
    let latest: Vec<_> = Box::pin(client.workflow_instances(None, None, 5)).take(5).try_collect().await?;
    for i in &latest {
        println!("  workflow {} {}@{}: {:?}", i.id.inner(), i.definition_key, i.definition_version, i.status);
    }
    match client.audit_checkpoint(None).await {
        Ok(c) => println!("audit log {}: {} entries, root {}", c.origin, c.tree_size, c.root_hash),
        Err(e) => println!("audit log: {e}"),
    }
    Ok(())
}
