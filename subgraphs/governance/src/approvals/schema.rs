//! Approvals' share of the query and mutation roots.

use crate::state;
use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Json, Object, ID};
use chrono::{DateTime, Utc};
use kernel::context::ContextExt;
use kernel::contracts::governance::{ApprovalRequest, ApprovalSubject};
use kernel::pagination::Page;
use kernel::permissions::governance::{APPROVALS_DECIDE, READ, WRITE};
use kernel::Authorize;
use kernel::{Error, Result, Work};
use serde_json::Value;

use super::{store, Approval, ApprovalStatus, NewApproval, Vote};
use crate::ids::ApprovalId;

#[derive(Default)]
pub struct ApprovalQuery;

#[Object]
impl ApprovalQuery {
    /// An approval request by id, with its votes.
    async fn approval(&self, ctx: &Context<'_>, id: ID) -> Result<Approval> {
        let tenant = ctx.authorize(READ)?;
        let id = ApprovalId::parse("id", &id)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let a = store::by_id(&mut tx, &tenant, id).await?;
        tx.commit().await?;
        a.ok_or_else(|| Error::not_found(format!("no approval `{id}`")))
    }

    /// Approval requests, newest first, optionally of one status (`PENDING`: the approvers' inbox).
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn approvals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        status: Option<ApprovalStatus>,
    ) -> Result<Connection<String, Approval>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let before = page.after.as_deref().map(|c| ApprovalId::parse("after", c)).transpose()?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(&mut tx, &tenant, status, before, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |a| a.approval_id.to_string()))
    }
}

#[derive(InputObject)]
pub struct RequestApprovalInput {
    /// `<domain>.<Thing>`, e.g. `workflow.Gate`.
    pub subject_kind: String,
    pub subject_id: String,
    pub project_id: Option<String>,
    pub summary: String,
    /// Roles any of which an approver must hold.
    pub approver_roles: Vec<String>,
    /// Approvals needed (1 to 20).
    #[graphql(default = 1)]
    pub quorum: i32,
    pub expires_at: DateTime<Utc>,
    /// What the approver should see; never secrets.
    pub details: Option<Json<Value>>,
}

#[derive(Default)]
pub struct ApprovalMutation;

#[Object]
impl ApprovalMutation {
    /// Opens an approval request for the caller (or returns the subject's open one). Emits
    /// `ApprovalRequested`. The subject's kind may not be a platform domain's (`catalogue.…`, `workflow.…`):
    /// those domains ask themselves (`FORBIDDEN`).
    async fn request_approval(&self, ctx: &Context<'_>, input: RequestApprovalInput) -> Result<Approval> {
        let tenant = ctx.authorize(WRITE)?;
        let request = ApprovalRequest {
            subject: ApprovalSubject { kind: input.subject_kind, id: input.subject_id, project_id: input.project_id },
            summary: input.summary,
            approver_roles: input.approver_roles,
            quorum: u32::try_from(input.quorum)
                .map_err(|_| Error::bad_input("quorum", "quorum is between 1 and 20"))?,
            requested_by: ctx.principal().to_owned(),
            expires_at: input.expires_at,
            details: input.details.map_or(Value::Null, |j| j.0),
        };
        let new = NewApproval::parse(request, Utc::now())?;
        super::may_ask(super::Requester::Api, &new.subject.kind)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let (a, _) = super::request(&mut work, &tenant, &new).await?;
        work.commit().await?;
        Ok(a)
    }

    /// Approves a request (needs `approvals:decide` and one of its approver roles; never the requester's
    /// own). The approval completing the quorum grants it: `ApprovalGranted`.
    async fn approve(&self, ctx: &Context<'_>, id: ID, note: Option<String>) -> Result<Approval> {
        decide(ctx, id, Vote::Approve, note).await
    }

    /// Rejects a request (same rules as `approve`): `ApprovalRejected`.
    async fn reject(&self, ctx: &Context<'_>, id: ID, note: Option<String>) -> Result<Approval> {
        decide(ctx, id, Vote::Reject, note).await
    }

    /// The requester withdraws its pending request: `ApprovalCancelled`.
    async fn cancel_approval(&self, ctx: &Context<'_>, id: ID) -> Result<Approval> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ApprovalId::parse("id", &id)?;
        super::cancel(&state(ctx).kernel.db, &tenant, id, ctx.principal(), &ctx.request().trace_id).await
    }
}

async fn decide(ctx: &Context<'_>, id: ID, vote: Vote, note: Option<String>) -> Result<Approval> {
    let tenant = ctx.authorize(APPROVALS_DECIDE)?;
    let id = ApprovalId::parse("id", &id)?;
    super::vote(&state(ctx).kernel.db, &tenant, id, ctx.principal(), vote, note, &ctx.request().trace_id).await
}
